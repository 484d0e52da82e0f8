"""A U-Net backbone for denoising (Ronneberger et al., arXiv:1505.04597) as used by DDPM
(Ho et al., arXiv:2006.11239, Appendix B): residual blocks with group norm, a noise embedding
added in every block, self-attention at chosen resolutions, and optional class conditioning —
added to the noise embedding (DDPM) or by adaptive group norm (AdaGN, Dhariwal & Nichol,
arXiv:2105.05233, Sec. 3) — and optional cross-attention on a sequence of context tokens (text),
as in latent diffusion (Rombach et al., arXiv:2112.10752, Sec. 3.3).

The backbone knows nothing of diffusion: it maps
``(x, c_noise, class, context, context_mask) -> output`` of x's shape.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.nn.attention import multi_head_attention
from genzoo.nn.embeddings import ClassEmbedding, NoiseEmbedding


def _norm(ch: int) -> nn.GroupNorm:
    groups = 32 if ch % 32 == 0 else (8 if ch % 8 == 0 else 1)
    return nn.GroupNorm(groups, ch)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice, with the embedding between, and a skip connection.

    The embedding ``e`` (noise + class) enters by addition, ``h + W e`` (DDPM), or, with
    ``adaptive_norm``, by adaptive group norm ``AdaGN(h, e) = (1 + y_s) GroupNorm(h) + y_b`` with
    ``(y_s, y_b) = W e`` (arXiv:2105.05233, Sec. 3; ``1 +`` so that a zero ``W`` is the identity).
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        emb_dim: int,
        dropout: float = 0.0,
        adaptive_norm: bool = False,
    ) -> None:
        super().__init__()
        self.adaptive_norm = adaptive_norm
        self.norm1 = _norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout if adaptive_norm else cout)
        self.norm2 = _norm(cout)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        e = self.emb(emb)[:, :, None, None]  # (B, C or 2C) -> (B, ., 1, 1)
        if self.adaptive_norm:
            scale, shift = e.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift  # AdaGN (arXiv:2105.05233, Sec. 3)
        else:
            h = self.norm2(h + e)
        h = self.conv2(self.drop(F.silu(h)))
        return self.skip(x) + h


def _tokens(x: Tensor) -> Tensor:
    """``(B, C, H, W) -> (B, H*W, C)``: one token per position, row-major."""
    return x.flatten(2).transpose(1, 2)


def _image(t: Tensor, like: Tensor) -> Tensor:
    """``(B, H*W, C) -> (B, C, H, W)`` of ``like``'s shape (contiguous, for the 1x1 convolution)."""
    return t.transpose(1, 2).reshape(like.shape).contiguous()


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
        q, k, v = _tokens(self.qkv(self.norm(x))).split(x.shape[1], dim=2)  # 3 x (B, HW, C)
        out = multi_head_attention(q, k, v, self.heads, project=lambda t: self.proj(_image(t, x)))
        return x + out


class CrossAttnBlock(nn.Module):
    """Multi-head cross-attention from the H*W positions (queries) to context tokens (keys and
    values), ``softmax(Q K^T / sqrt(d)) V`` (arXiv:2112.10752, Sec. 3.3).

    ``context_mask`` (B, L) is True for real tokens; padded tokens get no weight. A row with no
    real token (e.g. a dropped caption) adds nothing: the block is then the identity.
    """

    def __init__(self, ch: int, context_dim: int, head_dim: int = 32) -> None:
        super().__init__()
        self.heads = max(ch // head_dim, 1)
        self.norm = _norm(ch)
        self.q = nn.Conv2d(ch, ch, 1)
        self.kv = nn.Linear(context_dim, 2 * ch)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor | None = None) -> Tensor:
        q = _tokens(self.q(self.norm(x)))  # (B, HW, C)
        k, v = self.kv(context).split(x.shape[1], dim=2)  # 2 x (B, L, C)
        out = multi_head_attention(
            q,
            k,
            v,
            self.heads,
            key_mask=context_mask,
            project=lambda t: self.proj(_image(t, x)),
        )
        return x + out


class UNet(nn.Module):
    """U-Net: ``channels * mult`` per level, ``num_res_blocks`` blocks per level, attention at the
    resolutions listed in ``attn_resolutions`` (e.g. ``(16,)``), class embedding if ``n_classes``.

    Class label ``n_classes`` (one past the last) is the "no class" token used for classifier-free
    guidance. ``adaptive_norm`` conditions every residual block by AdaGN instead of addition;
    ``context_dim > 0`` adds cross-attention to context tokens after every self-attention block
    (at ``attn_resolutions`` and in the middle). ``coord_channels`` appends two channels holding
    each pixel's x and y in [-1, 1] to the input (CoordConv, Liu et al., arXiv:1807.03247): the
    convolutions see where they are, which a prompt's position words need.
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
        adaptive_norm: bool = False,
        context_dim: int = 0,
        coord_channels: bool = False,
    ) -> None:
        super().__init__()
        emb_dim = 4 * channels
        self.context_dim = context_dim
        self.coord_channels = coord_channels

        def res(cin: int, cout: int) -> ResBlock:
            return ResBlock(cin, cout, emb_dim, dropout, adaptive_norm)

        def attn(ch: int) -> list[nn.Module]:
            return [AttnBlock(ch)] + ([CrossAttnBlock(ch, context_dim)] if context_dim else [])

        self.noise_emb = NoiseEmbedding(channels, emb_dim)
        self.class_emb = ClassEmbedding(n_classes, emb_dim) if n_classes else None
        self.conv_in = nn.Conv2d(in_channels + 2 * coord_channels, channels, 3, padding=1)
        self.down = nn.ModuleList()
        self.block_channels: list[int] = []  # channels after each down, mid and up entry, in the
        # order forward's ``block_hook`` sees them (a space-time U-Net puts a layer there)
        self.block_resolutions: list[int] = []  # and their resolutions
        skips = [channels]
        ch, r = channels, resolution
        level_res = []  # resolution of each level (odd sizes round up: 7 -> 4)
        for level, mult in enumerate(channel_mult):
            level_res.append(r)
            for _ in range(num_res_blocks):
                blocks = nn.ModuleList([res(ch, channels * mult)])
                ch = channels * mult
                if r in attn_resolutions:
                    blocks.extend(attn(ch))
                self.down.append(blocks)
                skips.append(ch)
                self.block_channels.append(ch)
                self.block_resolutions.append(r)
            if level != len(channel_mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
                r = (r + 1) // 2
                self.block_channels.append(ch)
                self.block_resolutions.append(r)
        self.mid = nn.ModuleList([res(ch, ch), *attn(ch), res(ch, ch)])
        self.block_channels.append(ch)
        self.block_resolutions.append(r)
        self.encoder_channels = [*skips, ch]  # of encode's skip features, then the middle's
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            r = level_res[level]
            for _ in range(num_res_blocks + 1):
                blocks = nn.ModuleList([res(ch + skips.pop(), channels * mult)])
                ch = channels * mult
                if r in attn_resolutions:
                    blocks.extend(attn(ch))
                self.up.append(blocks)
                self.block_channels.append(ch)
                self.block_resolutions.append(r)
            if level != 0:
                self.up.append(nn.ModuleList([_Upsample(ch)]))
                self.block_channels.append(ch)
                self.block_resolutions.append(level_res[level - 1])
        self.norm_out = _norm(ch)
        self.conv_out = nn.Conv2d(ch, out_channels or in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(
        self,
        x: Tensor,
        c_noise: Tensor,
        class_labels: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        extra_emb: Tensor | None = None,
        block_hook: Callable[[int, Tensor], Tensor] | None = None,
        control: Sequence[Tensor] | None = None,
    ) -> Tensor:
        """``context`` (B, L, context_dim) and ``context_mask`` (B, L), True for real tokens, feed
        the cross-attention blocks; without ``context`` they are skipped (unconditional).
        ``extra_emb`` (B, 4 * channels) is added to the noise embedding (e.g. a pooled text
        embedding, as GLIDE's, arXiv:2112.10741, Sec. 2.3). ``block_hook(i, h)``, if given, maps
        the features after the ``i``-th down, mid or up entry (channels ``block_channels[i]``) and
        the U-Net goes on with its result (the temporal layers of a space-time U-Net).
        ``control``: residuals added to every skip feature and to the middle block's output
        (ControlNet, arXiv:2302.05543, Sec. 3.2), in the order :meth:`encode` returns them."""
        emb = self.embed(c_noise, class_labels, extra_emb, x.shape[0])
        hs, h = self.encode(x, emb, context, context_mask, block_hook=block_hook)
        if control is not None:
            if len(control) != len(hs) + 1:
                raise ValueError(f"control needs {len(hs) + 1} residuals, got {len(control)}")
            hs = [a + c for a, c in zip(hs, control[:-1], strict=True)]
            h = h + control[-1]
        return self.decode(hs, h, emb, context, context_mask, block_hook=block_hook)

    def embed(
        self,
        c_noise: Tensor,
        class_labels: Tensor | None = None,
        extra_emb: Tensor | None = None,
        batch: int = 1,
    ) -> Tensor:
        """The embedding ``(B, E)`` every residual block gets: noise (+ class, + extra), SiLU."""
        emb = self.noise_emb(c_noise)  # (B, E)
        if self.class_emb is not None:  # no labels: the "no class" token
            emb = emb + self.class_emb(class_labels, batch)
        if extra_emb is not None:
            emb = emb + extra_emb
        return F.silu(emb)

    def _block(
        self, blk: nn.Module, h: Tensor, emb: Tensor, ctx: Tensor | None, mask: Any
    ) -> Tensor:
        if isinstance(blk, ResBlock):
            return blk(h, emb)
        if isinstance(blk, CrossAttnBlock):
            return h if ctx is None else blk(h, ctx, mask)
        return blk(h)

    def encode(
        self,
        x: Tensor,
        emb: Tensor,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        hint: Tensor | None = None,
        block_hook: Callable[[int, Tensor], Tensor] | None = None,
    ) -> tuple[list[Tensor], Tensor]:
        """The down path and the middle: ``(skip features, middle output)``; ``hint`` (B,
        channels, H, W) is added after the input convolution (ControlNet's condition);
        ``block_hook`` as in :meth:`forward`."""
        hook = block_hook or (lambda _i, h: h)
        n_hook = itertools.count()
        if self.coord_channels:
            b, _, hh, ww = x.shape
            ys = torch.linspace(-1, 1, hh, device=x.device, dtype=x.dtype)
            xs = torch.linspace(-1, 1, ww, device=x.device, dtype=x.dtype)
            grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))  # (2, H, W): x, y
            x = torch.cat([x, grid.expand(b, -1, -1, -1)], dim=1)
        h = self.conv_in(x)
        if hint is not None:
            h = h + hint
        hs = [h]
        for blocks in self.down:
            for blk in blocks:
                h = self._block(blk, h, emb, context, context_mask)
            h = hook(next(n_hook), h)
            hs.append(h)
        for blk in self.mid:
            h = self._block(blk, h, emb, context, context_mask)
        h = hook(next(n_hook), h)
        return hs, h

    def decode(
        self,
        hs: list[Tensor],
        h: Tensor,
        emb: Tensor,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        block_hook: Callable[[int, Tensor], Tensor] | None = None,
    ) -> Tensor:
        """The up path from the middle output ``h`` and the skip features ``hs``; ``block_hook``
        as in :meth:`forward` (its indices go on after the down path's and the middle's)."""
        hook = block_hook or (lambda _i, h: h)
        n_hook = itertools.count(len(self.down) + 1)
        hs = list(hs)
        for blocks in self.up:
            if isinstance(blocks[0], ResBlock):
                skip = hs.pop()
                h = torch.cat([h[..., : skip.shape[-2], : skip.shape[-1]], skip], dim=1)
            for blk in blocks:
                h = self._block(blk, h, emb, context, context_mask)
            h = hook(next(n_hook), h)
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
        self.class_emb = ClassEmbedding(n_classes, emb_dim) if n_classes else None
        self.inp = nn.Linear(dim, hidden[0])
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in itertools.pairwise(hidden)])
        self.embs = nn.ModuleList([nn.Linear(emb_dim, b) for b in hidden[1:]])
        self.out = nn.Linear(hidden[-1], dim)

    def forward(self, x: Tensor, c_noise: Tensor, class_labels: Tensor | None = None) -> Tensor:
        emb = self.noise_emb(c_noise)  # (B, E)
        if self.class_emb is not None:
            emb = emb + self.class_emb(class_labels, x.shape[0])
        h = F.silu(self.inp(x) + emb)
        for lin, e in zip(self.layers, self.embs, strict=True):
            h = F.silu(lin(h) + e(emb))
        return self.out(h)
