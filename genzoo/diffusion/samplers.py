"""Stateless samplers over the one denoiser currency ``D(x, sigma, cond) -> x0_hat``.

Every sampler has the signature ``sample_x(denoiser, x, sigmas, *, generator=None, callback=None,
**options) -> x``: ``x`` is the initial noise already scaled by ``sigmas[0]``, ``sigmas`` descend
and end in 0 (see :mod:`genzoo.diffusion.schedules`). ``x`` lives in the unscaled space
``x0 + sigma * eps`` (EDM, arXiv:2206.00364), so every sampler works with every diffusion model.
``callback(i, x, sigma, x0_hat)`` is called after each step (for progress bars or trajectories).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor

from genzoo.core.errors import GenzooError, choices
from genzoo.core.options import option
from genzoo.core.seeding import randn


class Denoiser(Protocol):
    def __call__(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor: ...


Callback = Callable[[int, Tensor, float, Tensor], None] | None


def _call(denoiser: Denoiser, x: Tensor, sigma: Tensor | float, cond: Tensor | None) -> Tensor:
    s = torch.full((x.shape[0],), float(sigma), device=x.device, dtype=torch.float32)
    return denoiser(x, s, cond) if cond is not None else denoiser(x, s)


def ancestral_step(sigma_from: float, sigma_to: float, eta: float = 1.0) -> tuple[float, float]:
    """Split a step into a deterministic part to ``sigma_down`` and fresh noise ``sigma_up``.

    With ``eta = 1`` this is DDPM's posterior q(x_s | x_t, x0) (arXiv:2006.11239, Eq. 7) written in
    the unscaled variable; ``eta`` interpolates to DDIM (arXiv:2010.02502, Eq. 16).
    """
    if sigma_to == 0:
        return 0.0, 0.0
    up = eta * math.sqrt(max(sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2, 0.0))
    up = min(up, sigma_to)
    down = math.sqrt(sigma_to**2 - up**2)
    return down, up


@torch.no_grad()
def sample_ddim(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    eta: float = 0.0,
    cond: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callback = None,
) -> Tensor:
    """DDIM (Song et al., arXiv:2010.02502): ``x_s = x0 + sqrt(s^2 - c^2) eps_hat + c z``.

    ``eta = 0`` is deterministic DDIM, ``eta = 1`` is DDPM's ancestral sampler.
    """
    sig = sigmas.tolist()
    for i in range(len(sig) - 1):
        x0 = _call(denoiser, x, sig[i], cond)
        down, up = ancestral_step(sig[i], sig[i + 1], eta)
        eps = (x - x0) / sig[i]  # eps_hat, Eq. (12) of the DDIM paper in the unscaled variable
        x = x0 + down * eps
        if up > 0:
            x = x + up * randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        if callback is not None:
            callback(i, x, sig[i], x0)
    return x


@torch.no_grad()
def sample_ancestral(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callback = None,
) -> Tensor:
    """DDPM's ancestral sampler (Ho et al., arXiv:2006.11239, Algorithm 2) = DDIM with eta 1."""
    return sample_ddim(
        denoiser, x, sigmas, eta=1.0, cond=cond, generator=generator, callback=callback
    )


@torch.no_grad()
def sample_euler(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callback = None,
) -> Tensor:
    """Euler's method on the probability-flow ODE ``dx/dsigma = (x - D(x, sigma)) / sigma``.

    (Karras et al., arXiv:2206.00364, Eq. 3 with s(t) = 1, sigma(t) = t.)
    """
    sig = sigmas.tolist()
    for i in range(len(sig) - 1):
        x0 = _call(denoiser, x, sig[i], cond)
        d = (x - x0) / sig[i]  # Eq. (3)
        x = x + d * (sig[i + 1] - sig[i])
        if callback is not None:
            callback(i, x, sig[i], x0)
    return x


@torch.no_grad()
def sample_heun(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callback = None,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = float("inf"),
    s_noise: float = 1.0,
) -> Tensor:
    """Heun's 2nd-order method, EDM Algorithm 1; with ``s_churn > 0`` the stochastic Algorithm 2.

    (Karras et al., arXiv:2206.00364.) The last step (to sigma 0) is a plain Euler step.
    """
    sig = sigmas.tolist()
    n = len(sig) - 1
    for i in range(n):
        s_cur = sig[i]
        gamma = min(s_churn / n, math.sqrt(2) - 1) if s_tmin <= s_cur <= s_tmax else 0.0
        s_hat = s_cur * (1 + gamma)  # Alg. 2, line 5
        if gamma > 0:
            z = randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + math.sqrt(s_hat**2 - s_cur**2) * s_noise * z  # Alg. 2, line 6
        x0 = _call(denoiser, x, s_hat, cond)
        d = (x - x0) / s_hat  # Alg. 1, line 4
        x_next = x + (sig[i + 1] - s_hat) * d  # line 5
        if sig[i + 1] > 0:
            x0_2 = _call(denoiser, x_next, sig[i + 1], cond)
            d2 = (x_next - x0_2) / sig[i + 1]  # line 7
            x_next = x + (sig[i + 1] - s_hat) * 0.5 * (d + d2)  # line 8
        x = x_next
        if callback is not None:
            callback(i, x, s_cur, x0)
    return x


@torch.no_grad()
def sample_dpmpp_2m(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callback = None,
) -> Tensor:
    """DPM-Solver++(2M) (Lu et al., arXiv:2211.01095, Algorithm 2) in the unscaled variable.

    With ``lambda = -log sigma`` and ``h = lambda_next - lambda``, the data-prediction update is
    ``x_next = (sigma_next / sigma) x - (exp(-h) - 1) D`` with a second-order multistep ``D``.
    """
    sig = sigmas.tolist()
    old_x0: Tensor | None = None
    h_last = 0.0
    for i in range(len(sig) - 1):
        x0 = _call(denoiser, x, sig[i], cond)
        if sig[i + 1] == 0:
            x = x0
        else:
            h = math.log(sig[i]) - math.log(sig[i + 1])
            if old_x0 is None:
                d = x0  # first step: DPM-Solver++(1) = DDIM
            else:
                r = h_last / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * old_x0  # Alg. 2, line 6
            x = (sig[i + 1] / sig[i]) * x - math.expm1(-h) * d  # Alg. 2, line 7
            h_last = h
        old_x0 = x0
        if callback is not None:
            callback(i, x, sig[i], x0)
    return x


@torch.no_grad()
def sample_euler_maruyama(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callback = None,
) -> Tensor:
    """Euler-Maruyama on the reverse-time SDE (Song et al., arXiv:2011.13456, Eq. 6) with
    ``sigma(t) = t``: ``x' = x + (s^2 - s'^2) score + sqrt(s^2 - s'^2) z``, score = (D - x) / s^2.
    The last step (to sigma 0) returns the denoised estimate."""
    sig = sigmas.tolist()
    for i in range(len(sig) - 1):
        x0 = _call(denoiser, x, sig[i], cond)
        if sig[i + 1] == 0:
            x = x0
        else:
            dvar = sig[i] ** 2 - sig[i + 1] ** 2
            score = (x0 - x) / sig[i] ** 2
            z = randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + dvar * score + math.sqrt(dvar) * z
        if callback is not None:
            callback(i, x, sig[i], x0)
    return x


@torch.no_grad()
def sample_langevin(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callback = None,
    n_steps_each: int = 5,
    step_lr: float = 2e-5,
    denoise_last: bool = True,
) -> Tensor:
    """Annealed Langevin dynamics (Song & Ermon, arXiv:1907.05600, Algorithm 1):
    at each level ``alpha = step_lr * sigma^2 / sigma_min^2`` and ``n_steps_each`` steps
    ``x <- x + alpha / 2 * score + sqrt(alpha) z``; finally one denoising step (NCSNv2,
    arXiv:2006.09011)."""
    sig = [s for s in sigmas.tolist() if s > 0]
    s_min = sig[-1]
    for i, s in enumerate(sig):
        alpha = step_lr * (s / s_min) ** 2
        for _ in range(n_steps_each):
            x0 = _call(denoiser, x, s, cond)
            score = (x0 - x) / s**2
            z = randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + 0.5 * alpha * score + math.sqrt(alpha) * z
        if callback is not None:
            callback(i, x, s, x0)
    if denoise_last:
        x = _call(denoiser, x, s_min, cond)
    return x


@torch.no_grad()
def sample_pc(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    cond: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callback = None,
    snr: float = 0.16,
    n_corrector: int = 1,
) -> Tensor:
    """Predictor-corrector (Song et al., arXiv:2011.13456, Algorithms 2-4): a reverse-diffusion
    (Euler-Maruyama) predictor, then Langevin correctors with step ``2 (snr |z| / |score|)^2``."""
    sig = sigmas.tolist()
    for i in range(len(sig) - 1):
        s = sig[i]
        for _ in range(n_corrector):  # corrector at the current level
            score = (_call(denoiser, x, s, cond) - x) / s**2
            z = randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            g_norm = score.flatten(1).norm(dim=1).mean()
            z_norm = z.flatten(1).norm(dim=1).mean()
            eps = 2 * (snr * z_norm / g_norm) ** 2
            x = x + eps * score + (2 * eps).sqrt() * z
        x0 = _call(denoiser, x, s, cond)  # predictor
        if sig[i + 1] == 0:
            x = x0
        else:
            dvar = s**2 - sig[i + 1] ** 2
            z = randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + dvar * (x0 - x) / s**2 + math.sqrt(dvar) * z
        if callback is not None:
            callback(i, x, s, x0)
    return x


SAMPLERS: dict[str, Callable[..., Tensor]] = {
    "ancestral": sample_ancestral,
    "ddpm": sample_ancestral,
    "ddim": sample_ddim,
    "euler": sample_euler,
    "heun": sample_heun,
    "dpmpp-2m": sample_dpmpp_2m,
    "euler-maruyama": sample_euler_maruyama,
    "langevin": sample_langevin,
    "pc": sample_pc,
}


# the ranges of the samplers' numeric options (a negative noise scale or step, no corrector
# step at all where one is asked for, would sample something else without a word)
OPTION_BOUNDS: dict[str, dict[str, float]] = {
    "eta": {"ge": 0.0},
    "s_churn": {"ge": 0.0},
    "s_tmin": {"ge": 0.0},
    "s_tmax": {"ge": 0.0},
    "s_noise": {"ge": 0.0},
    "n_steps_each": {"ge": 1},
    "step_lr": {"gt": 0.0},
    "snr": {"gt": 0.0},
    "n_corrector": {"ge": 0},
    "jump_length": {"ge": 1},
    "resample": {"ge": 1},
}


def get_sampler(name: str) -> Callable[..., Tensor]:
    if name not in SAMPLERS:
        raise GenzooError(f"Unknown sampler {name!r}; choose {choices(SAMPLERS)}.")
    return SAMPLERS[name]


def call_sampler(
    name: str,
    fn: Callable[..., Tensor],
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    **options: Any,
) -> Tensor:
    """Run the sampler function ``fn`` (called ``name`` in errors); options it does not take are
    an error naming them."""
    params = inspect.signature(fn).parameters
    bad = [k for k in options if k not in params]
    if bad:
        valid = [p for p in params if p not in ("denoiser", "x", "sigmas")]
        raise GenzooError(
            f"Sampler {name!r} takes no option {bad[0]!r}; it takes {choices(valid)}."
        )
    options = dict(options)
    for key, value in options.items():  # numbers and switches as typed (`key=value` is text)
        default = params[key].default
        if isinstance(default, (bool, int, float)) and not isinstance(value, Tensor):
            bounds = OPTION_BOUNDS.get(key, {})
            options[key] = option(options, key, default, infinite=key == "s_tmax", **bounds)
    return fn(denoiser, x, sigmas, **options)


def run_sampler(name: str, denoiser: Denoiser, x: Tensor, sigmas: Tensor, **options: Any) -> Tensor:
    """Run sampler ``name``; options a sampler does not take are an error naming them."""
    return call_sampler(name, get_sampler(name), denoiser, x, sigmas, **options)
