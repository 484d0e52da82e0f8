"""Probabilistic PCA with its closed-form maximum-likelihood fit and exact log-likelihood.

Tipping & Bishop, "Probabilistic principal component analysis", J. R. Statist. Soc. B 61 (1999)
611-622. Equation numbers below are theirs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.likelihood import ExactNLL
from genzoo.core.protocol import LatentSpace
from genzoo.core.registry import register_model
from genzoo.core.seeding import randn
from genzoo.data.base import DataInfo
from genzoo.models.linear.pca import LinearModel, Moments

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class PPCAConfig(Config):
    """Configuration of :class:`PPCA`."""

    latent_dim: int = bounded(16, ge=1)  # K: dimension of the latent z ~ N(0, I_K); below the data
    # dimension D
    min_variance: float = bounded(1e-6, gt=0.0)  # floor on the noise variance sigma^2 (data on a
    # subspace: > 0)


def ppca_log_prob(x: Tensor, mean: Tensor, weight: Tensor, noise_variance: Tensor) -> Tensor:
    """``log N(x; mean, W W^T + sigma^2 I)`` per example, ``(B, D) -> (B,)``, differentiable.

    With ``M = W^T W + sigma^2 I_K`` (K x K), the Woodbury identity gives
    ``C^-1 = (I - W M^-1 W^T) / sigma^2`` and ``log |C| = (D - K) log sigma^2 + log |M|``, so the
    cost is O(B D K) rather than O(D^3).
    """
    d, k = weight.shape
    diff = x - mean  # (B, D)
    eye = torch.eye(k, dtype=weight.dtype, device=weight.device)
    m = weight.T @ weight + noise_variance * eye  # (K, K), the M of Eq. (6)
    chol = torch.linalg.cholesky(m)
    proj = diff @ weight  # (B, K): W^T (x - mean)
    sol = torch.cholesky_solve(proj.unsqueeze(-1), chol).squeeze(-1)  # (B, K): M^-1 W^T (x - mean)
    maha = (diff.pow(2).sum(1) - (proj * sol).sum(1)) / noise_variance  # (x-mu)^T C^-1 (x-mu)
    logdet = (d - k) * torch.log(noise_variance) + 2.0 * torch.log(torch.diagonal(chol)).sum()
    return -0.5 * (d * LOG_2PI + logdet + maha)  # Eq. (4), per example


@register_model("ppca")
class PPCA(ExactNLL, LinearModel, LatentSpace):
    """Probabilistic PCA: ``x = W z + mean + sigma eps``, ``z ~ N(0, I_K)``, ``eps ~ N(0, I_D)``.

    Tipping & Bishop (1999). The marginal is ``N(mean, C)``, ``C = W W^T + sigma^2 I``; the
    maximum-likelihood fit is in closed form from the eigendecomposition ``S = U Lambda U^T`` of
    the ML sample covariance: ``mean`` = the sample mean, ``sigma^2`` = the mean of the D - K
    discarded eigenvalues (Eq. (8)), ``W = U_K (Lambda_K - sigma^2 I)^(1/2)`` (Eq. (7), with the
    rotation R = I). :meth:`log_prob` is exact (Eq. (4)), in nats per example, a density on the
    model space of the data (for images: [-1, 1]^D of uniformly dequantized pixels, converted to
    bits/dim by ``genzoo.evaluate``).

    ``encode_latent`` is the posterior mean ``E[z|x] = M^-1 W^T (x - mean)``, ``M = W^T W +
    sigma^2 I`` (the posterior is ``N(M^-1 W^T (x - mean), sigma^2 M^-1)``, Eq. (6));
    ``decode_latent(z) = W z + mean``. As sigma -> 0 the model becomes PCA.

    The loss is the mean negative log-likelihood per dimension (like the flows'), logging ``nll``
    and, for images, ``bpd``: evaluated, never optimised, since the fit is closed-form.
    """

    dequantize: ClassVar[bool] = True
    default_noise: ClassVar[bool] = True
    latent_prior: ClassVar[Literal["gaussian", "euclidean"]] = "gaussian"
    config_class: ClassVar[type[Config]] = PPCAConfig
    config: PPCAConfig

    def __init__(self, config: PPCAConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        k, d = config.latent_dim, info.dim
        self.register_buffer("weight", torch.eye(d)[:, :k].clone())  # W, (D, K)
        self.register_buffer("noise_variance", torch.ones(()))  # sigma^2

    @staticmethod
    def max_latent_dim(d: int) -> int:
        return d - 1  # sigma^2 is the mean of the discarded eigenvalues: at least one is needed

    def set_from_moments(self, m: Moments) -> None:
        k = self.config.latent_dim
        sigma2 = m.eigenvalues[k:].mean().clamp_min(self.config.min_variance)  # Eq. (8)
        scale = (m.eigenvalues[:k] - sigma2).clamp_min(0.0).sqrt()  # (Lambda_K - sigma^2 I)^(1/2)
        self.weight.copy_(m.eigenvectors[:, :k] * scale)  # Eq. (7): W = U_K (...)^(1/2), R = I
        self.noise_variance.fill_(float(sigma2))

    @property
    def covariance(self) -> Tensor:
        """The model covariance ``C = W W^T + sigma^2 I`` (D x D, float64)."""
        w = self.weight.to(torch.float64)
        eye = torch.eye(self.info.dim, dtype=torch.float64, device=w.device)
        return w @ w.T + self.noise_variance.to(torch.float64) * eye

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Exact ``log p(x)`` in nats per example, ``(B, *shape) -> (B,)`` (computed in float64,
        returned in float32, or float64 for float64 input)."""
        if cond is not None:
            raise ConfigError("'ppca' is unconditional; call log_prob without cond.")
        wide = torch.float64
        lp = ppca_log_prob(
            x.reshape(x.shape[0], -1).to(wide),  # (B, *shape) -> (B, D)
            self.mean.to(wide),
            self.weight.to(wide),
            self.noise_variance.to(wide),
        )
        return lp if x.dtype == torch.float64 else lp.float()

    def encode_latent(self, x: Tensor) -> Tensor:
        """The posterior mean ``M^-1 W^T (x - mean)``: ``(B, *shape) -> (B, K)``."""
        w = self.weight.to(torch.float64)
        eye = torch.eye(w.shape[1], dtype=w.dtype, device=w.device)
        m = w.T @ w + self.noise_variance.to(w.dtype) * eye  # (K, K)
        return torch.linalg.solve(m, (self._flat(x) @ w).T).T.float()  # (B, K)

    def decode_latent(self, z: Tensor) -> Tensor:
        """``z (B, K) -> W z + mean``, ``(B, *shape)``: the mean of p(x|z)."""
        return self._shaped(z.to(torch.float64) @ self.weight.to(torch.float64).T)

    def forward(self, x: Tensor) -> Tensor:
        """``W E[z|x] + mean``: the reconstruction from the posterior mean."""
        return self.decode_latent(self.encode_latent(x))

    def draw(self, n: int, noise: bool, generator: torch.Generator | None) -> Tensor:
        """``W z + mean + sigma eps`` (``noise=False``: without ``sigma eps``, the mean of
        p(x|z))."""
        z = randn((n, self.config.latent_dim), generator=generator, device=self.device)
        x = self.decode_latent(z)
        if noise:
            eps = randn(x.shape, generator=generator, device=x.device)
            x = x + self.noise_variance.sqrt() * eps
        return x
