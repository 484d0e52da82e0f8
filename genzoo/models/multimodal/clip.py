"""CLIP: contrastive language-image pre-training (Radford et al., "Learning Transferable Visual
Models From Natural Language Supervision", arXiv:2103.00020), at the scale of ``shapes``.

An image encoder (a small ResNet, :class:`~genzoo.nn.encoders.ImageEncoder`) and a text encoder
(a causal transformer read at ``[EOS]``, :class:`~genzoo.nn.encoders.TextEncoder`; or, with
``text_encoder = "minilm"``, the sentence embedding of the frozen pretrained
:class:`~genzoo.nn.pretrained_text.MiniLMTextEncoder`, ``minilm`` extra) are projected
linearly into one ``embed_dim`` space and L2-normalised. For a batch of N image-caption pairs the
logits are the scaled cosine similarities ``L = exp(t) I T^T`` (N x N) with a learned temperature
``t`` (initialised to ``log(1/0.07)``, clipped so that ``exp(t) <= 100``; Sec. 2.5), and the loss
is the symmetric InfoNCE of Fig. 3: the mean of the cross-entropies of the rows (image -> text)
and the columns (text -> image), each with the matching pair as the target class
(:func:`clip_loss`; van den Oord et al., arXiv:1807.03748, Eq. (4)).

Zero-shot classification (Sec. 3.1.2) embeds a prompt per class, averaged over the prompt
templates of :data:`~genzoo.data.shapes.PROMPT_TEMPLATES` ("a red circle", "there is a red
circle", ...; prompt ensembling, Sec. 3.1.4), and picks the class with the most similar text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, LossOutput
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.data.captions import MAX_LEN, label_caption_texts
from genzoo.data.shapes import CLASS_NAMES, PROMPT_TEMPLATES, SHAPES, article
from genzoo.models.multimodal.base import MultimodalModel
from genzoo.nn.encoders import TextEncoder, l2_normalize
from genzoo.nn.pretrained_text import MiniLMTextEncoder


@dataclass(frozen=True)
class CLIPConfig(Config):
    """Configuration of :class:`CLIP` (defaults fit 32x32 ``shapes`` on a CPU)."""

    embed_dim: int = bounded(64, ge=1)  # dimension of the joint embedding space
    width: int = bounded(32, ge=1)  # channels of the image encoder's first stage (doubling, up to
    # 4x)
    text_encoder: Literal["own", "minilm"] = "own"  # "own": trained text transformer; "minilm":
    # frozen MiniLM (extra)
    text_width: int = bounded(64, ge=1)  # width of the text transformer
    text_layers: int = bounded(2, ge=1)  # text transformer blocks
    text_heads: int = bounded(4, ge=1)  # attention heads per text block
    init_temperature: float = bounded(0.07, gt=0.0)  # initial softmax temperature tau (logit scale
    # 1 / tau)
    max_logit_scale: float = 100.0  # the logit scale exp(t) is clipped to at most this
    learn_temperature: bool = True  # learn t = log(1 / tau), or keep it fixed

    def validate(self) -> None:
        if self.text_width % self.text_heads:
            raise ConfigError(
                f"text_width = {self.text_width} must be divisible by "
                f"text_heads = {self.text_heads}."
            )
        if not self.max_logit_scale >= 1.0 / self.init_temperature:
            raise ConfigError(
                f"max_logit_scale = {self.max_logit_scale} must be >= 1 / init_temperature."
            )


def clip_loss(logits: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Symmetric InfoNCE of ``logits`` ``(N, N)`` (row i: image i against every text; the pair
    (i, i) matches): ``(loss, loss_image_to_text, loss_text_to_image)``; CLIP Fig. 3."""
    labels = torch.arange(logits.shape[0], device=logits.device)
    loss_i = F.cross_entropy(logits, labels)  # each image picks its text among the N
    loss_t = F.cross_entropy(logits.t(), labels)  # each text picks its image among the N
    return (loss_i + loss_t) / 2, loss_i, loss_t


def class_prompts(info: DataInfo) -> list[list[str]]:
    """Zero-shot prompts: for every class, the texts whose embeddings are averaged."""
    if info.name.split("?")[0] == "shapes":
        out = []
        for name in CLASS_NAMES:
            colour, shape = name.split(" ")
            out.append(
                [t.format(a=article(colour), colour=colour, shape=shape) for t in PROMPT_TEMPLATES]
            )
        return out
    if not info.class_names:
        raise ConfigError(f"Zero-shot classification needs class names; {info.name!r} has none.")
    texts = label_caption_texts(info.class_names)
    k = len(texts) // len(info.class_names)
    return [texts[i * k : (i + 1) * k] for i in range(len(info.class_names))]


@register_model("clip")
class CLIP(MultimodalModel):
    """CLIP-style contrastive image-text model: embeddings, zero-shot classes, retrieval."""

    config_class: ClassVar[type[Config]] = CLIPConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 128, "warmup": 100}
    config: CLIPConfig

    def __init__(self, config: CLIPConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.text_encoder: TextEncoder | MiniLMTextEncoder
        if c.text_encoder == "minilm":  # frozen; only text_proj is trained on the text side
            self.text_encoder = MiniLMTextEncoder(self.tokenizer.pad_id)
        else:
            self.text_encoder = TextEncoder(
                self.vocab_size, MAX_LEN, c.text_width, c.text_layers, c.text_heads
            )
        self.image_proj = nn.Linear(self.image_encoder.out_dim, c.embed_dim, bias=False)
        self.text_proj = nn.Linear(self.text_encoder.out_dim, c.embed_dim, bias=False)
        t0 = torch.tensor(math.log(1.0 / c.init_temperature))
        self.logit_scale = nn.Parameter(t0, requires_grad=c.learn_temperature)

    # --- embeddings -------------------------------------------------------------------------------
    def encode_image(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` in model space -> unit embeddings ``(B, embed_dim)``."""
        return l2_normalize(self.image_proj(self.image_encoder(x).pooled))

    def encode_text(self, tokens: Tensor) -> Tensor:
        """Caption tokens ``(B, L)`` -> unit embeddings ``(B, embed_dim)``."""
        return l2_normalize(self.text_proj(self.text_encoder(tokens).pooled))

    def scale(self) -> Tensor:
        """The logit scale ``exp(t) = 1 / tau``, clipped at ``max_logit_scale``."""
        return self.logit_scale.clamp(max=math.log(self.config.max_logit_scale)).exp()

    def forward(self, x: Tensor, tokens: Tensor) -> Tensor:
        """Logits ``(B_img, B_txt)``: scaled cosine similarity of every image to every text."""
        return self.scale() * self.encode_image(x) @ self.encode_text(tokens).t()

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Symmetric InfoNCE over the batch; logs both directions, accuracy and temperature."""
        logits = self.forward(batch["x"], self.batch_text(batch))  # (B, B)
        loss, li, lt = clip_loss(logits)
        labels = torch.arange(logits.shape[0], device=logits.device)
        acc = (logits.argmax(1) == labels).float().mean()
        return LossOutput(
            loss,
            {"loss_i2t": li.detach(), "loss_t2i": lt.detach(), "acc_i2t": acc.detach(),
             "temperature": 1.0 / self.scale().detach()},
        )  # fmt: skip

    # --- zero-shot --------------------------------------------------------------------------------
    @torch.no_grad()
    def class_embeddings(self) -> Tensor:
        """One unit embedding per class ``(n_classes, embed_dim)``: the mean of the normalised
        embeddings of its prompts, normalised again (prompt ensembling, CLIP Sec. 3.1.4)."""
        prompts = class_prompts(self.info)
        k = len(prompts[0])
        emb = self.encode_text(self.encode_texts([p for ps in prompts for p in ps]))  # (C*K, E)
        return l2_normalize(emb.view(len(prompts), k, -1).mean(1))  # (C, E)

    @torch.no_grad()
    def zero_shot_logits(self, x: Tensor, class_emb: Tensor | None = None) -> Tensor:
        """Class logits ``(B, n_classes)`` of images ``x`` from the class prompts alone."""
        w = self.class_embeddings() if class_emb is None else class_emb
        return self.scale() * self.encode_image(x) @ w.t()

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per example: the InfoNCE loss (image and text side averaged, within the evaluation
        batch) and ``zeroshot_acc`` (the zero-shot class names an object of the image)."""
        logits = self.forward(batch["x"], self.batch_text(batch, generator))
        labels = torch.arange(logits.shape[0], device=logits.device)
        per = (
            F.cross_entropy(logits, labels, reduction="none")
            + F.cross_entropy(logits.t(), labels, reduction="none")
        ) / 2
        pred = self.zero_shot_logits(batch["x"]).argmax(1)  # (B,)
        if "attrs" in batch:  # shapes: right if it names any object in the image
            objs = batch["attrs"][..., 1] * len(SHAPES) + batch["attrs"][..., 0]  # (B, 2)
            ok = ((objs == pred[:, None]) & (batch["attrs"][..., 0] >= 0)).any(1)
        else:
            ok = pred == batch["y"]
        return {"loss": per, "zeroshot_acc": ok.float()}
