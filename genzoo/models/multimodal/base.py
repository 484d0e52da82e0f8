"""What the multimodal models share: captioned image data, the caption tokenizer, no sampling.

These models map images (and text) to embeddings, captions or answers rather than drawing data,
so they have no :class:`~genzoo.core.protocol.Samples` capability: the Trainer makes no sample
grids for them and ``genzoo sample`` points to their own commands (``zeroshot``, ``retrieve``,
``caption``, ``eval``). Their :meth:`eval_metrics` read the whole test batch (captions, labels,
questions).

A batch carries caption tokens under ``"text"`` (``shapes``); labelled image sets without text
(``digits``, ``mnist5k``) get a caption per label from :func:`genzoo.data.captions.label_captions`
("the digit seven"). The tokenizer's vocabulary fingerprint is stored with the weights and checked
on loading, so a model never silently reads a different vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from genzoo.core.config import Config
from genzoo.core.errors import CheckpointError, ConfigError
from genzoo.core.protocol import Batch, GenerativeModel
from genzoo.data.base import DataInfo
from genzoo.data.captions import CaptionTokenizer, get_caption_tokenizer, label_captions
from genzoo.nn.encoders import ImageEncoder


class MultimodalModel(GenerativeModel):
    """Base of CLIP, the captioner and VQA: image data with captions or labels, and the image
    encoder ``image_encoder`` (:class:`~genzoo.nn.encoders.ImageEncoder` of ``config.width``)."""

    family: ClassVar[str] = "multimodal"
    info: DataInfo

    def __init__(self, config: Config, info: DataInfo) -> None:
        super().__init__(config, info)
        if info.kind != "images" or len(info.shape) != 3:
            raise ConfigError(
                f"Model {self.name!r} needs images with captions or labels, but dataset "
                f"{info.name!r} holds {info.kind}; try --data shapes."
            )
        tok = get_caption_tokenizer()
        self.vocab_size = tok.vocab_size
        self.register_buffer("vocab_fingerprint", torch.tensor([tok.fingerprint()]))
        self.register_load_state_dict_post_hook(_check_vocabulary)
        width = int(config.width)  # type: ignore[attr-defined]
        self.image_encoder = ImageEncoder(info.shape[0], info.shape[-1], width)

    @property
    def tokenizer(self) -> CaptionTokenizer:
        return get_caption_tokenizer()

    def batch_text(self, batch: Batch, generator: torch.Generator | None = None) -> Tensor:
        """Caption tokens ``(B, L)`` of a batch: its ``"text"``, else captions of its labels."""
        if "text" in batch:
            return batch["text"]
        if "y" not in batch or not self.info.class_names:
            raise ConfigError(
                f"Model {self.name!r} needs captions or class labels; dataset "
                f"{self.info.name!r} has neither."
            )
        return label_captions(self.info.class_names, batch["y"], generator)

    def encode_texts(self, texts: list[str]) -> Tensor:
        """Texts -> tokens ``(B, L)`` on the model's device."""
        return self.tokenizer.encode_batch(texts).to(self.device)


def vocabulary_check(tokenizer: Callable[[], CaptionTokenizer]) -> Callable[[Any, Any], None]:
    """A load-state-dict post hook: one sentence if the checkpoint's ``vocab_fingerprint`` is not
    the fingerprint of ``tokenizer()``."""

    def check(module: Any, incompatible: Any) -> None:
        want = tokenizer().fingerprint()
        got = int(module.vocab_fingerprint[0])
        if got != want:
            raise CheckpointError(
                f"The checkpoint of model {module.name!r} was trained with another caption "
                f"vocabulary (fingerprint {got}, this genzoo has {want}); retrain it with this "
                "version."
            )

    return check


_check_vocabulary = vocabulary_check(get_caption_tokenizer)
