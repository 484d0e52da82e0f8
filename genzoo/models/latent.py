"""Latent interpolation for every model with a latent space (:class:`LatentSpace`).

Two inputs are encoded with ``encode_latent``, their codes joined by a path, and the path decoded
with ``decode_latent``. Latents with a N(0, I) prior (VAE, PPCA, flows) follow a great circle
(spherical interpolation, "slerp": White, "Sampling Generative Networks", arXiv:1609.04468,
Sec. 2.2), so the intermediate codes keep the norm typical of the prior instead of passing
through its low-norm interior; other latents (AE, DAE, VQ-VAE's z_e, PCA coefficients) follow a
straight line. The path starts and ends exactly at the two codes, so the end frames are the
model's reconstructions of the inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import GenerativeModel, LatentSpace
from genzoo.models import MODELS


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """``(1 - t) a + t b`` for each ``t``: ``a, b (B, ...)``, ``t (T,)`` -> ``(B, T, ...)``.

    Written so that ``t = 0`` gives ``a`` and ``t = 1`` gives ``b`` exactly."""
    tt = t.view(1, -1, *([1] * (a.dim() - 1))).to(a.dtype)  # (1, T, 1, ...)
    return (1 - tt) * a.unsqueeze(1) + tt * b.unsqueeze(1)


def slerp(a: Tensor, b: Tensor, t: Tensor, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation of each pair of flattened vectors: ``(B, T, ...)``.

    ``sin((1 - t) w) / sin w * a + sin(t w) / sin w * b`` with ``w`` the angle between ``a`` and
    ``b``; nearly parallel pairs fall back to :func:`lerp`. ``t = 0`` and ``t = 1`` give ``a`` and
    ``b`` exactly."""
    af, bf = a.flatten(1).double(), b.flatten(1).double()  # (B, ...) -> (B, N)
    cos = (af * bf).sum(1) / (af.norm(dim=1) * bf.norm(dim=1)).clamp_min(1e-30)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))  # (B,)
    so = torch.sin(omega)
    tt = t.double().view(1, -1)  # (1, T)
    w = omega.view(-1, 1)  # (B, 1)
    safe = (so > eps).view(-1, 1)
    ca = torch.where(safe, torch.sin((1 - tt) * w) / so.view(-1, 1).clamp_min(eps), 1 - tt)
    cb = torch.where(safe, torch.sin(tt * w) / so.view(-1, 1).clamp_min(eps), tt)
    shape = (*ca.shape, *([1] * (a.dim() - 1)))  # (B, T, 1, ...)
    out = ca.view(shape) * a.unsqueeze(1).double() + cb.view(shape) * b.unsqueeze(1).double()
    return out.to(a.dtype)


def latent_models() -> list[str]:
    """Registered models with a latent space."""
    return [n for n in MODELS.names() if issubclass(MODELS.get(n), LatentSpace)]


def check_latent(model: GenerativeModel) -> None:
    """One clear sentence if ``model`` has no latent space to interpolate in."""
    if not isinstance(model, LatentSpace):
        raise ConfigError(
            f"Model {model.name!r} has no latent space to interpolate in; models with one are "
            f"{choices(latent_models())}."
        )


@torch.no_grad()
def interpolate_latents(
    model: GenerativeModel, x_a: Tensor, x_b: Tensor, steps: int = 8, method: str = "auto"
) -> Tensor:
    """Decoded interpolations from ``x_a`` to ``x_b`` (each ``(B, *shape)``): ``(B, steps,
    *shape)`` in model space. ``method``: ``auto`` (slerp for a Gaussian prior, else lerp),
    ``slerp`` or ``lerp``. The first and last frames are the reconstructions of the inputs."""
    check_latent(model)
    if steps < 2:
        raise ConfigError(f"steps = {steps} must be at least 2 (the two end points).")
    if method not in ("auto", "slerp", "lerp"):
        raise ConfigError(f"method = {method!r} is not valid; choose 'auto', 'lerp' or 'slerp'.")
    if method == "auto":
        method = "slerp" if model.latent_prior == "gaussian" else "lerp"
    z_a, z_b = model.encode_latent(x_a), model.encode_latent(x_b)  # (B, *latent_shape)
    t = torch.linspace(0.0, 1.0, steps, device=z_a.device)
    path = (slerp if method == "slerp" else lerp)(z_a, z_b, t)  # (B, T, *latent_shape)
    b = z_a.shape[0]
    flat = path.reshape(b * steps, *z_a.shape[1:])  # (B * T, *latent_shape)
    x = model.decode_latent(flat).float()
    if model.info.kind == "images":
        lo, hi = model.info.value_range
        x = x.clamp(lo, hi)
    return x.view(b, steps, *x.shape[1:])  # (B * T, *shape) -> (B, T, *shape)
