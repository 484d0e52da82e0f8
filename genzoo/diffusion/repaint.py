"""RePaint inpainting (Lugmayr et al., arXiv:2201.09865, Algorithm 1) in the unscaled variable.

With ``x = x0 + sigma * eps`` (EDM convention) one reverse step from ``sigma`` to ``sigma_next``:

- known region (``mask == 1``): a fresh forward sample ``x_known + sigma_next * z`` (Alg. 1,
  line 6, written for the unscaled variable);
- unknown region: DDPM's ancestral step, the posterior q(x_next | x, x0_hat) (see
  :func:`genzoo.diffusion.samplers.ancestral_step`; Alg. 1, line 7);
- both are combined with the mask (line 8).

Resampling (lines 9-10) jumps back by forward noising, ``x + sqrt(sigma^2 - sigma_next^2) z``,
which is q(x_t | x_{t-1}) in the unscaled variable. genzoo uses a simplified jump schedule: the
reverse chain is cut into blocks of ``jump_length`` steps; after each block the state is re-noised
from the block's last sigma back to its first in one forward jump, and the block is run again,
``resample`` times in all (the last pass is kept). ``jump_length = 1`` is the paper's plain
per-step resampling with ``U = resample``; ``resample = 1`` is no resampling.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genzoo.core.errors import ConfigError
from genzoo.core.seeding import randn
from genzoo.diffusion.samplers import Denoiser, _call, ancestral_step


def _step(
    denoiser: Denoiser,
    x: Tensor,
    s: float,
    s_next: float,
    x_known: Tensor,
    mask: Tensor,
    cond: Tensor | None,
    generator: torch.Generator | None,
) -> Tensor:
    """One RePaint reverse step ``s -> s_next`` (Alg. 1, lines 4-8)."""
    x0 = _call(denoiser, x, s, cond)
    down, up = ancestral_step(s, s_next, 1.0)
    unknown = x0 + down * (x - x0) / s  # posterior mean part of the ancestral step
    if up > 0:
        unknown = unknown + up * randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    known = x_known
    if s_next > 0:
        known = x_known + s_next * randn(
            x.shape, generator=generator, device=x.device, dtype=x.dtype
        )
    return mask * known + (1 - mask) * unknown  # Alg. 1, line 8


@torch.no_grad()
def sample_repaint(
    denoiser: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    x_known: Tensor,
    mask: Tensor,
    jump_length: int = 10,
    resample: int = 10,
    generator: torch.Generator | None = None,
    cond: Tensor | None = None,
) -> Tensor:
    """Inpaint ``x_known`` where ``mask == 0`` with RePaint; ``x`` is noise at ``sigmas[0]``.

    ``mask`` (1: known) broadcasts against ``x``; ``sigmas`` descend and end in 0. The denoiser
    is called ``resample * (len(sigmas) - 1)`` times.
    """
    if jump_length < 1 or resample < 1:
        raise ConfigError(f"jump_length = {jump_length} and resample = {resample} must be >= 1.")
    sig = sigmas.tolist()
    m = mask.to(x.dtype).expand_as(x)
    x_known = x_known.to(x.dtype)
    n = len(sig) - 1
    for start in range(0, n, jump_length):
        stop = min(start + jump_length, n)
        for r in range(resample):
            for i in range(start, stop):
                x = _step(denoiser, x, sig[i], sig[i + 1], x_known, m, cond, generator)
            if r < resample - 1:  # jump back: forward noise sigma[stop] -> sigma[start]
                jump = math.sqrt(max(sig[start] ** 2 - sig[stop] ** 2, 0.0))
                x = x + jump * randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x
