"""A U-Net backbone for denoising (Ronneberger et al., arXiv:1505.04597) as used by DDPM
(Ho et al., arXiv:2006.11239, Appendix B): residual blocks with group norm, a noise embedding
added in every block, self-attention at chosen resolutions, and optional class conditioning.

The backbone knows nothing of diffusion: it maps ``(x, c_noise, class) -> output`` of x's shape.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.nn.embeddings import NoiseEmbedding


def _norm(ch: int) -> nn.GroupNorm:
    groups = 32 if ch % 32 == 0 else (8 if ch % 8 == 0 else 1)
    return nn.GroupNorm(groups, ch)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice, with the embedding added between, and a skip connection."""

    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = _norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2 = _norm(cout)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]  # (B, C) -> (B, C, 1, 1)
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Multi-head self-attention over the H*W positions (scaled-dot-product attention)."""

    def __init__(self, ch: int, head_dim: int = 32) -> None:
        super().__init__()
        self.heads = max(ch // head_dim, 1)
        self.norm = _norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each (B, heads, HW, C/heads)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, C/heads)
        out = out.transpose(-1, -2).reshape(b, c, h, w)
        return x + self.proj(out)


class UNet(nn.Module):
    """U-Net: ``channels * mult`` per level, ``num_res_blocks`` blocks per level, attention at the
    resolutions listed in ``attn_resolutions`` (e.g. ``(16,)``), class embedding if ``n_classes``.

    Class label ``n_classes`` (one past the last) is the "no class" token used for classifier-free
    guidance.
    """

    def __init__(
        self,
        in_channels: int,
        resolution: int,
        channels: int = 64,
        channel_mult: Sequence[int] = (1, 2),
        num_res_blocks: int = 2,
        attn_resolutions: Sequence[int] = (),
        dropout: float = 0.0,
        n_classes: int = 0,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        emb_dim = 4 * channels
        self.noise_emb = NoiseEmbedding(channels, emb_dim)
        self.class_emb = nn.Embedding(n_classes + 1, emb_dim) if n_classes else None
        self.conv_in = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.down = nn.ModuleList()
        skips = [channels]
        ch, res = channels, resolution
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                blocks = nn.ModuleList([ResBlock(ch, channels * mult, emb_dim, dropout)])
                ch = channels * mult
                if res in attn_resolutions:
                    blocks.append(AttnBlock(ch))
                self.down.append(blocks)
                skips.append(ch)
            if level != len(channel_mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
                res = (res + 1) // 2
        self.mid = nn.ModuleList(
            [ResBlock(ch, ch, emb_dim, dropout), AttnBlock(ch), ResBlock(ch, ch, emb_dim, dropout)]
        )
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for _ in range(num_res_blocks + 1):
                blocks = nn.ModuleList(
                    [ResBlock(ch + skips.pop(), channels * mult, emb_dim, dropout)]
                )
                ch = channels * mult
                if res in attn_resolutions:
                    blocks.append(AttnBlock(ch))
                self.up.append(blocks)
            if level != 0:
                self.up.append(nn.ModuleList([_Upsample(ch)]))
                res = res * 2
        self.norm_out = _norm(ch)
        self.conv_out = nn.Conv2d(ch, out_channels or in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: Tensor, c_noise: Tensor, class_labels: Tensor | None = None) -> Tensor:
        emb = self.noise_emb(c_noise)  # (B, E)
        if self.class_emb is not None:
            if class_labels is None:  # unconditional: the "no class" token
                class_labels = torch.full(
                    (x.shape[0],), self.class_emb.num_embeddings - 1, device=x.device
                )
            emb = emb + self.class_emb(class_labels)
        emb = F.silu(emb)
        h = self.conv_in(x)
        hs = [h]
        for blocks in self.down:
            for blk in blocks:
                h = blk(h, emb) if isinstance(blk, ResBlock) else blk(h)
            hs.append(h)
        for blk in self.mid:
            h = blk(h, emb) if isinstance(blk, ResBlock) else blk(h)
        for blocks in self.up:
            if isinstance(blocks[0], ResBlock):
                skip = hs.pop()
                h = torch.cat([h[..., : skip.shape[-2], : skip.shape[-1]], skip], dim=1)
            for blk in blocks:
                h = blk(h, emb) if isinstance(blk, ResBlock) else blk(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class _Upsample(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class NoiseMLP(nn.Module):
    """An MLP denoising backbone for points: ``(x, c_noise, class) -> output`` of x's shape."""

    def __init__(
        self, dim: int, hidden: Sequence[int] = (256, 256, 256), n_classes: int = 0
    ) -> None:
        super().__init__()
        emb_dim = hidden[0]
        self.noise_emb = NoiseEmbedding(64, emb_dim)
        self.class_emb = nn.Embedding(n_classes + 1, emb_dim) if n_classes else None
        self.inp = nn.Linear(dim, hidden[0])
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in itertools.pairwise(hidden)])
        self.embs = nn.ModuleList([nn.Linear(emb_dim, b) for b in hidden[1:]])
        self.out = nn.Linear(hidden[-1], dim)

    def forward(self, x: Tensor, c_noise: Tensor, class_labels: Tensor | None = None) -> Tensor:
        emb = self.noise_emb(c_noise)  # (B, E)
        if self.class_emb is not None:
            if class_labels is None:
                class_labels = torch.full(
                    (x.shape[0],), self.class_emb.num_embeddings - 1, device=x.device
                )
            emb = emb + self.class_emb(class_labels)
        h = F.silu(self.inp(x) + emb)
        for lin, e in zip(self.layers, self.embs, strict=True):
            h = F.silu(lin(h) + e(emb))
        return self.out(h)
