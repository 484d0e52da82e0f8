"""Visual question answering as multimodal classification: unimodal encoders, a fusion network,
a classifier over the answers.

An image encoder (:class:`~genzoo.nn.encoders.ImageEncoder`) and a question encoder
(:class:`~genzoo.nn.encoders.TextEncoder`) read their modality alone; ``fusion`` chooses where
they meet (:mod:`genzoo.nn.fusion`; Baltrušaitis et al., arXiv:1705.09406, Sec. 6):

- ``early``: the pooled features are concatenated and an MLP classifies them;
- ``middle``: the image tokens cross-attend to the question tokens (padding masked), then are
  pooled and classified (the attention-based fusion of VQA models, e.g. Yang et al.,
  arXiv:1511.02274, with the roles of the modalities as in co-attention, arXiv:1606.00061);
- ``late``: an image-only and a question-only classifier, whose logits are summed with learned
  weights (decision-level fusion).

The answer set is :data:`~genzoo.data.shapes.ANSWERS` (colours, shapes, sizes, counts, yes/no)
and each ``shapes`` image carries :data:`~genzoo.data.shapes.QUESTIONS_PER_IMAGE` questions; the
image is encoded once and fused with each of its questions. The loss is the mean cross-entropy
over all questions of the batch (Antol et al., "VQA", arXiv:1505.00468, treat VQA as this
classification).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, LossOutput
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.data.captions import MAX_LEN
from genzoo.data.shapes import ANSWERS
from genzoo.models.multimodal.base import MultimodalModel
from genzoo.nn.encoders import ImageFeatures, TextEncoder
from genzoo.nn.fusion import EarlyFusion, LateFusion, MiddleFusion


@dataclass(frozen=True)
class VQAConfig(Config):
    """Configuration of :class:`VQA`."""

    fusion: Literal["early", "middle", "late"] = "middle"  # where image and question meet
    width: int = bounded(32, ge=1)  # channels of the image encoder's first stage
    text_width: int = bounded(64, ge=1)  # width of the question transformer
    text_layers: int = bounded(2, ge=1)  # question transformer blocks
    text_heads: int = bounded(4, ge=1)  # attention heads (question encoder and cross-attention)
    hidden: int = bounded(256, ge=1)  # hidden width of the early / late fusion classifiers
    fusion_layers: int = bounded(2, ge=1)  # cross-attention blocks of middle fusion

    def validate(self) -> None:
        if self.text_width % self.text_heads:
            raise ConfigError(
                f"text_width = {self.text_width} must be divisible by "
                f"text_heads = {self.text_heads}."
            )


@register_model("vqa")
class VQA(MultimodalModel):
    """Visual question answering with early, middle or late fusion of image and question."""

    config_class: ClassVar[type[Config]] = VQAConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 64, "warmup": 100}
    config: VQAConfig

    def __init__(self, config: VQAConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if info.name.split("?")[0] != "shapes":
            raise ConfigError(
                f"vqa needs questions and answers, which {info.name!r} has not; use --data shapes."
            )
        c = config
        self.answers = ANSWERS
        self.text_encoder = TextEncoder(
            self.vocab_size, MAX_LEN, c.text_width, c.text_layers, c.text_heads
        )
        d_img, n = self.image_encoder.out_dim, len(ANSWERS)
        if c.fusion == "early":
            self.fusion = EarlyFusion(d_img, c.text_width, n, c.hidden)
        elif c.fusion == "middle":
            if d_img % c.text_heads:
                raise ConfigError(
                    f"middle fusion needs image width {d_img} divisible by "
                    f"text_heads = {c.text_heads}."
                )
            self.fusion = MiddleFusion(d_img, c.text_width, n, c.fusion_layers, c.text_heads)
        else:
            self.fusion = LateFusion(d_img, c.text_width, n, c.hidden)

    def forward(self, x: Tensor, questions: Tensor) -> Tensor:
        """Answer logits ``(B, Q, n_answers)`` for images ``(B, C, H, W)`` and question tokens
        ``(B, Q, L)`` (or ``(B, L)``: one question each, logits ``(B, n_answers)``)."""
        single = questions.ndim == 2
        q = questions[:, None] if single else questions  # (B, Q, L)
        b, nq, ln = q.shape
        img = self.image_encoder(x)  # once per image
        img = ImageFeatures(  # each image once per question: (B*Q, ...)
            img.tokens.repeat_interleave(nq, 0), img.pooled.repeat_interleave(nq, 0)
        )
        txt = self.text_encoder(q.reshape(b * nq, ln))  # (B*Q, L) tokens
        logits = self.fusion(img, txt).view(b, nq, -1)  # (B*Q, A) -> (B, Q, A)
        return logits[:, 0] if single else logits

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Mean answer cross-entropy over every question of the batch; logs accuracy."""
        if "question" not in batch:
            raise ConfigError("vqa trains on batches with questions (dataset 'shapes').")
        logits = self.forward(batch["x"], batch["question"])  # (B, Q, A)
        ans = batch["answer"]  # (B, Q)
        loss = F.cross_entropy(logits.flatten(0, 1), ans.flatten())
        acc = (logits.argmax(-1) == ans).float().mean()
        return LossOutput(loss, {"acc": acc.detach()})

    @torch.no_grad()
    def answer(self, x: Tensor, questions: list[str]) -> list[str]:
        """One answer per (image, question) pair: ``x`` ``(B, C, H, W)``, ``B`` questions."""
        logits = self.forward(x, self.encode_texts(questions))  # (B, A)
        return [self.answers[int(i)] for i in logits.argmax(-1)]

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per image: the answer ``loss`` and ``acc`` averaged over its questions."""
        if "question" not in batch:
            raise ConfigError("Evaluating vqa needs the questions of the 'shapes' test split.")
        logits = self.forward(batch["x"], batch["question"])  # (B, Q, A)
        ans = batch["answer"]
        loss = F.cross_entropy(logits.transpose(1, 2), ans, reduction="none").mean(1)  # (B,)
        return {"loss": loss, "acc": (logits.argmax(-1) == ans).float().mean(1)}
