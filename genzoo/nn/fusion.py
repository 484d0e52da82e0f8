"""Fusion of an image and a text representation into one prediction (building blocks only).

The three classic points at which modalities meet (Baltrušaitis, Ahuja & Morency, "Multimodal
Machine Learning: A Survey and Taxonomy", arXiv:1705.09406, Sec. 6):

- :class:`EarlyFusion`: the unimodal feature vectors are concatenated and one network reads both
  (feature-level fusion);
- :class:`MiddleFusion`: the image tokens attend to the text tokens through cross-attention
  blocks (Vaswani et al., arXiv:1706.03762, Eq. (1); as in the co-attention VQA models), padded
  text tokens masked out, then the image tokens are pooled and classified;
- :class:`LateFusion`: each modality gets its own classifier and only the two score vectors meet,
  as a learned weighted sum of the logits (decision-level fusion; with unit weights a product of
  experts, Hinton 2002).

Every module maps ``(ImageFeatures, TextFeatures) -> logits (B, n_out)`` through ``forward``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genzoo.nn.attention import multi_head_attention
from genzoo.nn.encoders import ImageFeatures, TextFeatures
from genzoo.nn.mlp import MLP


class CrossAttention(nn.Module):
    """Multi-head attention from queries ``x`` ``(B, N, C)`` to a context ``(B, L, C_ctx)``;
    ``mask`` ``(B, L)`` is True for real context tokens. A row without any real token receives
    zeros (it attends to nothing)."""

    def __init__(self, dim: int, ctx_dim: int, n_head: int = 4) -> None:
        super().__init__()
        if dim % n_head:
            raise ValueError(f"dim = {dim} must be divisible by n_head = {n_head}")
        self.n_head = n_head
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(ctx_dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, ctx: Tensor, mask: Tensor | None = None) -> Tensor:
        k, v = self.kv(ctx).split(x.shape[2], dim=2)  # 2 x (B, L, C)
        return multi_head_attention(self.q(x), k, v, self.n_head, key_mask=mask, project=self.proj)


class CrossAttnBlock(nn.Module):
    """Pre-LN block: ``x + cross_attn(ln(x), ctx)`` then ``x + mlp(ln(x))``."""

    def __init__(self, dim: int, ctx_dim: int, n_head: int = 4) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.ln_ctx = nn.LayerNorm(ctx_dim)
        self.attn = CrossAttention(dim, ctx_dim, n_head)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: Tensor, ctx: Tensor, mask: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.ln1(x), self.ln_ctx(ctx), mask)
        return x + self.mlp(self.ln2(x))


class EarlyFusion(nn.Module):
    """``MLP([image pooled ; text pooled])``: concatenation, then one classifier."""

    def __init__(self, img_dim: int, txt_dim: int, n_out: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = MLP(img_dim + txt_dim, n_out, (hidden, hidden), act=nn.GELU)

    def forward(self, img: ImageFeatures, txt: TextFeatures) -> Tensor:
        return self.net(torch.cat([img.pooled, txt.pooled], dim=-1))  # (B, n_out)


class MiddleFusion(nn.Module):
    """Image tokens cross-attend to the text tokens (padding masked) in ``n_layer`` blocks; the
    mean of the fused image tokens is classified."""

    def __init__(
        self, img_dim: int, txt_dim: int, n_out: int, n_layer: int = 2, n_head: int = 4
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            CrossAttnBlock(img_dim, txt_dim, n_head) for _ in range(n_layer)
        )
        self.ln = nn.LayerNorm(img_dim)
        self.head = MLP(img_dim, n_out, (2 * img_dim,), act=nn.GELU)

    def forward(self, img: ImageFeatures, txt: TextFeatures) -> Tensor:
        h = img.tokens  # (B, N, C)
        for blk in self.blocks:
            h = blk(h, txt.tokens, txt.mask)
        return self.head(self.ln(h).mean(1))  # (B, n_out)


class LateFusion(nn.Module):
    """Separate classifiers per modality; the logits meet only in
    ``w_img * s_img + w_txt * s_txt + b`` (:meth:`combine`)."""

    def __init__(self, img_dim: int, txt_dim: int, n_out: int, hidden: int = 256) -> None:
        super().__init__()
        self.img_head = MLP(img_dim, n_out, (hidden,), act=nn.GELU)
        self.txt_head = MLP(txt_dim, n_out, (hidden,), act=nn.GELU)
        self.weights = nn.Parameter(torch.ones(2))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def scores(self, img: ImageFeatures, txt: TextFeatures) -> tuple[Tensor, Tensor]:
        """The unimodal scores ``(B, n_out)`` each: image alone, text alone."""
        return self.img_head(img.pooled), self.txt_head(txt.pooled)

    def combine(self, s_img: Tensor, s_txt: Tensor) -> Tensor:
        """The fused logits: a function of the two score vectors only."""
        return self.weights[0] * s_img + self.weights[1] * s_txt + self.bias

    def forward(self, img: ImageFeatures, txt: TextFeatures) -> Tensor:
        return self.combine(*self.scores(img, txt))


FUSIONS = {"early": EarlyFusion, "middle": MiddleFusion, "late": LateFusion}
