"""Image and text encoders for the multimodal models (building blocks only).

- :class:`ImageEncoder`: a small ResNet (He et al., arXiv:1512.03385) with GroupNorm (no batch
  statistics, so a contrastive loss cannot read other examples through them); stride-2 stages down
  to a grid of at most 4 x 4, returned as tokens ``(B, N, C)`` with learned positions and as a
  mean-pooled vector ``(B, C)``.
- :class:`TextEncoder`: token and learned position embeddings through the causal pre-LN
  :class:`~genzoo.nn.transformer.Transformer`, as the text encoder of CLIP (Radford et al.,
  arXiv:2103.00020, Sec. 2.4: masked self-attention, the feature at the ``[EOS]`` token represents
  the text). Returns per-token features, a padding mask and the pooled ``[EOS]`` feature, so the
  same module serves contrastive alignment (pooled) and cross-attention (tokens + mask). Padding
  comes after ``[EOS]`` and attention is causal, so padding never changes a real token's feature.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.nn.transformer import Transformer, init_gpt_weights


class ImageFeatures(NamedTuple):
    tokens: Tensor  # (B, N, C): one token per cell of the final grid (row-major)
    pooled: Tensor  # (B, C): mean of the tokens


class TextFeatures(NamedTuple):
    tokens: Tensor  # (B, L, C): per-token features (after the final LayerNorm)
    mask: Tensor  # (B, L) bool: True for real tokens ([BOS] .. [EOS]), False for padding
    pooled: Tensor  # (B, C): the feature at the [EOS] token (the last real token)


def _gn(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


class _ResBlock(nn.Module):
    """``x + conv(silu(gn(conv(silu(gn(x))))))`` (pre-activation, He et al. arXiv:1603.05027)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _gn(ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1),
            _gn(ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ImageEncoder(nn.Module):
    """``(B, C_in, H, W) -> ImageFeatures``: stem, then stride-2 stages (conv + residual block)
    until the grid is at most 4 x 4; stage ``i`` has ``width * min(2^i, 4)`` channels."""

    def __init__(self, in_ch: int, size: int, width: int = 32) -> None:
        super().__init__()
        n_down = max(1, math.ceil(math.log2(max(size, 1) / 4)))
        layers: list[nn.Module] = [nn.Conv2d(in_ch, width, 3, padding=1)]
        ch, s = width, size
        for i in range(n_down):
            out = width * min(2**i, 4)
            layers += [nn.Conv2d(ch, out, 3, stride=2, padding=1), _ResBlock(out)]
            ch, s = out, (s + 1) // 2
        layers += [_gn(ch), nn.SiLU()]
        self.body = nn.Sequential(*layers)
        self.out_dim = ch
        self.grid = s
        self.pos = nn.Parameter(torch.zeros(1, s * s, ch))  # learned positions of the tokens
        nn.init.normal_(self.pos, std=0.02)

    def stage_outputs(self, x: Tensor) -> list[Tensor]:
        """The feature map after each stride-2 stage, ``[(B, C_i, g_i, g_i)]``, finest first; the
        last one after the final norm and activation, so it equals ``body(x)``."""
        outs: list[Tensor] = []
        h = x
        for layer in self.body[:-2]:  # the stem and the stages
            h = layer(h)
            if isinstance(layer, _ResBlock):  # a stage ends with its residual block
                outs.append(h)
        outs[-1] = self.body[-1](self.body[-2](h))  # the final norm and activation
        return outs

    def forward(self, x: Tensor) -> ImageFeatures:
        h = self.body(x)  # (B, C, g, g)
        tokens = h.flatten(2).transpose(1, 2)  # (B, C, g*g) -> (B, N, C)
        return ImageFeatures(tokens + self.pos, tokens.mean(1))


class TextEncoder(nn.Module):
    """Causal transformer text encoder: ``tokens (B, L) long -> TextFeatures``.

    ``pad_id`` marks padding; each row must hold at least one real token. The pooled feature is
    the one at the last real token (the ``[EOS]`` of a caption from
    :class:`~genzoo.data.captions.CaptionTokenizer`).
    """

    def __init__(
        self,
        vocab_size: int,
        max_len: int,
        width: int = 64,
        n_layer: int = 2,
        n_head: int = 4,
        dropout: float = 0.0,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.max_len = max_len
        self.out_dim = width
        self.tok_emb = nn.Embedding(vocab_size, width)
        self.pos_emb = nn.Embedding(max_len, width)
        self.transformer = Transformer(n_layer, width, n_head, dropout, max_len=max_len)
        init_gpt_weights(self.tok_emb)
        init_gpt_weights(self.pos_emb)

    def forward(self, tokens: Tensor) -> TextFeatures:
        b, t = tokens.shape
        if t > self.max_len:
            raise ValueError(f"{t} tokens exceed the text encoder's max_len = {self.max_len}")
        mask = tokens != self.pad_id  # (B, L)
        h = self.tok_emb(tokens) + self.pos_emb(torch.arange(t, device=tokens.device))  # (B, L, C)
        h = self.transformer(h)  # (B, L, C)
        last = (mask.long().cumsum(1) * mask).argmax(1)  # index of the last real token, (B,)
        pooled = h[torch.arange(b, device=h.device), last]  # (B, C)
        return TextFeatures(h, mask, pooled)


def l2_normalize(x: Tensor) -> Tensor:
    """Rows scaled to unit Euclidean norm."""
    return F.normalize(x, dim=-1)
