"""Single-stream vision-language encoder: one transformer over the concatenated image and text
tokens.

VisualBERT (Li et al., "VisualBERT: A Simple and Performant Baseline for Vision and Language",
arXiv:1908.03557, Sec. 3.2; the same design as UNITER, arXiv:1909.11740): the image tokens
``F`` ``(N, D)`` and the text tokens ``E`` ``(L, D)``, each with its modality (segment) embedding
(:class:`~genzoo.models.multimodal.vl_encoder.VLEncoder`), are stacked into one sequence
``[F; E]`` ``(N + L, D)`` and read by a stack of full self-attention blocks
(:class:`~genzoo.nn.transformer.Transformer` with ``causal=False``), so every token attends to
every token of both modalities from the first layer on ("early fusion through self-attention").
The output at ``[BOS]``, the text's first token (BERT's ``[CLS]``), represents the pair.

The attention mask lets a key be seen when it is a real token (text padding never is);
``cross_modal=False`` also blocks image <-> text attention, and then the model *is* two separate
encoders sharing its weights: the image tokens come out as an image-only pass of the same
transformer, the text tokens as a text-only pass (tested exactly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from genzoo.core.config import Config, bounded
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.data.captions import MAX_LEN
from genzoo.models.multimodal.vl_encoder import VLEncoder, VLEncoderConfig
from genzoo.nn.transformer import Transformer


@dataclass(frozen=True)
class SingleStreamConfig(VLEncoderConfig):
    """Configuration of :class:`SingleStreamVL` (``task``, ``width``, ``dim``, ``heads`` as in
    :class:`~genzoo.models.multimodal.vl_encoder.VLEncoderConfig`)."""

    layers: int = bounded(4, ge=1)  # transformer blocks over the joint sequence (4 blocks ~ the
    # parameters of one two-stream co-attention layer: 2 streams x (co-attention + self-attention))


@register_model("visualbert")
class SingleStreamVL(VLEncoder):
    """Single-stream (VisualBERT-style) encoder with a question-answer or image-text-matching
    head."""

    config_class: ClassVar[type[Config]] = SingleStreamConfig
    config: SingleStreamConfig

    def __init__(self, config: SingleStreamConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        n_img = self.image_encoder.grid**2
        self.transformer = Transformer(
            config.layers, config.dim, config.heads, max_len=n_img + MAX_LEN, causal=False
        )

    def attention_mask(self, n_img: int, txt_mask: Tensor, cross_modal: bool = True) -> Tensor:
        """Which key each query of ``[F; E]`` may see, ``(B, N + L, N + L)``: every real token,
        and with ``cross_modal=False`` only those of its own modality."""
        b, ln = txt_mask.shape
        real = torch.cat([txt_mask.new_ones(b, n_img), txt_mask], 1)  # (B, N + L) real keys
        mask = real[:, None, :].expand(b, n_img + ln, n_img + ln)  # (B, T, T)
        if not cross_modal:
            is_img = torch.arange(n_img + ln, device=txt_mask.device) < n_img  # (T,)
            same = is_img[:, None] == is_img[None, :]  # (T, T) block diagonal
            mask = mask & same
        return mask

    def streams(
        self, img: Tensor, txt: Tensor, txt_mask: Tensor, cross_modal: bool = True
    ) -> tuple[Tensor, Tensor]:
        n = img.shape[1]
        h = torch.cat([img, txt], 1)  # [F; E]: (B, N + L, D)
        h = self.transformer(h, key_mask=self.attention_mask(n, txt_mask, cross_modal))
        return h[:, :n], h[:, n:]  # (B, N, D), (B, L, D)

    def pool(self, img: Tensor, txt: Tensor) -> Tensor:
        return txt[:, 0]  # the output at [BOS] ([CLS]): (B, D)
