"""DALL-E-style text-to-image: one GPT over ``[text tokens; VQ-VAE codes]``.

Ramesh et al., "Zero-Shot Text-to-Image Generation", arXiv:2102.12092, Sec. 2.2: the caption's
tokens and the image's discrete codes are concatenated into one stream and a decoder-only
transformer models it autoregressively; an image is drawn by feeding the caption and sampling the
codes, then decoding them (here with a trained genzoo ``vqvae`` run, or a ``dvae`` run -- the
discrete VAE DALL-E itself uses -- as
:class:`~genzoo.models.autoregressive.vq_prior.VQPrior`, whose start-token hook this model fills).

One vocabulary (``V = K + 1 + T`` for ``K`` codes and ``T`` caption tokens)::

    [0, K)          the codebook entries: the only tokens the GPT predicts (its logits are K wide)
    K               BOS: "the image starts here", after the caption
    K + 1 + t       caption token t (``[PAD]`` included, so every prefix has the same length)

A sequence is ``[caption (L tokens), BOS, c_1, ..., c_P]``. The caption is *given*, never
predicted or scored (DALL-E also weights the text loss by only 1/8; here it is 0, as the model is
only a conditional ``p(codes | text)``): ``log p(c | text) = sum_i log p(c_i | text, BOS, c_<i)``,
normalised over the K codes at each position. Sampling continues the prefix with the KV-cached
GPT, with temperature and top-k / top-p filtering.

Classifier-free guidance (Ho & Salimans, arXiv:2207.12598; on token logits as in Parti, Yu et al.,
arXiv:2206.10789, Sec. 3.2): in training each caption is replaced by the null caption (padding
only) with probability ``caption_dropout``, so the same GPT is also ``p(codes)``; sampling with
``guidance = w`` draws every code from ``log p_u + w (log p_c - log p_u)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genzoo.core.config import bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, PromptConditioned
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.data.captions import MAX_LEN, get_caption_tokenizer
from genzoo.models.autoencoders.base import DiscreteCodes
from genzoo.models.autoregressive.gpt import GPT
from genzoo.models.autoregressive.vq_prior import VQPrior, VQPriorConfig
from genzoo.models.diffusion.t2i import class_prompts, drop_captions, prompt_tokens
from genzoo.models.multimodal.base import _check_vocabulary


@dataclass(frozen=True)
class T2IVQConfig(VQPriorConfig):
    """A :class:`VQPriorConfig` whose start is the caption."""

    caption_dropout: float = bounded(0.1, ge=0.0, lt=1.0)  # probability of the null caption in
    # training (CFG)
    guidance: float = 1.0  # default classifier-free guidance scale w when sampling (1: off)

    def validate(self) -> None:
        super().validate()
        if self.class_conditional:
            raise ConfigError("t2i-vq is conditioned on captions, not classes.")


@register_model("t2i-vq")
class TextToImageVQ(VQPrior, PromptConditioned):
    """GPT over ``[caption; BOS; codes]`` of a frozen VQ-VAE (arXiv:2102.12092); see the module
    docstring. ``cond`` everywhere is caption tokens ``(B, L)``."""

    config_class = T2IVQConfig
    config: T2IVQConfig

    def __init__(
        self, config: T2IVQConfig, info: DataInfo, vqvae: DiscreteCodes | None = None
    ) -> None:
        super().__init__(config, info, vqvae)
        tok = get_caption_tokenizer()
        self.text_len = MAX_LEN
        self.text_vocab = tok.vocab_size
        self.pad_id = tok.pad_id
        self.register_buffer("vocab_fingerprint", torch.tensor([tok.fingerprint()]))
        self.register_load_state_dict_post_hook(_check_vocabulary)
        vocab = self.n_codes + 1 + self.text_vocab
        # inputs: L caption tokens, BOS, the first P - 1 codes
        self.gpt = GPT(config.gpt_config(vocab, self.text_len + self.positions), self.code_info)

    def encode_prompts(self, prompts: Sequence[str]) -> Tensor:
        """Prompts -> caption tokens ``(B, L)`` on the model's device."""
        return get_caption_tokenizer().encode_batch(list(prompts)).to(self.device)

    def start_tokens(self, b: int, cond: Tensor | None = None) -> Tensor:
        """``[caption tokens + K + 1; BOS]``: ``(B, L + 1)``."""
        if cond is None:
            raise ConfigError("t2i-vq needs captions: pass prompts or caption tokens.")
        text = cond.long().to(self.device)
        if text.shape != (b, self.text_len):
            raise ConfigError(f"Caption tokens must have shape ({b}, {self.text_len}).")
        if bool(((text < 0) | (text >= self.text_vocab)).any()):
            raise ConfigError(f"Caption tokens must be in [0, {self.text_vocab}).")
        bos = torch.full((b, 1), self.bos, dtype=torch.long, device=self.device)
        return torch.cat([text + self.n_codes + 1, bos], dim=1)

    def condition(self, batch: Batch, *, training: bool = False) -> Tensor:
        """The batch's caption tokens ``(B, L)`` (``"text"``, or the class prompts of the 30
        shape classes, "a red circle"); in training each is the null caption with probability
        ``caption_dropout``."""
        if "text" in batch:
            text = batch["text"]
        elif "y" in batch and self.info.n_classes == 30:
            names = class_prompts(30)
            text = self.encode_prompts([names[int(i)] for i in batch["y"]])
        else:
            raise ConfigError(f"t2i-vq needs captions; dataset {self.info.name!r} has none.")
        if training:
            text = drop_captions(text, self.config.caption_dropout, self.pad_id)
        return text

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        prompts: Sequence[str] | str | None = None,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` images for ``prompts`` (repeated to ``n``) or caption tokens ``cond`` (default:
        the 30 class prompts in turn); options ``temperature``, ``top_k``, ``top_p`` and
        ``guidance`` (classifier-free, default ``config.guidance``)."""
        w = options.pop("guidance", None)
        w = self.config.guidance if w is None else float(w)
        cond = prompt_tokens(self.encode_prompts, n, prompts, cond)
        null = None
        if w != 1.0:
            null = self.start_tokens(n, torch.full_like(cond, self.pad_id))
        codes = self.sample_codes(
            n, cond=cond, generator=generator, uncond_start=null, guidance=w, **options
        )
        return self.decode_codes(codes)
