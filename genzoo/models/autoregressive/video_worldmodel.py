"""A video world model: a GPT over per-frame VQ-VAE tokens, the route of GAIA-1 (Hu et al.,
arXiv:2309.17080) and TECO (Yan et al., arXiv:2210.02396).

Each frame ``x_t`` ``(C, H, W)`` of a clip is encoded by one VQ-VAE (van den Oord et al.,
arXiv:1711.00937; genzoo's :class:`~genzoo.models.autoencoders.vqvae.VQVAE`) to ``P = h w`` code
indices ``z_t``; a clip is the token stream ``[BOS, z_1, ..., z_T]`` of ``T P`` codes (frames in
order, raster order within a frame), and genzoo's
:class:`~genzoo.models.autoregressive.gpt.GPT` (the world model, "dynamics") fits

    log p(z_1 .. z_T) = sum_t sum_i log p(z_{t,i} | z_<t, z_{t,<i})        # GAIA-1 Eq. (1)

Frames are decoded by the VQ-VAE decoder, one frame at a time (deterministic; ``decoder = vq``, the
default), or (``decoder = diffusion``) by a video diffusion model conditioned on the tokens, as
GAIA-1 decodes (arXiv:2309.17080, Sec. 2.3) and the implementation notes plan: genzoo's
``video-diffusion`` (factorised space-time U-Net, EDM) with ``coarse_input``, which gets the
VQ-VAE's decoding ``y = Dec(z)`` of the codes on every frame as extra input channels (a
deterministic function of the tokens: the tokens in image form) and denoises the whole clip at
once, so its temporal layers can tie the frames' detail together::

    D(x, sigma | y) ~ E[x_0 | x_0 + sigma eps = x, Dec(z(x_0)) = y]                # EDM Eq. (2)

It is trained in the same loss on the real clips given the current VQ-VAE's decoding of their
codes (taken without gradient), weighted by ``decoder_weight``; in prediction it is also given the
known frames (trained with them half of the time, video-diffusion's frame masking). Sampling draws
the codes first, then decodes them with ``decoder_sampler`` in ``decoder_steps`` steps; the
sampling option ``decoder = "vq"`` decodes the same codes with the VQ-VAE instead (the same
generator draws the same codes either way).

Both parts are trained together inside this one model, in one loss (TECO trains its VQ and
dynamics jointly too): the VQ-VAE's loss (arXiv:1711.00937 Eq. (3)) on every frame, plus
``prior_weight`` times the GPT's next-code cross-entropy on the codes of the current VQ-VAE,
taken without gradient into the VQ-VAE (the codes are discrete targets).

Prediction (as ``video-diffusion``): ``sample(n, cond=frames)`` with the first ``k`` frames
``(n, k, C, H, W)`` encodes them to codes, continues the stream by the other ``(T - k) P`` codes
with the KV-cached GPT, and returns the known frames as given followed by the decoded rest.

Conditioning on text (``text = true``, on ``moving-shapes``: "a red circle moving left"), as GAIA-1
conditions its world model on text tokens (arXiv:2309.17080, Sec. 2.2) and as DALL-E puts the
caption in the stream (arXiv:2102.12092, Sec. 2.2; genzoo's ``t2i-vq``): the stream is
``[caption (L tokens), BOS, z_1, ..., z_T]`` in one vocabulary (``[0, K)`` the codes, ``K`` BOS,
``K + 1 + t`` caption token ``t``), and the loss is the cross-entropy of the frame codes only
(the caption is given, never predicted)::

    log p(z | y) = sum_t sum_i log p(z_{t,i} | y, z_<t, z_{t,<i})

Every code attends to every caption word directly, the direction word included: no pooled text
encoder stands between the words and the dynamics. Classifier-free guidance (Ho & Salimans,
arXiv:2207.12598; on token logits as in Parti, arXiv:2206.10789, Sec. 3.2): each training caption
is the null caption (padding only) with probability ``caption_dropout``, and sampling with
``guidance = w`` draws each code from ``l_u + w (l_c - l_u)`` of the log-probabilities. With
``text = false`` (the default) nothing of this exists: the model and its state dict are the
unconditional ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, GenerativeModel, LossOutput, PromptConditioned, Samples
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.data.captions import MAX_LEN, CaptionTokenizer, get_caption_tokenizer
from genzoo.data.video import clip_request, context_length
from genzoo.diffusion.samplers import SAMPLERS
from genzoo.models.autoencoders.base import check_sample_args, clip_to_data
from genzoo.models.autoencoders.vqvae import VQVAE, VQVAEConfig
from genzoo.models.autoregressive.gpt import GPT, GPTConfig, TransformerConfig
from genzoo.models.autoregressive.sampling import (
    SAMPLING_OPTIONS,
    at_least_float32,
    sampling_kwargs,
)
from genzoo.models.diffusion.backbones import UNetBackbone
from genzoo.models.diffusion.t2i import drop_captions, prompt_tokens
from genzoo.models.diffusion.video import VideoDiffusion, VideoDiffusionConfig
from genzoo.models.multimodal.base import vocabulary_check


def _motion_tokenizer() -> CaptionTokenizer:
    return get_caption_tokenizer(motion=True)


def _untexted_error(what: str) -> ConfigError:
    return ConfigError(
        f"This video-worldmodel run was trained without text (text = false): it takes no {what}; "
        "train one with text=true on moving-shapes."
    )


def _frames_to_text_run_error(n: int) -> ConfigError:
    return ConfigError(
        "This video-worldmodel run is text-conditioned (text = true): it takes prompts or caption "
        f"tokens ({n}, L), not first frames."
    )


@dataclass(frozen=True)
class VideoWorldModelConfig(TransformerConfig):
    """The per-frame VQ-VAE and the GPT over its codes (the transformer's fields are
    :class:`~genzoo.models.autoregressive.gpt.TransformerConfig`'s)."""

    codebook_size: int = bounded(64, ge=2)  # K: codes of the frame VQ-VAE
    code_dim: int = bounded(16, ge=1)  # dimension of each code vector
    vq_width: int = bounded(32, ge=1)  # channels of the VQ-VAE's encoder and decoder
    vq_downsample: int = bounded(-1, ge=-1)  # stride-2 stages per frame (-1: the VQ-VAE's
    # default: 1 under 16 px, else 2; 16 x 16 frames -> 4 x 4 = 16 codes per frame)
    vq_res_blocks: int = bounded(1, ge=0)  # residual blocks at the latent resolution
    beta: float = bounded(0.25, ge=0.0)  # commitment weight of the VQ-VAE (paper: 0.25)
    prior_weight: float = bounded(1.0, ge=0.0)  # weight of the GPT's cross-entropy in the loss
    text: bool = False  # condition on the caption (moving-shapes): its tokens prefix the stream
    text_len: int = bounded(MAX_LEN, ge=2, le=MAX_LEN)  # caption tokens in the prefix ([BOS] and
    # [EOS] included; the moving-shapes captions take 7); a longer caption is refused
    caption_dropout: float = bounded(0.1, ge=0.0, lt=1.0)  # text: probability of the null
    # caption in training (classifier-free guidance)
    guidance: float = 1.0  # text: default guidance scale w when sampling (1: off)
    decoder: Literal["vq", "diffusion"] = "vq"  # frames from codes: the VQ-VAE's decoder, or a
    # video diffusion model given its decoding on every frame (GAIA-1's decoder)
    decoder_channels: int = bounded(16, ge=1)  # diffusion decoder: base channels of its U-Net
    decoder_mult: tuple[int, ...] = bounded((1, 2), ge=1)  # ... and their multiplier per level
    decoder_weight: float = bounded(1.0, ge=0.0)  # weight of its denoising loss in the loss
    decoder_sampler: str = "dpmpp-2m"  # its sampler (any genzoo diffusion sampler)
    decoder_steps: int = bounded(12, ge=1)  # its sampling steps

    def validate(self) -> None:
        super().validate()
        if self.decoder_sampler not in SAMPLERS:
            raise ConfigError(
                f"decoder_sampler = {self.decoder_sampler!r} is not a sampler; choose "
                f"{choices(SAMPLERS)}."
            )

    def decoder_config(self, frames: int) -> VideoDiffusionConfig:
        """The diffusion decoder's :class:`VideoDiffusionConfig` (``coarse_input``, the known
        frames of prediction trained in half of the clips, up to all but one)."""
        return VideoDiffusionConfig(
            unet=UNetBackbone(channels=self.decoder_channels, channel_mult=self.decoder_mult),
            coarse_input=True,
            max_context=max(1, frames - 1),
            sampler=self.decoder_sampler,
            sample_steps=self.decoder_steps,
        )

    def vqvae_config(self) -> VQVAEConfig:
        """The frame VQ-VAE's :class:`VQVAEConfig` (conv, EMA codebook)."""
        return VQVAEConfig(
            codebook_size=self.codebook_size,
            code_dim=self.code_dim,
            beta=self.beta,
            arch="conv",
            width=self.vq_width,
            downsample=self.vq_downsample,
            res_blocks=self.vq_res_blocks,
        )


@register_model("video-worldmodel")
class VideoWorldModel(GenerativeModel, Samples, PromptConditioned):
    """GPT over per-frame VQ-VAE codes (GAIA-1 / TECO route; see the module docstring).

    ``encode_codes(x)`` ``(B, T, C, H, W) -> (B, T P)`` codes, ``decode_codes`` back to clips;
    ``code_log_prob`` is the GPT's exact log-likelihood of a clip's codes in nats (not of its
    pixels: the decoder is deterministic, so the model declares no likelihood); ``sample_codes``
    draws codes with the KV cache (``use_cache=False``: recomputed each token, the same draws).
    """

    family: ClassVar[str] = "autoregressive"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = VideoWorldModelConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 16, "warmup": 100}
    config: VideoWorldModelConfig
    info: DataInfo

    def __init__(self, config: VideoWorldModelConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if info.kind != "video" or len(info.shape) != 4:
            raise ConfigError(
                f"video-worldmodel needs video data (moving-digits, moving-shapes); {info.name!r} "
                f"holds {info.kind}."
            )
        t, c, h, w = info.shape
        self.frame_info = DataInfo(
            f"frames:{info.name}", "images", (c, h, w), levels=info.levels,
            value_range=info.value_range,
        )  # fmt: skip
        self.vqvae = VQVAE(config.vqvae_config(), self.frame_info)
        self.grid: tuple[int, ...] = self.vqvae.code_grid  # (h', w')
        self.per_frame = math.prod(self.grid)  # P
        self.n_codes = self.vqvae.n_codes  # K
        self.positions = t * self.per_frame  # T P
        self.bos = self.n_codes
        self.code_info = DataInfo(
            f"videocodes:{info.name}", "text", (self.positions,), levels=self.n_codes
        )
        self.text_len = 0  # caption tokens before BOS (0: no text)
        vocab = self.n_codes + 1
        if config.text:  # nothing of this exists without text: the model is unchanged
            if info.name.split("?")[0] != "moving-shapes":
                raise ConfigError(
                    f"video-worldmodel with text = true needs captioned clips; dataset "
                    f"{info.name!r} has none (try --data 'moving-shapes?size=16')."
                )
            tok = _motion_tokenizer()
            self.text_len = config.text_len
            self.text_vocab = tok.vocab_size
            self.pad_id = tok.pad_id
            vocab += self.text_vocab  # caption token t is K + 1 + t
            self.register_buffer("vocab_fingerprint", torch.tensor([tok.fingerprint()]))
            self.register_load_state_dict_post_hook(vocabulary_check(_motion_tokenizer))
        self.gpt = GPT(
            GPTConfig(
                vocab_size=vocab, block_size=self.text_len + self.positions,
                **config.transformer_fields(),
            ),
            self.code_info,
        )  # fmt: skip
        self.decoder: VideoDiffusion | None = None  # decoder = vq: no parameter of it exists
        if config.decoder == "diffusion":
            self.decoder = VideoDiffusion(config.decoder_config(t), info)

    @property
    def frames(self) -> int:
        return int(self.info.shape[0])

    # --- clips <-> codes --------------------------------------------------------------------------
    @torch.no_grad()
    def encode_codes(self, x: Tensor) -> Tensor:
        """Clips ``(B, T', C, H, W)`` in model space -> codes ``(B, T' P)`` long."""
        b, t = x.shape[:2]
        with torch.autocast(x.device.type, enabled=False):  # nearest codes in float32
            codes = self.vqvae.encode_codes(x.flatten(0, 1).float())  # (B T', h', w')
        return codes.reshape(b, t * self.per_frame)  # (B, T' P)

    @torch.no_grad()
    def decode_codes(self, codes: Tensor) -> Tensor:
        """Codes ``(B, T' P)`` -> clips ``(B, T', C, H, W)`` in the data range."""
        b, t = codes.shape[0], codes.shape[1] // self.per_frame
        grid = codes.reshape(b * t, *self.grid)  # (B T', h', w')
        with torch.autocast(codes.device.type, enabled=False):
            x = self.vqvae.decode_codes(grid).float()  # (B T', C, H, W)
        return clip_to_data(x, self.frame_info).view(b, t, *x.shape[1:])  # (B, T', C, H, W)

    # --- the caption (text = true) ----------------------------------------------------------------
    def encode_prompts(self, prompts: Sequence[str]) -> Tensor:
        """Prompts -> caption tokens ``(B, L)`` of the moving-shapes tokenizer."""
        return _motion_tokenizer().encode_batch(list(prompts)).to(self.device)

    def caption_prefix(self, tokens: Tensor | None, b: int) -> Tensor:
        """Caption tokens ``(B, L')`` -> the stream's prefix ``(B, text_len)`` (caption token
        ``t`` as ``K + 1 + t``); None: the null caption. Without text: ``(B, 0)``."""
        if not self.text_len:
            if tokens is not None:
                raise _untexted_error("caption")
            return torch.zeros(b, 0, dtype=torch.long, device=self.device)
        if tokens is None:
            tokens = torch.full((b, self.text_len), self.pad_id, device=self.device)
        tokens = tokens.long().to(self.device)
        if tokens.ndim != 2 or tokens.shape[0] != b:
            raise ConfigError(f"Caption tokens must have shape ({b}, L).")
        if bool(((tokens < 0) | (tokens >= self.text_vocab)).any()):
            raise ConfigError(f"Caption tokens must be in [0, {self.text_vocab}).")
        tail = tokens[:, self.text_len :]
        if bool((tail != self.pad_id).any()):
            longest = int((tokens != self.pad_id).sum(1).max())
            raise ConfigError(
                f"A caption of {longest} tokens does not fit this run's caption context of "
                f"text_len = {self.text_len} tokens; shorten it or train with a larger text_len."
            )
        tokens = tokens[:, : self.text_len]
        if tokens.shape[1] < self.text_len:  # pad to the trained prefix length
            pad = tokens.new_full((b, self.text_len - tokens.shape[1]), self.pad_id)
            tokens = torch.cat([tokens, pad], dim=1)
        return tokens + self.n_codes + 1  # (B, text_len)

    def batch_captions(self, batch: Batch, *, training: bool = False) -> Tensor | None:
        """The batch's caption tokens (text = true; each the null caption with probability
        ``caption_dropout`` in training), else None."""
        if not self.text_len:
            return None
        if "text" not in batch:
            raise ConfigError(
                f"video-worldmodel with text = true needs captions; dataset {self.info.name!r} "
                "has none."
            )
        text = batch["text"]
        if training:
            text = drop_captions(text, self.config.caption_dropout, self.pad_id)
        return text

    # --- the token stream -------------------------------------------------------------------------
    def code_token_log_probs(self, codes: Tensor, text: Tensor | None = None) -> Tensor:
        """``log p(z_i | [caption,] BOS, z_<i)`` of every code of the clips: ``(B, T P)`` nats
        (Eq. (1)); ``text``: caption tokens ``(B, L)`` of a text run (None: the null caption)."""
        b = codes.shape[0]
        bos = torch.full((b, 1), self.bos, dtype=torch.long, device=codes.device)
        if not self.text_len:
            inp = torch.cat([bos, codes[:, :-1]], dim=1)  # (B, T P)
            logits = at_least_float32(self.gpt(inp))  # (B, T P, K)
        else:
            prefix = self.caption_prefix(text, b).to(codes.device)  # (B, L)
            inp = torch.cat([prefix, bos, codes[:, :-1]], dim=1)  # (B, L + T P)
            # the caption positions predict nothing: only the logits from BOS on are scored
            logits = at_least_float32(self.gpt(inp))[:, self.text_len :]  # (B, T P, K)
        return -F.cross_entropy(logits.transpose(1, 2), codes, reduction="none")  # (B, T P)

    def code_log_prob(self, codes: Tensor, text: Tensor | None = None) -> Tensor:
        """The GPT's exact log-likelihood of clips' codes ``(B, T P)`` (given the caption tokens
        ``text`` of a text run): ``(B,)`` nats."""
        return self.code_token_log_probs(codes, text).sum(1)

    # --- protocol ---------------------------------------------------------------------------------
    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """VQ-VAE loss on every frame (arXiv:1711.00937 Eq. (3)) + ``prior_weight`` x the GPT's
        mean next-code cross-entropy (Eq. (1)) on the frames' current codes."""
        x = batch["x"].float()  # (B, T, C, H, W)
        vq = self.vqvae.loss({"x": x.flatten(0, 1)})  # frames (B T, C, H, W)
        text = self.batch_captions(batch, training=True)
        codes = self.encode_codes(x)
        ce = -self.code_token_log_probs(codes, text).mean()  # one reduction
        loss = vq.loss + self.config.prior_weight * ce
        logs = {**vq.logs, "bits_per_code": ce.detach() / math.log(2)}
        if self.decoder is not None:  # D(x, sigma | Dec(z)) on the real clips (EDM Eq. (2))
            dec = self.decoder.per_example_loss(x, self.decode_codes(codes)).mean()
            loss = loss + self.config.decoder_weight * dec
            logs["decoder_loss"] = dec.detach()
        return LossOutput(loss, logs)

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per clip: ``mse`` of the VQ-VAE's reconstruction (mean over frames and values),
        ``code_log_prob`` (nats) and ``bits_per_code``; with the diffusion decoder also its
        denoising loss given the codes (``decoder_loss``)."""
        x = batch["x"].float()
        codes = self.encode_codes(x)
        rec = self.decode_codes(codes)
        lp = self.code_log_prob(codes, self.batch_captions(batch))
        out = {
            "mse": ((rec - x) ** 2).flatten(1).mean(1),
            "code_log_prob": lp,
            "bits_per_code": -lp / (self.positions * math.log(2)),
            "loss": -lp / self.positions,  # nats per code
        }
        if self.decoder is not None:
            out["decoder_loss"] = self.decoder.per_example_loss(x, rec, generator)
        return out

    @torch.no_grad()
    def render_codes(
        self,
        codes: Tensor,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        decoder: str | None = None,
        steps: int | None = None,
        sampler: str | None = None,
    ) -> Tensor:
        """Codes ``(B, T P)`` of whole clips -> clips ``(B, T, C, H, W)`` in the data range by
        ``decoder`` (default ``config.decoder``): ``"vq"`` the VQ-VAE's decoding (deterministic),
        ``"diffusion"`` the diffusion decoder given it (and the known first frames ``cond``),
        ``steps`` steps of ``sampler`` (default ``decoder_steps``, ``decoder_sampler``)."""
        name = self.config.decoder if decoder is None else decoder
        if name not in ("vq", "diffusion"):
            raise ConfigError(f"decoder = {name!r} is not a decoder; choose 'vq' or 'diffusion'.")
        if name == "vq" and (steps is not None or sampler is not None):
            raise ConfigError(
                "decoder_steps and decoder_sampler apply to the diffusion decoder; the VQ-VAE "
                "decodes in one step (add decoder='diffusion' in a run that has one)."
            )
        coarse = self.decode_codes(codes)  # (B, T, C, H, W)
        if name == "vq":
            return coarse
        if self.decoder is None:
            raise ConfigError(
                "This video-worldmodel run has no diffusion decoder (decoder = vq); train one "
                "with decoder=diffusion."
            )
        # None: the decoder's own defaults, decoder_sampler and decoder_steps (decoder_config)
        return self.decoder.sample(
            codes.shape[0], cond=cond, coarse=coarse, generator=generator, sampler=sampler,
            steps=steps,
        )  # fmt: skip

    def context_codes(self, n: int, cond: Tensor | None) -> tuple[Tensor, int]:
        """The prefix ``[BOS, codes of the known frames]`` ``(n, 1 + k P)`` and ``k``."""
        bos = torch.full((n, 1), self.bos, dtype=torch.long, device=self.device)
        if cond is None:
            return bos, 0
        if self.text_len:
            raise _frames_to_text_run_error(n)
        k = context_length(cond, n, tuple(self.info.shape))
        return torch.cat([bos, self.encode_codes(cond.to(self.device))], dim=1), k

    @torch.no_grad()
    def sample_codes(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        text: Tensor | None = None,
        guidance: float = 1.0,
        **options: Any,
    ) -> Tensor:
        """Codes ``(n, T P)`` of ``n`` clips: the known frames' codes (``cond``) continued by the
        GPT (``temperature``, ``top_k``, ``top_p``; KV cache unless ``use_cache=False``); a text
        run: after the caption tokens ``text`` ``(n, L)`` (None: the null caption), with
        classifier-free ``guidance`` w against the null caption (1: off)."""
        check_sample_args(self.name, None, options, SAMPLING_OPTIONS)
        prefix, k = self.context_codes(n, cond)
        caption = self.caption_prefix(text, n)  # (n, text_len); (n, 0) without text
        null = None
        if guidance != 1.0:
            if not self.text_len:
                raise ConfigError(
                    f"guidance = {guidance} needs a text-conditioned run (text = true)."
                )
            null = torch.cat([self.caption_prefix(None, n), prefix], dim=1)
        new = self.gpt.generate(
            torch.cat([caption, prefix], dim=1),
            (self.frames - k) * self.per_frame,
            **sampling_kwargs(self.config, options),
            generator=generator,
            use_cache=use_cache,
            uncond=null,
            guidance=guidance,
        )  # (n, (T - k) P)
        return torch.cat([prefix[:, 1:], new], dim=1)  # (n, T P)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        frames: int | None = None,
        size: int | None = None,
        prompts: Sequence[str] | str | None = None,
        guidance: float | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` clips ``(n, T, C, H, W)`` in the data range; ``cond``: their first frames
        ``(n, k, C, H, W)``, returned as given, the rest predicted. A text run: ``prompts``
        (repeated to ``n``) or caption tokens ``cond`` ``(n, L)`` (neither: the null caption),
        ``guidance`` w (default ``config.guidance``). ``frames`` and ``size``, if given, must be
        the trained clip length and frame side (one sentence otherwise). ``decoder``,
        ``decoder_steps``, ``decoder_sampler``: how the codes become frames
        (:meth:`render_codes`; the codes are drawn first, so the same generator state gives the
        same codes under either decoder)."""
        clip_request(frames, size, tuple(self.info.shape))
        render = {
            "decoder": options.pop("decoder", None),
            "steps": options.pop("decoder_steps", None),
            "sampler": options.pop("decoder_sampler", None),
        }
        text = None
        w = 1.0
        if self.text_len:
            w = self.config.guidance if guidance is None else float(guidance)
            if cond is not None and cond.ndim != 2:
                raise _frames_to_text_run_error(n)
            if cond is not None or prompts is not None:
                text = prompt_tokens(self.encode_prompts, n, prompts, cond, _motion_tokenizer())
            cond = None
        elif prompts is not None:
            raise _untexted_error("prompt")
        elif guidance is not None:  # refused as an unknown option, as before text existed
            check_sample_args(self.name, None, {**options, "guidance": guidance}, SAMPLING_OPTIONS)
        codes = self.sample_codes(
            n, cond=cond, generator=generator, text=text, guidance=w, **options
        )
        known = None if cond is None else cond.to(self.device, torch.float32)
        x = self.render_codes(codes, cond=known, generator=generator, **render)  # (n, T, C, H, W)
        if cond is not None:
            x[:, : cond.shape[1]] = cond.to(x.device, x.dtype)  # the known frames as given
        return x
