"""Scaling laws: fit ``L(N, D) = E + A / N^alpha + B / D^beta`` and allocate compute.

The parametric loss is Chinchilla's approach 3 (Hoffmann et al. 2022, "Training Compute-Optimal
Large Language Models", arXiv:2203.15556, Eq. (2)); ``N`` is the parameter count, ``D`` the
training tokens, ``L`` the held-out loss in nats per token. The fit follows the paper: in log
space, ``log L`` is predicted by ``LSE(a - alpha log N, b - beta log D, e)`` with ``A = e^a``,
``B = e^b``, ``E = e^e``, and the Huber loss (``delta = 1e-3``) of the residuals is minimised by
L-BFGS from a grid of starting points, keeping the best (``scipy.optimize.minimize``,
``scipy.special.huber`` and ``numpy.logaddexp``; nothing is hand-written but the objective).

With compute ``C = 6 N D`` (FLOPs of training, Kaplan et al. 2020, arXiv:2001.08361), the loss is
smallest at (Chinchilla Eq. (4))::

    N*(C) = G (C / 6)^(beta / (alpha + beta)),   D*(C) = G^-1 (C / 6)^(alpha / (alpha + beta)),
    G = (alpha A / (beta B))^(1 / (alpha + beta)).

No training happens here: give it the measured ``(N, D, L)`` points.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import huber

from genzoo.core.errors import ConfigError

N_FIT_PARAMS = 5  # E, A, alpha, B, beta


@dataclass(frozen=True)
class ScalingFit:
    """A fitted ``L(N, D) = E + A / N^alpha + B / D^beta`` (loss in the units of the data)."""

    E: float  # irreducible loss
    A: float  # parameter term's scale
    alpha: float  # parameter exponent
    B: float  # data term's scale
    beta: float  # data exponent
    objective: float  # the minimised Huber loss of the log-residuals (summed over points)
    rmse_log: float  # root-mean-square residual of log L (how well the form fits the points)

    def loss(self, n: ArrayLike, d: ArrayLike) -> np.ndarray:
        """The fitted loss at ``n`` parameters and ``d`` tokens (broadcast)."""
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta  # Eq. (2)

    def optimal(self, compute: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Compute-optimal ``(N*, D*)`` for compute ``C = 6 N D`` (Chinchilla Eq. (4))."""
        c = np.asarray(compute, dtype=float)
        s = self.alpha + self.beta
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / s)
        n_opt = g * (c / 6.0) ** (self.beta / s)  # Eq. (4)
        d_opt = (c / 6.0) ** (self.alpha / s) / g  # Eq. (4)
        return n_opt, d_opt

    def tokens_per_parameter(self, compute: ArrayLike) -> np.ndarray:
        """``D* / N*`` at compute ``C`` (constant only when ``alpha = beta``)."""
        n_opt, d_opt = self.optimal(compute)
        return d_opt / n_opt


def _check(n: np.ndarray, d: np.ndarray, loss: np.ndarray) -> None:
    if not (n.ndim == d.ndim == loss.ndim == 1 and n.shape == d.shape == loss.shape):
        raise ConfigError(
            f"N, D and L must be 1-D arrays of one length; got shapes {n.shape}, {d.shape} and "
            f"{loss.shape}."
        )
    if n.size <= N_FIT_PARAMS:
        raise ConfigError(
            f"A scaling-law fit has {N_FIT_PARAMS} parameters (E, A, alpha, B, beta), so it "
            f"needs more than {N_FIT_PARAMS} (N, D, L) points; got {n.size}."
        )
    for name, v in (("N", n), ("D", d), ("L", loss)):
        if not np.all(np.isfinite(v) & (v > 0)):
            raise ConfigError(f"Every {name} of a scaling-law fit must be finite and > 0.")


def fit_scaling_law(
    n: ArrayLike,
    d: ArrayLike,
    loss: ArrayLike,
    *,
    delta: float = 1e-3,
    alphas: tuple[float, ...] = (0.3, 1.0),
    betas: tuple[float, ...] = (0.3, 1.0),
    log_as: tuple[float, ...] = (0.0, 8.0),
    log_bs: tuple[float, ...] = (0.0, 8.0),
    log_es: tuple[float, ...] = (-1.0, 0.5),
) -> ScalingFit:
    """Fit ``L = E + A/N^alpha + B/D^beta`` to measured points as Chinchilla does (Huber loss of
    log-residuals, L-BFGS from every starting point of the grid given, the best kept). The
    default grid is a coarser version of the paper's (32 starts rather than 4,500: tiny models
    need no ``log A`` of 25)."""
    n, d, y = (np.asarray(v, dtype=float) for v in (n, d, loss))
    _check(n, d, y)
    log_n, log_d, log_y = np.log(n), np.log(d), np.log(y)

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        a, b, e, alpha, beta = p
        terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])  # (3, P)
        pred = np.logaddexp.reduce(terms, axis=0)  # log(A/N^alpha + B/D^beta + E), (P,)
        r = pred - log_y
        g = np.clip(r, -delta, delta) * np.exp(terms - pred)  # dHuber/dr * dpred/dterm, (3, P)
        grad = np.array(
            [g[0].sum(), g[1].sum(), g[2].sum(), -(g[0] * log_n).sum(), -(g[1] * log_d).sum()]
        )
        return float(np.sum(huber(delta, r))), grad

    best = None
    for a, b, e, alpha, beta in itertools.product(log_as, log_bs, log_es, alphas, betas):
        x0 = np.array([a, b, e, alpha, beta])
        res = minimize(objective, x0, jac=True, method="L-BFGS-B")
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    a, b, e, alpha, beta = best.x
    fit = ScalingFit(
        E=float(np.exp(e)),
        A=float(np.exp(a)),
        alpha=float(alpha),
        B=float(np.exp(b)),
        beta=float(beta),
        objective=float(best.fun),
        rmse_log=0.0,
    )
    rmse = float(np.sqrt(np.mean((np.log(fit.loss(n, d)) - log_y) ** 2)))
    return ScalingFit(**{**fit.__dict__, "rmse_log": rmse})
