"""A Vision Transformer encoder (Dosovitskiy et al., "An Image is Worth 16x16 Words",
arXiv:2010.11929), tiny enough for a CPU: the image encoder of DINO's student and teacher.

Non-overlapping ``patch x patch`` patches are embedded linearly (a strided convolution, Eq. (1)),
a learned ``[CLS]`` token is prepended, fixed 2-D sin-cos positions
(:func:`~genzoo.nn.dit.sincos_2d`, as in MAE and DiT) are added, and the tokens run through
genzoo's pre-LN :class:`~genzoo.nn.transformer.Transformer` with full (non-causal)
self-attention (Eq. (2)-(3)); the representation is the final ``[CLS]`` feature (Eq. (4)), or
with ``pool="mean"`` the mean of the final patch tokens (as MAE's linear probe and DINO's
``avgpool`` evaluation do). Because the positions are a function of the grid, images of any
side divisible by ``patch`` are accepted: DINO's small local crops run through the same network
as its global views (arXiv:2104.14294, Sec. 3.1 interpolates learned positions; fixed sin-cos
ones need no interpolation).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genzoo.nn.dit import sincos_2d
from genzoo.nn.transformer import Transformer


class ViT(nn.Module):
    """``(B, C, H, W) -> (B, width)``: the ``[CLS]`` feature (``pool="cls"``) or the mean of the
    patch tokens (``pool="mean"``); ``out_dim = width``."""

    def __init__(
        self,
        in_ch: int,
        patch: int = 4,
        width: int = 64,
        depth: int = 4,
        heads: int = 4,
        pool: str = "cls",
    ) -> None:
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool = {pool!r} must be 'cls' or 'mean'")
        self.pool = pool
        self.patch = patch
        self.out_dim = width
        self.embed = nn.Conv2d(in_ch, width, patch, stride=patch)  # Eq. (1): x_p E
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        nn.init.normal_(self.cls, std=0.02)
        self.transformer = Transformer(depth, width, heads, causal=False, max_len=4096)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        if h % self.patch or w % self.patch:
            raise ValueError(f"image side {h}x{w} is not divisible by the patch size {self.patch}")
        t = self.embed(x).flatten(2).transpose(1, 2)  # (B, D, gh, gw) -> (B, N, D)
        pos = sincos_2d(self.out_dim, h // self.patch, w // self.patch).to(t)  # (N, D)
        t = torch.cat([self.cls.expand(b, -1, -1), t + pos], dim=1)  # (B, 1 + N, D)
        out = self.transformer(t)  # (B, 1 + N, D)
        if self.pool == "mean":
            return out[:, 1:].mean(1)  # mean of the patch tokens, (B, D)
        return out[:, 0]  # Eq. (4): y = LN(z_L^0), (B, D)
