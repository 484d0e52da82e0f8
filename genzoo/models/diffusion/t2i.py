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
Trainer's sample grids show the conditioning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, LossOutput
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand, randn
from genzoo.data.base import DataInfo
from genzoo.diffusion.samplers import run_sampler
from genzoo.models.diffusion.base import _b
from genzoo.models.diffusion.edm import EDM, EDMConfig
from genzoo.nn.encoders import TextEncoder
from genzoo.nn.pretrained_text import MiniLMTextEncoder
from genzoo.nn.unet import UNet


@dataclass(frozen=True)
class T2IDiffusionConfig(EDMConfig):
    """EDM on images with a text-conditioned U-Net (defaults fit 16x16 ``shapes`` on a CPU)."""

    channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2)
    num_res_blocks: int = 1
    attn_resolutions: tuple[int, ...] = (8,)  # self- and cross-attention at these sizes
    text_width: int = 64  # width of the jointly trained text encoder
    text_layers: int = 2  # its transformer blocks
    text_heads: int = 4  # its attention heads
    text_encoder: str = "own"  # "own": trained with the U-Net; "minilm": frozen MiniLM (extra)
    text_encoder_run: str = ""  # a trained `clip` run: use its text encoder instead
    freeze_text_encoder: bool = False  # keep the (CLIP) text encoder fixed
    pooled_text: bool = True  # also add the [EOS] text feature to the noise embedding (GLIDE)
    coord_channels: bool = False  # give the U-Net each pixel's coordinates (position words)
    caption_dropout: float = 0.1  # probability of the null caption in training (CFG)
    p_mean: float = 0.0  # mean ln(sigma) in training: more of the high noise levels, where the
    # caption decides the image (EDM's -1.2 learned colour far more slowly on shapes)
    guidance: float = 3.0  # default guidance scale w when sampling
    sample_steps: int = 18

    def validate(self) -> None:
        super().validate()
        if not 0 <= self.caption_dropout < 1:
            raise ConfigError(f"caption_dropout = {self.caption_dropout} must be in [0, 1).")
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
    from genzoo.data.shapes import CLASS_NAMES, article

    return [f"{article(c)} {c}" for c in (CLASS_NAMES[i % len(CLASS_NAMES)] for i in range(n))]


def repeat_prompts(prompts: Sequence[str] | str, n: int) -> list[str]:
    """``prompts`` repeated in turn to ``n`` entries (a single string is one prompt)."""
    ps = [prompts] if isinstance(prompts, str) else list(prompts)
    if not ps or any(not isinstance(p, str) or not p.strip() for p in ps):
        raise ConfigError("prompts must be a non-empty list of non-empty strings.")
    return [ps[i % len(ps)] for i in range(n)]


def drop_captions(
    tokens: Tensor, p: float, pad_id: int, generator: torch.Generator | None = None
) -> Tensor:
    """Caption tokens ``(B, L)`` with each row replaced by the null caption (padding only) with
    probability ``p``: the caption dropout of classifier-free guidance (arXiv:2207.12598,
    Algorithm 1)."""
    if p <= 0:
        return tokens
    drop = rand((tokens.shape[0],), generator=generator, device=tokens.device) < p
    return tokens.masked_fill(drop[:, None], pad_id)


class TextGuidance:
    """Classifier-free guidance on caption tokens: ``D_u + w (D_c - D_u)`` (arXiv:2207.12598,
    Eq. 6); the unconditional call uses the null caption (padding only), both in one batch."""

    def __init__(self, denoiser: Any, scale: float, pad_id: int = 0) -> None:
        self.denoiser = denoiser
        self.scale = float(scale)
        self.pad_id = pad_id

    def __call__(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        if cond is None:
            return self.denoiser(x, sigma, None)
        null = torch.full_like(cond, self.pad_id)
        both = self.denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]), torch.cat([cond, null]))
        d_c, d_u = both.chunk(2)  # (B, ...) each
        return d_u + self.scale * (d_c - d_u)  # Eq. (6)


@register_model("t2i-diffusion")
class TextToImageDiffusion(EDM):
    """EDM with cross-attention on caption tokens and classifier-free guidance (see the module
    docstring). ``cond`` everywhere is caption tokens ``(B, L)`` long (``[PAD] = 0`` after
    ``[EOS]``); an all-padding row is the null caption."""

    config_class = T2IDiffusionConfig
    config: T2IDiffusionConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-3, "ema_decay": 0.999, "batch_size": 64}

    def __init__(self, config: T2IDiffusionConfig, info: DataInfo) -> None:
        from genzoo.data.captions import MAX_LEN, get_caption_tokenizer
        from genzoo.models.multimodal.base import _check_vocabulary

        if info.kind != "images" or len(info.shape) != 3:
            raise ConfigError(
                f"t2i-diffusion needs captioned images, but dataset {info.name!r} holds "
                f"{info.kind}; try --data 'shapes?size=16'."
            )
        if config.arch not in ("auto", "unet"):
            raise ConfigError(f"t2i-diffusion uses the U-Net; arch = {config.arch!r} is not one.")
        super().__init__(config, info)
        c = config
        tok = get_caption_tokenizer()
        self.pad_id = tok.pad_id
        self.register_buffer("vocab_fingerprint", torch.tensor([tok.fingerprint()]))
        self.register_load_state_dict_post_hook(_check_vocabulary)
        self.text_encoder: TextEncoder | MiniLMTextEncoder
        if c.text_encoder_run:
            self.text_encoder = _clip_text_encoder(c.text_encoder_run)
        elif c.text_encoder == "minilm":
            self.text_encoder = MiniLMTextEncoder(tok.pad_id)  # frozen, not in checkpoints
        else:
            self.text_encoder = TextEncoder(
                tok.vocab_size, MAX_LEN, c.text_width, c.text_layers, c.text_heads
            )
        if c.freeze_text_encoder:
            self.text_encoder.requires_grad_(False)
        self.net = UNet(
            in_channels=info.shape[0],
            resolution=info.shape[-1],
            channels=c.channels,
            channel_mult=c.channel_mult,
            num_res_blocks=c.num_res_blocks,
            attn_resolutions=c.attn_resolutions,
            dropout=c.dropout,
            adaptive_norm=c.adaptive_norm,
            context_dim=self.text_encoder.out_dim,
            coord_channels=c.coord_channels,
        )
        self.pool_proj = (
            torch.nn.Linear(self.text_encoder.out_dim, 4 * c.channels) if c.pooled_text else None
        )

    # --- text ---------------------------------------------------------------------------------
    def encode_prompts(self, prompts: Sequence[str]) -> Tensor:
        """Prompts -> caption tokens ``(B, L)`` on the model's device."""
        from genzoo.data.captions import get_caption_tokenizer

        return get_caption_tokenizer().encode_batch(list(prompts)).to(self.device)

    def null_tokens(self, b: int) -> Tensor:
        """The null caption ``(B, L)``: padding only."""
        from genzoo.data.captions import MAX_LEN

        return torch.full((b, MAX_LEN), self.pad_id, dtype=torch.long, device=self.device)

    def drop_captions(self, tokens: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Each row replaced by the null caption with probability ``caption_dropout``."""
        return drop_captions(tokens, self.config.caption_dropout, self.pad_id, generator)

    def context(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(features (B, L, C), mask (B, L), pooled embedding (B, E) or None)`` of tokens."""
        feats = self.text_encoder(tokens.long())
        pooled = self.pool_proj(feats.pooled) if self.pool_proj is not None else None
        return feats.tokens, feats.mask, pooled

    def class_tokens(self, y: Tensor) -> Tensor:
        """Tokens of the class prompts "a red circle", ... of labels ``y`` ``(B,)``."""
        from genzoo.data.shapes import CLASS_NAMES

        if self.info.n_classes != len(CLASS_NAMES):
            return self.null_tokens(y.shape[0])
        return self.encode_prompts([class_prompts(len(CLASS_NAMES))[int(i)] for i in y])

    # --- the denoiser -------------------------------------------------------------------------
    def denoise(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """``D(x, sigma, y) = c_skip x + c_out F(c_in x, c_noise, tau(y))`` (EDM Eq. 7);
        ``cond`` is caption tokens ``(B, L)`` (None: the null caption)."""
        c_skip, c_out, c_in, c_noise = self.precond(sigma.float())
        ctx, mask, pooled = self.context(cond if cond is not None else self.null_tokens(x.shape[0]))
        f = self.net(_b(c_in, x) * x, c_noise, None, ctx, mask, pooled)
        return _b(c_skip, x) * x + _b(c_out, x) * f.to(x.dtype)

    # --- training -----------------------------------------------------------------------------
    def per_example_loss(
        self,
        x0: Tensor,
        y: Tensor | None = None,
        generator: torch.Generator | None = None,
        denoiser: Any = None,
    ) -> Tensor:
        """EDM's loss given caption tokens ``y`` ``(B, L)``; class labels ``(B,)`` are read as
        their class prompts (``genzoo eval`` passes labels)."""
        b, dev = x0.shape[0], x0.device
        tokens = None
        if y is not None:
            tokens = y if y.ndim == 2 else self.class_tokens(y)
        sigma = self.train_sigma(b, generator, dev)
        eps = randn(x0.shape, generator=generator, device=dev)
        x = x0 + _b(sigma, x0) * eps
        d = self.denoise(x, sigma, tokens) if denoiser is None else denoiser(x, sigma)
        return self.loss_weight(sigma) * ((d - x0) ** 2).reshape(b, -1).mean(1)  # EDM Eq. (2)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        if "text" not in batch:
            raise ConfigError(
                f"t2i-diffusion needs captions; dataset {self.info.name!r} has none "
                "(try --data 'shapes?size=16')."
            )
        tokens = self.drop_captions(batch["text"])
        loss = self.per_example_loss(batch["x"], tokens).mean()
        return LossOutput(loss, {"loss": loss.detach()})

    # --- sampling -----------------------------------------------------------------------------
    def guided_denoiser(self, guidance: float) -> Any:
        """The (clamped) denoiser with guidance ``w``; ``w = 1`` is the plain conditional one."""
        d = self.sampling_denoiser
        return d if guidance == 1.0 else TextGuidance(d, guidance, self.pad_id)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        prompts: Sequence[str] | str | None = None,
        cond: Tensor | None = None,
        guidance: float | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        sigmas: Tensor | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` images for ``prompts`` (repeated to ``n``) or caption tokens ``cond`` ``(n, L)``
        (default: the class prompts in turn), with guidance ``w`` (default ``config.guidance``)."""
        for k in ("compile", "cuda_graph"):
            options.pop(k, None)
        if cond is not None and prompts is not None:
            raise ConfigError("Pass prompts or caption tokens (cond), not both.")
        if cond is None:
            cond = self.encode_prompts(
                repeat_prompts(prompts, n) if prompts is not None else class_prompts(n)
            )
        elif cond.ndim != 2 or cond.shape[0] != n:
            raise ConfigError(f"cond must be caption tokens of shape ({n}, L).")
        w = self.config.guidance if guidance is None else float(guidance)
        sig = sigmas if sigmas is not None else self.sampling_sigmas(steps)
        x = randn((n, *self.info.shape), generator=generator, device=self.device)
        x = x * self.prior_std(float(sig[0]))
        out = run_sampler(
            sampler or self.config.sampler,
            self.guided_denoiser(w),
            x,
            sig,
            cond=cond.to(self.device).long(),
            generator=generator,
            **options,
        )
        return out.clamp(*self.info.value_range) if self.config.clip_denoised else out


def _clip_text_encoder(run: str) -> TextEncoder | MiniLMTextEncoder:
    """The text encoder of a trained ``clip`` run (a copy; safe formats only)."""
    from genzoo.models.multimodal.clip import CLIP
    from genzoo.models.runs import load_model

    model, _ = load_model(run, ema=True)
    if not isinstance(model, CLIP):
        raise ConfigError(
            f"text_encoder_run = {run!r} is a {model.name!r} run; it must be a 'clip' run."
        )
    return model.text_encoder
