"""Two-stream vision-language encoder: a transformer per modality, joined by co-attention.

ViLBERT (Lu et al., "ViLBERT: Pretraining Task-Agnostic Visiolinguistic Representations for
Vision-and-Language Tasks", arXiv:1908.02265, Sec. 3.1, Fig. 2): the image tokens and the text
tokens (:class:`~genzoo.models.multimodal.vl_encoder.VLEncoder`) each keep their own stream. A
*co-attentional transformer layer* exchanges keys and values between the streams: the image
stream's queries attend to the text stream's keys and values and the text stream's queries to the
image stream's (both from the previous layer), each followed by its feed-forward network
(:class:`~genzoo.nn.fusion.CrossAttnBlock`, pre-LN); then a self-attention block per stream
(:class:`~genzoo.nn.transformer.Block`, full attention, padding masked). The pair is represented by
the element-wise product ``h_IMG * h_CLS`` (Sec. 3.2), ``h_CLS`` the text output at ``[BOS]`` and
``h_IMG`` the mean of the image outputs (standing in for the paper's ``<IMG>`` token, whose input
is the mean image feature).

A co-attention layer has about the parameters of four single-stream blocks (two streams, each an
attention block with its MLP twice), so ``co_layers=1`` matches ``visualbert`` with ``layers=4``
(``genzoo list`` and the benchmark report both counts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.multimodal.vl_encoder import VLEncoder, VLEncoderConfig
from genzoo.nn.fusion import CrossAttnBlock
from genzoo.nn.transformer import Block, init_gpt_weights


@dataclass(frozen=True)
class TwoStreamConfig(VLEncoderConfig):
    """Configuration of :class:`TwoStreamVL` (``task``, ``width``, ``dim``, ``heads`` as in
    :class:`~genzoo.models.multimodal.vl_encoder.VLEncoderConfig`)."""

    co_layers: int = bounded(1, ge=1)  # co-attention layers (each: co-attention + self-attention
    # block in both streams; one ~ the parameters of four single-stream blocks)


class CoAttentionLayer(nn.Module):
    """One co-attentional transformer layer (ViLBERT Fig. 2b) and the self-attention block after
    it, for both streams."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.img_co = CrossAttnBlock(dim, dim, heads)  # image queries, text keys / values
        self.txt_co = CrossAttnBlock(dim, dim, heads)  # text queries, image keys / values
        self.img_self = Block(dim, heads, causal=False)
        self.txt_self = Block(dim, heads, causal=False)

    def forward(
        self, img: Tensor, txt: Tensor, txt_mask: Tensor, cross_modal: bool = True
    ) -> tuple[Tensor, Tensor]:
        if cross_modal:  # both exchanges read the previous layer's streams
            img, txt = self.img_co(img, txt, txt_mask), self.txt_co(txt, img)  # (B, N|L, D)
        return self.img_self(img), self.txt_self(txt, key_mask=txt_mask)


@register_model("vilbert")
class TwoStreamVL(VLEncoder):
    """Two-stream (ViLBERT-style) encoder with a question-answer or image-text-matching head."""

    config_class: ClassVar[type[Config]] = TwoStreamConfig
    config: TwoStreamConfig

    def __init__(self, config: TwoStreamConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.layers = nn.ModuleList(CoAttentionLayer(c.dim, c.heads) for _ in range(c.co_layers))
        self.ln_img = nn.LayerNorm(c.dim)
        self.ln_txt = nn.LayerNorm(c.dim)
        self.layers.apply(init_gpt_weights)  # as the single stream's Transformer (GPT-2 init)
        depth = 4 * c.co_layers  # residual branches per stream, scaled as in GPT-2
        for layer in self.layers:
            for blk in (layer.img_co, layer.txt_co, layer.img_self, layer.txt_self):
                out = blk.attn.proj
                nn.init.normal_(out.weight, std=0.02 / math.sqrt(depth))
                nn.init.normal_(blk.mlp[2].weight, std=0.02 / math.sqrt(depth))

    def streams(
        self, img: Tensor, txt: Tensor, txt_mask: Tensor, cross_modal: bool = True
    ) -> tuple[Tensor, Tensor]:
        for layer in self.layers:
            img, txt = layer(img, txt, txt_mask, cross_modal)
        return self.ln_img(img), self.ln_txt(txt)

    def pool(self, img: Tensor, txt: Tensor) -> Tensor:
        return img.mean(1) * txt[:, 0]  # h_IMG * h_CLS: (B, D)
