"""What the single-stream and two-stream vision-language encoders share: the tokens of both
modalities, the two heads (answers to ``shapes`` questions, image-text matching), their losses and
metrics.

The two encoders of the early vision-and-language BERTs differ only in where image and text meet
(:class:`~genzoo.models.multimodal.single_stream.SingleStreamVL`: one transformer over the
concatenated tokens, VisualBERT, arXiv:1908.03557; :class:`~genzoo.models.multimodal.two_stream.
TwoStreamVL`: a transformer per modality joined by co-attention, ViLBERT, arXiv:1908.02265). Both
read the same inputs, built here:

- image tokens: the grid features of :class:`~genzoo.nn.encoders.ImageEncoder` (4 x 4 cells, with
  learned positions), projected to the token width ``dim`` (the papers use detector regions; a
  grid of a small CNN stands in for them, as in Pixel-BERT, arXiv:2004.00849);
- text tokens: word embeddings plus learned positions of the caption tokenizer's ``[BOS] words
  [EOS]`` (``[BOS]`` plays BERT's ``[CLS]``);
- a learned modality (segment) embedding added to every token of each modality (VisualBERT
  Sec. 3.2, "segment embedding").

``task`` chooses the head:

- ``vqa``: the pooled representation is classified into the :data:`~genzoo.data.shapes.ANSWERS`
  (18 classes, as genzoo's fusion :class:`~genzoo.models.multimodal.vqa.VQA`), cross-entropy over
  the 4 questions of each image;
- ``itm``: image-text matching, one logit "this caption describes this image" (ViLBERT Sec. 3.2,
  the alignment prediction). Each image is paired with its true caption and with the hard
  negatives of :func:`genzoo.data.shapes.itm_negatives` (one colour, one shape or the relation
  swapped); the loss is the binary cross-entropy with the positive and the mean over the valid
  negatives weighted equally, so the classes are balanced per image. As both papers pre-train,
  matching is trained together with masked language modelling (VisualBERT Sec. 3.3, ViLBERT
  Sec. 3.2): each word of the true caption is replaced by a mask token with probability
  ``mask_prob`` and predicted from the image and the rest of the caption (weight ``mlm``). From
  scratch, matching alone stays at chance for hundreds of steps (nothing but the image-text
  interaction separates a caption from its hard negatives, and that interaction is what has to be
  learnt); predicting a masked colour or shape word from the image grounds the words first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, LossOutput
from genzoo.data.base import DataInfo
from genzoo.data.captions import MAX_LEN
from genzoo.data.shapes import ANSWERS, ITM_NEGATIVES
from genzoo.models.multimodal.base import MultimodalModel
from genzoo.nn.mlp import MLP
from genzoo.nn.transformer import init_gpt_weights

IMAGE, TEXT = 0, 1  # modality (segment) ids


@dataclass(frozen=True)
class VLEncoderConfig(Config):
    """The fields both vision-language encoders have (each model adds its depth)."""

    task: Literal["vqa", "itm"] = "vqa"  # answers to questions, or image-text matching
    width: int = bounded(32, ge=1)  # channels of the CNN image encoder's first stage
    dim: int = bounded(64, ge=8)  # width of every image and text token in the transformer(s)
    heads: int = bounded(4, ge=1)  # attention heads
    mlm: float = bounded(1.0, ge=0)  # task=itm: weight of masked language modelling (0: none)
    mask_prob: float = bounded(0.15, gt=0, le=1)  # task=itm: probability a word is masked

    def validate(self) -> None:
        if self.dim % self.heads:
            raise ConfigError(f"dim = {self.dim} must be divisible by heads = {self.heads}.")


class VLEncoder(MultimodalModel):
    """Base of the single- and two-stream encoders: subclasses implement :meth:`streams` (both
    token sequences in, both out) and :meth:`pool` (one vector per image-text pair)."""

    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 64, "warmup": 100}
    config: VLEncoderConfig

    def __init__(self, config: VLEncoderConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if info.name.split("?")[0] != "shapes":
            raise ConfigError(
                f"{self.name} needs questions and captions with hard negatives, which "
                f"{info.name!r} has not; use --data shapes (e.g. 'shapes?size=16')."
            )
        d = config.dim
        self.img_proj = nn.Linear(self.image_encoder.out_dim, d)
        self.tok_emb = nn.Embedding(self.vocab_size, d)
        self.pos_emb = nn.Embedding(MAX_LEN, d)
        self.type_emb = nn.Embedding(2, d)  # modality embedding: IMAGE, TEXT
        self.n_out = len(ANSWERS) if config.task == "vqa" else 1
        self.head = MLP(d, self.n_out, (2 * d,), act=nn.GELU)
        if config.task == "itm" and config.mlm > 0:  # masked words from the text stream's tokens
            self.mlm_head = nn.Linear(d, self.vocab_size)
        for m in (self.img_proj, self.tok_emb, self.pos_emb, self.type_emb):
            init_gpt_weights(m)

    # --- the part each encoder defines ------------------------------------------------------
    def streams(
        self, img: Tensor, txt: Tensor, txt_mask: Tensor, cross_modal: bool = True
    ) -> tuple[Tensor, Tensor]:
        """Encode image tokens ``(B, N, D)`` and text tokens ``(B, L, D)`` (``txt_mask``
        ``(B, L)`` True for real tokens); returns both, same shapes. ``cross_modal=False`` keeps
        the modalities apart (each stream sees only itself)."""
        raise NotImplementedError

    def pool(self, img: Tensor, txt: Tensor) -> Tensor:
        """One vector ``(B, D)`` per pair from the encoded streams."""
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------------
    def embed(self, x: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Image tokens ``(B, N, D)``, text tokens ``(B, L, D)`` and the text mask ``(B, L)`` of
        images ``(B, C, H, W)`` and caption tokens ``(B, L)``."""
        img = self.img_proj(self.image_encoder(x).tokens)  # (B, N, C_img) -> (B, N, D)
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        txt = self.tok_emb(tokens) + self.pos_emb(pos)  # (B, L, D)
        img = img + self.type_emb.weight[IMAGE]
        txt = txt + self.type_emb.weight[TEXT]
        return img, txt, tokens != self.tokenizer.pad_id

    def mask_words(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Tokens ``(B, L)`` with each word (not ``[BOS]``/``[EOS]``/padding) replaced by the
        mask token (``[UNK]``, which no caption holds) with probability ``mask_prob``, and where
        ``(B, L)``."""
        tok = self.tokenizer
        words = (tokens != tok.pad_id) & (tokens != tok.bos_id) & (tokens != tok.eos_id)
        where = words & (torch.rand(tokens.shape, device=tokens.device) < self.config.mask_prob)
        return tokens.masked_fill(where, tok.unk_id), where

    def forward(self, x: Tensor, texts: Tensor) -> Tensor:
        """Head outputs for images ``(B, C, H, W)`` and token rows ``(B, K, L)``: ``(B, K,
        n_out)`` (answer logits, or one matching logit); for ``(B, L)``: ``(B, n_out)``. The
        image is encoded once and paired with each of its ``K`` texts."""
        single = texts.ndim == 2
        t = texts[:, None] if single else texts  # (B, K, L)
        b, k, ln = t.shape
        img, txt, mask = self.embed(x.repeat_interleave(k, 0), t.reshape(b * k, ln))
        out = self.head(self.pool(*self.streams(img, txt, mask)))  # (B*K, n_out)
        out = out.view(b, k, -1)  # (B*K, n_out) -> (B, K, n_out)
        return out[:, 0] if single else out

    def _itm_logits(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Matching logits ``(B, 1 + 3)`` of the true caption and the hard negatives, and which
        are valid ``(B, 1 + 3)``."""
        texts = torch.cat([batch["text"][:, None], batch["itm_text"]], 1)  # (B, 4, L)
        logits = self.forward(batch["x"], texts)[..., 0]  # (B, 4)
        valid = torch.cat([torch.ones_like(batch["itm_valid"][:, :1]), batch["itm_valid"]], 1)
        return logits, valid.bool()

    def _needs(self, batch: Batch, key: str) -> None:
        if key not in batch:
            raise ConfigError(
                f"{self.name} with task={self.config.task} needs the {key!r} of dataset "
                "'shapes' in its batches."
            )

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """``vqa``: mean answer cross-entropy over every question; ``itm``: per image, the mean
        of the positive's and the valid negatives' binary cross-entropies, plus ``mlm`` times the
        masked-word cross-entropy."""
        if self.config.task == "vqa":
            self._needs(batch, "question")
            logits = self.forward(batch["x"], batch["question"])  # (B, Q, A)
            ans = batch["answer"]  # (B, Q)
            loss = F.cross_entropy(logits.flatten(0, 1), ans.flatten())
            acc = (logits.argmax(-1) == ans).float().mean()
            return LossOutput(loss, {"acc": acc.detach()})
        self._needs(batch, "itm_text")
        logits, valid = self._itm_logits(batch)
        logs: dict[str, Tensor] = {}
        mlm = logits.new_zeros(())
        if self.config.mlm > 0:
            masked, where = self.mask_words(batch["text"])
            _, txt = self.streams(*self.embed(batch["x"], masked))  # (B, L, D)
            if where.any():
                mlm = F.cross_entropy(self.mlm_head(txt[where]), batch["text"][where])
            logs["mlm"] = mlm.detach()
        target = torch.zeros_like(logits)
        target[:, 0] = 1.0
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")  # (B, 4)
        v = valid[:, 1:].float()
        neg = (bce[:, 1:] * v).sum(1) / v.sum(1).clamp_min(1)  # (B,)
        itm = 0.5 * (bce[:, 0] + neg).mean()
        right = ((logits > 0).float() == target).float()
        acc = 0.5 * (right[:, 0] + (right[:, 1:] * v).sum(1) / v.sum(1).clamp_min(1))
        logs.update(itm=itm.detach(), acc=acc.mean().detach())
        return LossOutput(itm + self.config.mlm * mlm, logs)

    @torch.no_grad()
    def match(self, x: Tensor, captions: list[str]) -> Tensor:
        """Probability ``(B,)`` that caption ``i`` describes image ``i`` (``task=itm``)."""
        if self.config.task != "itm":
            raise ConfigError(f"match needs a {self.name} trained with task=itm.")
        return torch.sigmoid(self.forward(x, self.encode_texts(captions))[:, 0])

    @torch.no_grad()
    def answer(self, x: Tensor, questions: list[str]) -> list[str]:
        """One answer per (image, question) pair (``task=vqa``)."""
        if self.config.task != "vqa":
            raise ConfigError(f"answer needs a {self.name} trained with task=vqa.")
        logits = self.forward(x, self.encode_texts(questions))  # (B, A)
        return [ANSWERS[int(i)] for i in logits.argmax(-1)]

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per image. ``vqa``: ``loss`` and ``acc`` over its questions. ``itm``: ``acc`` (the
        balanced accuracy, mean of the positive's and the negatives'), ``acc_positive``,
        ``acc_<kind>`` per hard negative (rejected at the threshold 1/2) and ``rank_<kind>``
        (the true caption scored above the negative); NaN where an image has no negative of a
        kind (evaluation averages over the images that have one)."""
        if self.config.task == "vqa":
            self._needs(batch, "question")
            logits = self.forward(batch["x"], batch["question"])  # (B, Q, A)
            ans = batch["answer"]
            loss = F.cross_entropy(logits.transpose(1, 2), ans, reduction="none").mean(1)  # (B,)
            return {"loss": loss, "acc": (logits.argmax(-1) == ans).float().mean(1)}
        self._needs(batch, "itm_text")
        logits, valid = self._itm_logits(batch)
        nan = torch.full_like(logits[:, 0], float("nan"))
        v = valid[:, 1:].float()
        rejected = (logits[:, 1:] <= 0).float()  # (B, 3)
        out = {
            "acc": 0.5 * ((logits[:, 0] > 0).float() + (rejected * v).sum(1) / v.sum(1)),
            "acc_positive": (logits[:, 0] > 0).float(),
        }
        for i, kind in enumerate(ITM_NEGATIVES):
            ok = valid[:, 1 + i]
            out[f"acc_{kind}"] = torch.where(ok, rejected[:, i], nan)
            out[f"rank_{kind}"] = torch.where(ok, (logits[:, 0] > logits[:, 1 + i]).float(), nan)
        return out
