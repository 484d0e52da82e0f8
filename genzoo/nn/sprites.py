"""Placing a sprite on a frame and reading it back: the spatial transformer (Jaderberg et al.,
arXiv:1506.02025) restricted to translations, as ``video-ddpae`` renders its frames and as the
video metrics re-render real digits off the pixel grid. ``grid_sample`` does the bilinear
sampling; the grids (pixel centres at ``i + 1/2``, ``align_corners=False``) are written here
because no library builds them from a pixel-unit pose."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sprite_grid(pose: Tensor, k: int, h: int, w: int) -> Tensor:
    """``T``'s sampling grid ``(N, H, W, 2)``: for each frame pixel, where it falls in a ``k x k``
    sprite centred at ``pose (N, 2)`` (x, y in pixels, pixel centres at ``i + 1/2``), in
    ``grid_sample``'s normalised coordinates (``align_corners=False``: -1 and 1 are the sprite's
    outer edges)."""
    xs = torch.arange(w, device=pose.device, dtype=pose.dtype) + 0.5
    ys = torch.arange(h, device=pose.device, dtype=pose.dtype) + 0.5
    u = (xs[None, :] - pose[:, :1] + k / 2) * (2 / k) - 1  # (N, W)
    v = (ys[None, :] - pose[:, 1:] + k / 2) * (2 / k) - 1  # (N, H)
    return torch.stack([u[:, None, :].expand(-1, h, w), v[:, :, None].expand(-1, h, w)], -1)


def window_grid(pose: Tensor, k: int, h: int, w: int) -> Tensor:
    """``T^-1``'s grid ``(N, k, k, 2)``: for each sprite pixel, where it falls in an ``h x w``
    frame when the sprite is centred at ``pose (N, 2)``: the window the content is read from."""
    a = torch.arange(k, device=pose.device, dtype=pose.dtype) + 0.5 - k / 2  # (k,)
    u = (a[None, :] + pose[:, :1]) * (2 / w) - 1  # (N, k)
    v = (a[None, :] + pose[:, 1:]) * (2 / h) - 1
    return torch.stack([u[:, None, :].expand(-1, k, k), v[:, :, None].expand(-1, k, k)], -1)


def render(sprite: Tensor, pose: Tensor, h: int, w: int) -> Tensor:
    """``T(sprite, p_t)`` (Eq. 3): sprites ``(B, C, k, k)`` of intensities placed at the poses
    ``(B, T, 2)`` on black ``h x w`` frames -> ``(B, T, C, h, w)``."""
    b, t = pose.shape[:2]
    c, k = sprite.shape[1], sprite.shape[-1]
    grid = sprite_grid(pose.reshape(b * t, 2), k, h, w)
    src = sprite[:, None].expand(b, t, c, k, k).reshape(b * t, c, k, k)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(b, t, c, h, w)


def windows(frames: Tensor, pose: Tensor, k: int) -> Tensor:
    """``T^-1``: the ``k x k`` windows ``(B, T, C, k, k)`` of frames ``(B, T, C, H, W)`` of
    intensities centred at the poses ``(B, T, 2)`` (black outside the frame)."""
    b, t, c, h, w = frames.shape
    grid = window_grid(pose.reshape(b * t, 2), k, h, w)
    out = F.grid_sample(frames.reshape(b * t, c, h, w), grid, mode="bilinear",
                        padding_mode="zeros", align_corners=False)  # fmt: skip
    return out.view(b, t, c, k, k)
