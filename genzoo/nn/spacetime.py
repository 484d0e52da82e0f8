"""A factorised space-time U-Net for video (Ho et al., "Video Diffusion Models",
arXiv:2204.03458, Sec. 3): the image U-Net's own layers run on every frame (the frames folded into
the batch, so each 2-D convolution, group norm and spatial attention sees one frame), and after
each of its down, middle and up stages a temporal attention layer mixes the frames at every
pixel, with relative positions through rotary embeddings (RoFormer, arXiv:2104.09864).

The spatial layers are :class:`~genzoo.nn.unet.UNet`'s (not a copy): the temporal layers enter
through its ``block_hook``. Each temporal layer is residual with a zero-initialised output
projection, so at initialisation it is the identity and the space-time U-Net computes the image
U-Net frame by frame; in particular, with ``T = 1`` it equals the image U-Net exactly. With
``causal=True`` frame ``t`` attends to frames ``<= t`` only, and since every other layer works
within a frame, no output frame depends on a later input frame.

Full space-time attention (``spacetime_resolutions``): per-pixel temporal attention links a
pixel only with the same pixel of the other frames, so a shape that moves a few pixels a frame is
not carried along. At the resolutions listed, the temporal layer is replaced by
:class:`SpaceTimeAttention`, self-attention over all ``T * H * W`` positions of a clip (the joint
space-time attention of ViViT's model 1, Arnab et al., arXiv:2103.15691, Sec. 3.3; "full
attention" of TimeSformer, Bertasius et al., arXiv:2102.05095, Sec. 3), with relative positions in
time, height and width through axial rotary embeddings (RoFormer, arXiv:2104.09864, Sec. 3.4.2,
applied per axis). It is cheap only at the coarsest levels (8 x 8 x 8 = 512 tokens of 8-frame
16 x 16 clips at the 8 x 8 level), which is where it goes; it also starts as the identity.

Text conditioning: a clip's context tokens ``(B, L, C)`` (and mask, and pooled embedding) are given
to every one of its frames, so the image U-Net's cross-attention blocks attend from each frame's
positions to the same caption.

Conditioned temporal layers (``temporal_cond``, off by default): each temporal layer's normalised
input is modulated and its output scaled by the per-frame embedding ``e`` that every residual
block of the image U-Net gets (noise level, pooled caption, and the frame index if given), as
adaLN in DiT (Peebles & Xie, arXiv:2212.09748, Sec. 3.2): ``h + (1 + g) proj(attn((1 + s)
norm(h) + b))`` with ``(s, b, g)`` a linear map of ``e``. That map starts at zero, so the layer
starts as the unconditioned one (not as the identity, as DiT's adaLN-Zero, since it may take
over trained weights); then the caption steers the temporal attention, not only the spatial
layers. Frame embedding (``frame_embedding``, off by default): a learned embedding of the frame
index ``t`` added to frame ``t``'s embedding, the learned temporal position embedding of
TimeSformer (Bertasius et al., arXiv:2102.05095, Eq. (1)), so the spatial layers know which frame
they draw; it starts at zero. Both off: no parameter of theirs exists (state dicts unchanged).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genzoo.nn.attention import multi_head_attention, rotary_tables
from genzoo.nn.unet import UNet, _norm

MAX_FRAMES = 64  # longest clip the rotary tables cover


class _ResidualAttention(nn.Module):
    """The parameters both attentions below share: a group norm, ``qkv`` and an output ``proj``
    that starts at zero (so a new attention layer is the identity)."""

    def __init__(self, ch: int, causal: bool = False, head_dim: int = 16, emb_dim: int = 0) -> None:
        super().__init__()
        self.heads = max(ch // head_dim, 1)
        self.causal = causal
        self.norm = _norm(ch)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.proj = nn.Linear(ch, ch)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.ada: nn.Linear | None = None  # emb_dim > 0: adaLN from the per-frame embedding
        if emb_dim:
            self.ada = nn.Linear(emb_dim, 3 * ch)  # -> (scale, shift, gate), zero at the start
            nn.init.zeros_(self.ada.weight)
            nn.init.zeros_(self.ada.bias)

    def modulation(self, emb: Tensor | None) -> tuple[Tensor, Tensor, Tensor] | None:
        """``(scale, shift, gate)`` ``(B*T, C, 1, 1)`` each from the per-frame embedding ``emb``
        ``(B*T, E)``; None without adaLN."""
        if self.ada is None or emb is None:
            return None
        s, b, g = self.ada(emb)[:, :, None, None].chunk(3, dim=1)  # 3 x (B*T, C, 1, 1)
        return s, b, g

    def normed(self, h: Tensor, mod: tuple[Tensor, Tensor, Tensor] | None) -> Tensor:
        """``norm(h)``, with adaLN ``(1 + s) norm(h) + b`` (DiT, arXiv:2212.09748, Sec. 3.2)."""
        n = self.norm(h)  # (B*T, C, H, W)
        return n if mod is None else n * (1 + mod[0]) + mod[1]  # adaLN, DiT Sec. 3.2: (1 + s) x + b

    @staticmethod
    def gated(out: Tensor, mod: tuple[Tensor, Tensor, Tensor] | None) -> Tensor:
        """The attention's output ``(B*T, C, H, W)`` scaled by ``1 + g`` under adaLN."""
        return out if mod is None else out * (1 + mod[2])


class TemporalAttention(_ResidualAttention):
    """Residual multi-head attention over the ``T`` frames at each pixel:
    ``h + proj(attn(norm(h)))`` with tokens ``(B*H*W, T, C)``; ``proj`` starts at zero."""

    def __init__(self, ch: int, causal: bool = False, head_dim: int = 16, emb_dim: int = 0) -> None:
        super().__init__(ch, causal, head_dim, emb_dim)
        hd = ch // self.heads
        cos, sin = rotary_tables(hd, MAX_FRAMES) if hd % 2 == 0 else (None, None)
        self.rotary = None if cos is None else (cos, sin)

    def forward(self, h: Tensor, frames: int, emb: Tensor | None = None) -> Tensor:
        """``h`` ``(B*T, C, H, W)``; ``emb`` ``(B*T, E)`` the per-frame embedding (adaLN)."""
        bt, c, hh, ww = h.shape
        b = bt // frames
        mod = self.modulation(emb)
        tok = self.normed(h, mod).view(b, frames, c, hh, ww).permute(0, 3, 4, 1, 2)  # (B,H,W,T,C)
        tok = tok.reshape(b * hh * ww, frames, c)  # (B*H*W, T, C)
        q, k, v = self.qkv(tok).split(c, dim=2)
        rot = None
        if self.rotary is not None:
            rot = (self.rotary[0].to(h.device), self.rotary[1].to(h.device))
        out = multi_head_attention(q, k, v, self.heads, causal=self.causal, rotary=rot)
        out = self.proj(out)  # (B*H*W, T, C)
        out = out.view(b, hh, ww, frames, c).permute(0, 3, 4, 1, 2)  # (B, T, C, H, W)
        return h + self.gated(out.reshape(bt, c, hh, ww), mod)


def axial_rotary_tables(
    head_dim: int, frames: int, height: int, width: int, base: float = 100.0
) -> tuple[Tensor, Tensor]:  # -> 2 x (T*H*W, head_dim // 2)
    """cos, sin of axial rotary angles for the ``T * H * W`` positions of a clip in ``(t, y, x)``
    order: the ``head_dim / 2`` rotated pairs are split between the axes (time gets
    ``pairs - 2 s``, height and width ``s = ceil(pairs / 3)`` each), and each axis's pairs rotate by
    that coordinate times RoFormer's frequencies ``base^(-i / n)`` (``i < n`` its pairs), so a
    query-key score depends on the offsets in t, y and x only (RoFormer Sec. 3.4.2, per axis).
    ``base`` is small since positions run to at most a few dozen here."""
    pairs = head_dim // 2
    s = (pairs + 1) // 3
    split = (pairs - 2 * s, s, s)
    if head_dim % 2 or min(split) < 1:
        raise ValueError(f"axial rotary embeddings need an even head dim >= 6, got {head_dim}")
    grid = torch.meshgrid(
        torch.arange(frames), torch.arange(height), torch.arange(width), indexing="ij"
    )  # 3 x (T, H, W)
    angles = []
    for pos, n in zip(grid, split, strict=True):
        theta = base ** (-torch.arange(n, dtype=torch.float64) / n)  # (n,)
        angles.append(pos.reshape(-1, 1).double() * theta)  # (T*H*W, n)
    ang = torch.cat(angles, dim=1)  # (T*H*W, pairs)
    return ang.cos().float(), ang.sin().float()


class SpaceTimeAttention(_ResidualAttention):
    """Residual multi-head self-attention over all ``T * H * W`` positions of a clip:
    ``h + proj(attn(norm(h)))`` with tokens ``(B, T*H*W, C)`` and axial rotary positions
    (:func:`axial_rotary_tables`); ``proj`` starts at zero. With ``causal=True`` a position of
    frame ``t`` sees the positions of frames ``<= t`` only."""

    def forward(self, h: Tensor, frames: int, emb: Tensor | None = None) -> Tensor:
        """``h`` ``(B*T, C, H, W)``; ``emb`` ``(B*T, E)`` the per-frame embedding (adaLN)."""
        bt, c, hh, ww = h.shape
        b = bt // frames
        mod = self.modulation(emb)
        tok = self.normed(h, mod).view(b, frames, c, hh, ww).permute(0, 1, 3, 4, 2)  # (B,T,H,W,C)
        tok = tok.reshape(b, frames * hh * ww, c)  # (B, T*H*W, C)
        q, k, v = self.qkv(tok).split(c, dim=2)
        hd = c // self.heads
        rot = None
        if hd % 2 == 0 and hd >= 6:
            cos, sin = axial_rotary_tables(hd, frames, hh, ww)
            rot = (cos.to(h.device), sin.to(h.device))
        mask = None
        if self.causal:  # query of frame t sees keys of frames <= t: (B, N, N)
            f = torch.arange(frames, device=h.device).repeat_interleave(hh * ww)  # (N,)
            mask = (f[None, :] <= f[:, None]).expand(b, -1, -1)
        out = multi_head_attention(q, k, v, self.heads, key_mask=mask, rotary=rot)
        out = self.proj(out)  # (B, T*H*W, C)
        out = out.view(b, frames, hh, ww, c).permute(0, 1, 4, 2, 3)  # (B, T, C, H, W)
        return h + self.gated(out.reshape(bt, c, hh, ww), mod)


class SpaceTimeUNet(nn.Module):
    """``(x (B, T, C, H, W), c_noise (B,)) -> (B, T, C_out, H, W)``: the image U-Net ``spatial``
    on every frame with a :class:`TemporalAttention` after each of its stages (a
    :class:`SpaceTimeAttention` at the resolutions in ``spacetime_resolutions``)."""

    def __init__(
        self,
        spatial: UNet,
        causal: bool = False,
        max_resolution: int = 16,
        spacetime_resolutions: tuple[int, ...] = (),
        temporal_cond: bool = False,
        frame_embedding: bool = False,
    ) -> None:
        """Temporal layers after the stages whose resolution is at most ``max_resolution`` (the
        costly full-resolution stages of larger frames stay per frame); at the resolutions in
        ``spacetime_resolutions`` they attend over all positions of the clip, not per pixel.
        ``temporal_cond``: adaLN of the temporal layers from the per-frame embedding;
        ``frame_embedding``: a learned frame-index embedding (module docstring)."""
        super().__init__()
        self.spatial = spatial
        last = spatial.noise_emb.mlp[-1]
        assert isinstance(last, nn.Linear)
        width = last.out_features  # E of the per-frame embedding (4 * channels)
        emb_dim = width if temporal_cond else 0
        layers: list[nn.Module] = []
        for ch, r in zip(spatial.block_channels, spatial.block_resolutions, strict=True):
            if r in spacetime_resolutions:
                layers.append(SpaceTimeAttention(ch, causal, emb_dim=emb_dim))
            elif r <= max_resolution:
                layers.append(TemporalAttention(ch, causal, emb_dim=emb_dim))
            else:
                layers.append(nn.Identity())
        self.temporal = nn.ModuleList(layers)
        self.temporal_cond = temporal_cond
        self.frame_emb: nn.Embedding | None = None
        if frame_embedding:
            self.frame_emb = nn.Embedding(MAX_FRAMES, width)
            nn.init.zeros_(self.frame_emb.weight)

    def forward(
        self,
        x: Tensor,
        c_noise: Tensor,
        class_labels: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        extra_emb: Tensor | None = None,
    ) -> Tensor:
        """``context`` ``(B, L, C)``, ``context_mask`` ``(B, L)`` and ``extra_emb`` ``(B, E)`` are
        the clip's, the same for each of its frames (the image U-Net's cross-attention and
        added embedding)."""
        b, t = x.shape[:2]
        if t > MAX_FRAMES:
            raise ValueError(f"clips of at most {MAX_FRAMES} frames, got {t}")
        frames = x.flatten(0, 1)  # (B, T, C, H, W) -> (B*T, C, H, W)
        noise = c_noise.reshape(b).repeat_interleave(t)  # (B*T,): the clip's noise level per frame
        labels = None if class_labels is None else class_labels.repeat_interleave(t)
        per_frame = [None if v is None else v.repeat_interleave(t, dim=0)  # (B*T, ...)
                     for v in (context, context_mask, extra_emb)]  # fmt: skip
        if self.frame_emb is not None:  # + e_t, frame t's learned embedding (TimeSformer Eq. (1))
            idx = torch.arange(t, device=x.device).repeat(b)  # (B*T,): frame index of each frame
            pos = self.frame_emb(idx)  # (B*T, E)
            per_frame[2] = pos if per_frame[2] is None else per_frame[2] + pos
        emb = None
        if self.temporal_cond:  # the embedding every residual block of the frame gets (B*T, E)
            emb = self.spatial.embed(noise, labels, per_frame[2], b * t)

        def hook(i: int, h: Tensor) -> Tensor:
            layer = self.temporal[i]
            if isinstance(layer, TemporalAttention | SpaceTimeAttention):
                return layer(h, t, emb)
            return h

        out = self.spatial(frames, noise, labels, *per_frame, block_hook=hook)  # (B*T, C_out, H, W)
        return out.view(b, t, *out.shape[1:])  # (B, T, C_out, H, W)
