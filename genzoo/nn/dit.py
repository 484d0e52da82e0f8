"""DiT: a Diffusion Transformer backbone (Peebles & Xie, "Scalable Diffusion Models with
Transformers", arXiv:2212.09748).

Patchify a (B, C, H, W) input into (B, N, D) tokens with fixed 2-D sin-cos positions, run
transformer blocks conditioned by adaLN-Zero (Sec. 3.2: the noise + class embedding regresses a
shift, scale and a zero-initialised gate for each sub-layer), then a final adaptive LayerNorm and a
linear decoder back to patches. Same call signature as genzoo's U-Net:
``(x, c_noise, class_labels) -> output`` of x's shape. Knows nothing of diffusion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.nn.attention import multi_head_attention
from genzoo.nn.embeddings import ClassEmbedding, NoiseEmbedding


def sincos_2d(dim: int, gh: int, gw: int) -> Tensor:
    """Fixed 2-D sin-cos position embeddings (MAE / DiT), shape (gh * gw, dim)."""
    if dim % 4:
        raise ValueError(f"DiT width must be divisible by 4, got {dim}")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    ys, xs = torch.meshgrid(
        torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64), indexing="ij"
    )
    out = []
    for pos in (ys.reshape(-1), xs.reshape(-1)):
        ang = pos[:, None] * omega[None]  # (N, dim/4)
        out += [ang.sin(), ang.cos()]
    return torch.cat(out, dim=1).float()  # (N, dim)


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]  # (B, N, D) with (B, D) modulation


class DiTBlock(nn.Module):
    """Pre-LN transformer block with adaLN-Zero conditioning (DiT Sec. 3.2, Fig. 3)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"))
        self.mlp_out = nn.Linear(hidden, dim)
        self.ada = nn.Linear(dim, 6 * dim)
        nn.init.zeros_(self.ada.weight)  # adaLN-Zero: every block starts as the identity
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(F.silu(c)).chunk(6, dim=1)
        h = _modulate(self.norm1(x), sh1, sc1)
        q, k, v = self.qkv(h).split(x.shape[2], dim=2)  # 3 x (B, N, D)
        x = x + g1[:, None] * multi_head_attention(q, k, v, self.heads, project=self.proj)
        h = _modulate(self.norm2(x), sh2, sc2)
        return x + g2[:, None] * self.mlp_out(self.mlp(h))


class DiT(nn.Module):
    """DiT backbone: ``patch`` size, ``width`` D, ``depth`` blocks, ``heads`` attention heads."""

    def __init__(
        self,
        in_channels: int,
        resolution: int,
        patch: int = 2,
        width: int = 128,
        depth: int = 4,
        heads: int = 4,
        n_classes: int = 0,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        if resolution % patch:
            raise ValueError(f"resolution {resolution} is not divisible by the patch size {patch}")
        self.patch, self.cin = patch, in_channels
        self.cout = out_channels or in_channels
        self.grid = resolution // patch
        self.embed = nn.Conv2d(in_channels, width, patch, stride=patch)
        self.register_buffer("pos", sincos_2d(width, self.grid, self.grid), persistent=False)
        self.noise_emb = NoiseEmbedding(256, width)
        self.class_emb = ClassEmbedding(n_classes, width) if n_classes else None
        self.blocks = nn.ModuleList([DiTBlock(width, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, patch * patch * self.cout)
        for m in (self.ada, self.out):  # zero-initialised final layer (DiT Sec. 3.2)
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.embed.weight.view(width, -1))
        self.width = width

    def forward(self, x: Tensor, c_noise: Tensor, class_labels: Tensor | None = None) -> Tensor:
        b, _, h, w = x.shape
        t = self.embed(x).flatten(2).transpose(1, 2) + self.pos  # (B, N, D)
        c = self.noise_emb(c_noise)  # (B, D)
        if self.class_emb is not None:
            c = c + self.class_emb(class_labels, b)
        for blk in self.blocks:
            t = blk(t, c)
        shift, scale = self.ada(F.silu(c)).chunk(2, dim=1)
        t = self.out(_modulate(self.norm(t), shift, scale))  # (B, N, p*p*C)
        p, g = self.patch, self.grid
        t = t.reshape(b, g, g, p, p, self.cout).permute(0, 5, 1, 3, 2, 4)  # (B, C, g, p, g, p)
        return t.reshape(b, self.cout, h, w)
