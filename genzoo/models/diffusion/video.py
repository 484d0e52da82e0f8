"""Video diffusion: Video Diffusion Models (Ho, Salimans, Gritsenko, Chan, Norouzi & Fleet,
arXiv:2204.03458), on genzoo's one denoiser currency with EDM's preconditioning
(arXiv:2206.00364, Table 1).

A clip ``x0`` of shape ``(T, C, H, W)`` is one example: noise is added to all its frames at one
level, ``x = x0 + sigma eps`` (Sec. 2, Eq. (1) of arXiv:2204.03458 in EDM's unscaled variable), and
the denoiser ``D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)`` (EDM Eq. 7) has a factorised
space-time U-Net ``F`` (Sec. 3, :class:`~genzoo.nn.spacetime.SpaceTimeUNet`): the image U-Net's
2-D layers on every frame, a temporal attention layer after each of its stages.

Full space-time attention (``spacetime_attn_resolutions``, e.g. ``[8]``): per-pixel temporal
attention relates a pixel only to the same pixel of the other frames, where a digit moving 1-3
pixels a frame no longer is; at the listed (coarse) resolutions the temporal layer attends over all
``T * H * W`` positions of the clip instead (:class:`~genzoo.nn.spacetime.SpaceTimeAttention`,
ViViT's joint space-time attention, arXiv:2103.15691), factorised attention elsewhere. Off by
default.

Motion-compensated input (``motion_input``, for prediction): the network is also given, on each
unknown frame ``t >= k``, the last known frame moved on by ``(t - k + 1) v``, where ``v`` is the
integer shift (within ``max_shift`` pixels) that best maps known frame ``k - 2`` onto frame ``k -
1`` (the peak of their cross-correlation; ``v = 0`` with one known frame); the extrapolation of
motion-compensated video coding (block motion estimation by cross-correlation, as in H.261) as a
network input, so the network corrects a guess (bounces, blur) rather than finding the motion
itself. It is a stated part of the model, not of the data: :func:`motion_estimate` and
:func:`motion_frames`. Off by default (the inputs are then exactly those above).

Conditioning on the first frames (prediction). The paper conditions by reconstruction guidance
(Sec. 3.1, Eq. (7)); genzoo trains the condition in instead, frame masking as in masked video
models: ``F`` also sees the known frames (clean) and their mask as extra input channels, ``[c_in
x, m * x0, m]`` with ``m`` 1 on the first ``k`` frames and 0 on the rest. In training a clip shows
its first ``k ~ U{1..max_context}`` frames with probability ``context_prob`` (else ``k = 0``: the
unconditional model, the same network), and the loss (EDM Eq. 2) is taken over the unknown
frames only. In sampling, ``sample(n, cond=frames)`` with ``frames`` ``(n, k, C, H, W)`` predicts
the remaining ``T - k`` frames; the denoiser returns the known frames as they are, so every
genzoo sampler (Heun, Euler, DDIM, DPM-Solver++, ...) ends on them exactly.

Conditioning on a coarse version of the clip (``coarse_input``; the frame decoder of
``video-worldmodel`` with ``decoder = diffusion``, GAIA-1's video diffusion decoder,
arXiv:2309.17080, Sec. 2.3): the network also gets, on every frame, a coarse clip ``y`` of the same
shape as extra input channels, ``[c_in x, m * x0, m, y]``, and learns ``D(x, sigma | y)``, the
posterior mean of the clip given its coarse version (the world model gives the VQ-VAE's decoding
of the clip's codes, a deterministic function of the tokens, so ``y`` is the tokens in image
form). Trained by whoever owns the coarse clips (:meth:`VideoDiffusion.per_example_loss` with
``y``); a run of its own has none and refuses to train. Off by default.

Conditioning on text (``text = true``, on ``moving-shapes``: "a red circle moving left"), as the
paper's text-conditioned models do (Sec. 4.3) and as genzoo's ``t2i-diffusion``: a transformer
text encoder, trained with the U-Net, turns the caption tokens into per-token features ``tau(y)``;
the image U-Net's cross-attention blocks (Rombach et al., arXiv:2112.10752, Sec. 3.3, Eq. 3) attend
from every frame to the same caption features, and the pooled ``[EOS]`` feature is added to the
noise embedding of every frame (GLIDE, arXiv:2112.10741, Sec. 2.3). Each training caption is
replaced by the null caption (padding only) with probability ``caption_dropout``, and sampling
uses classifier-free guidance (Ho & Salimans, arXiv:2207.12598, Eq. 6) with scale ``guidance``.
Text and first frames are exclusive conditions: a text-conditioned run (``context_prob = 0``)
takes prompts, not known frames. With ``text = false`` (the default) the model has no text
encoder and is exactly the model above.

Letting the caption steer the temporal layers (``temporal_cond``, ``frame_embedding``,
``caption_words``; all off by default, and then no parameter of theirs exists): the caption
otherwise reaches each frame's spatial layers alike, which do not know which frame they draw, so a
direction word ("moving left") has no direct way to the order across frames. ``temporal_cond``
modulates each temporal layer from the per-frame embedding (noise level + pooled caption; adaLN of
DiT, arXiv:2212.09748, Sec. 3.2); ``frame_embedding`` adds a learned frame-index embedding to it
(TimeSformer, arXiv:2102.05095, Eq. (1)). Both start at zero
(:class:`~genzoo.nn.spacetime.SpaceTimeUNet`). ``caption_words`` (text) adds to every frame's
embedding a linear map, zero at the start, of the mean of the caption's word embeddings, the text
transformer's input: a route for words that a jointly trained text transformer has learned to ignore
(a run trained without a use for the direction word maps "left" and "right" to nearly the same
features; RESULTS.md). To add them to a trained run, give that video-diffusion run as ``image_run``
(``--base RUN``) with the same settings plus the new options: all its weights are copied, the new
layers start at zero, so training goes on from the same denoiser (fine-tuning;
:meth:`VideoDiffusion.load_video_run`).

Noise shared across frames (``noise_mix = alpha > 0``): the mixed noise prior of PYoCo (Ge et
al., arXiv:2305.10474, Sec. 3.2, Eq. (3)): every noise draw of a clip, in training and the
sampler's start, is ``eps_t = (alpha eps_shared + eps_ind_t) / sqrt(1 + alpha^2)``, one
``eps_shared`` for all ``T`` frames and one ``eps_ind_t`` per frame, so each pixel keeps unit
variance and two frames' noises correlate by ``alpha^2 / (1 + alpha^2)``. The frames of a clip then
start from, and are denoised out of, mostly the same noise, which ties their content together.
EDM's preconditioning is unchanged (the per-pixel variance is), and so is the probability-flow
ODE: with noise ``sigma Sigma^(1/2) eps`` the score is ``-Sigma^-1 (x - D) / sigma^2``, and the ODE
drift ``-sigma Sigma grad log p`` is ``(x - D) / sigma`` as for white noise, so every
deterministic genzoo sampler (Heun, Euler, DDIM, DPM-Solver++) samples it exactly; stochastic
samplers add white noise on the way (an approximation). Off by default (0: the draws are the
ones above, bit for bit).

Starting from an image model (``image_run``, :class:`~genzoo.core.protocol.BuiltOnRuns`), as
Make-A-Video (Singer et al., arXiv:2209.14792, Sec. 3.2), Video LDM (Blattmann et al.,
arXiv:2304.08818, Sec. 3.1) and AnimateDiff (Guo et al., arXiv:2307.04725, Sec. 4.2) do: the
spatial layers are loaded from a trained ``edm`` run on the video's frames
(``frames:moving-digits?size=16``) with the same U-Net settings, and only the temporal layers
have to learn to tie the frames together. The input convolution's weights for the noisy frame
are the image model's; those for the known frames and the mask start at zero, and the temporal
layers start as the identity, so at initialisation the video denoiser *is* the image denoiser on
every frame (unconditional clips; tested). ``freeze_spatial = true`` keeps the image layers fixed
for good (AnimateDiff trains only its motion modules), except the input convolution, which also
reads the known frames.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genzoo.core.config import bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, BuiltOnRuns, LossOutput, PromptConditioned, SubRun
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand, randn
from genzoo.core.tensors import per_example
from genzoo.data.base import DataInfo
from genzoo.data.captions import MAX_LEN, CaptionTokenizer, get_caption_tokenizer
from genzoo.data.shapes import CLASS_NAMES, article
from genzoo.data.video import SHAPE_DIRECTIONS, clip_request, context_length
from genzoo.models.diffusion.backbones import UNetBackbone
from genzoo.models.diffusion.base import DiffusionConfig, drop_to_null
from genzoo.models.diffusion.edm import EDM, EDMConfig
from genzoo.models.diffusion.t2i import prompt_tokens
from genzoo.models.multimodal.base import vocabulary_check
from genzoo.nn.encoders import TextEncoder
from genzoo.nn.spacetime import SpaceTimeUNet
from genzoo.nn.unet import UNet


@dataclass(frozen=True)
class VideoDiffusionConfig(EDMConfig):
    unet: UNetBackbone = dataclasses.field(
        default_factory=lambda: UNetBackbone(channels=32, channel_mult=(1, 2, 2))
    )  # the spatial (image) U-Net run on every frame
    causal: bool = False  # temporal attention sees only the current and earlier frames
    spacetime_attn_resolutions: tuple[int, ...] = bounded((), ge=1)  # resolutions (e.g. (8,))
    # whose temporal layers attend over all T*H*W positions of a clip, not per pixel; () : none
    motion_input: bool = False  # prediction: also give the network, on every unknown frame, the
    # last known frame moved on by the shift between the last two known frames (C more inputs)
    max_shift: int = bounded(3, ge=1)  # motion_input: largest shift per frame searched (pixels)
    coarse_input: bool = False  # also give the network a coarse clip of the same shape
    # (C more inputs per frame): the frame decoder of video-worldmodel decoder=diffusion
    noise_mix: float = bounded(0.0, ge=0, le=100)  # PYoCo's mixed noise: alpha, the weight of
    # one noise draw shared by all frames of a clip against each frame's own (0: independent)
    context_prob: float = bounded(0.5, ge=0, le=1)  # probability that a training clip shows its
    # first frames as the condition (prediction); 0: unconditional only
    max_context: int = bounded(4, ge=1)  # at most this many known frames in training
    sample_steps: int = bounded(18, ge=1)  # Heun steps (35 network evaluations)
    text: bool = False  # condition on the caption (moving-shapes) by cross-attention; needs
    # context_prob = 0 (text and first frames are exclusive conditions)
    text_width: int = bounded(64, ge=1)  # width of the text encoder (trained with the U-Net)
    text_layers: int = bounded(2, ge=0)  # its transformer blocks
    text_heads: int = bounded(4, ge=1)  # its attention heads
    pooled_text: bool = True  # also add the [EOS] text feature to the noise embedding (GLIDE)
    caption_dropout: float = bounded(0.1, ge=0, lt=1)  # probability of the null caption in
    # training (classifier-free guidance)
    guidance: float = 3.0  # default guidance scale w of a text-conditioned run
    temporal_cond: bool = False  # adaLN of the temporal layers from the per-frame embedding
    # (noise level, pooled caption, frame index): the caption steers the temporal attention too
    frame_embedding: bool = False  # add a learned frame-index embedding to each frame's embedding
    caption_words: bool = False  # text: also add a linear map of the mean of the caption's word
    # embeddings (the text transformer's input) to every frame's embedding (starts at zero)
    image_run: str = ""  # a trained `edm` run on the frames (frames:moving-digits?size=16) with
    # the same U-Net settings: its U-Net starts the spatial layers; or a trained video-diffusion
    # run of the same settings: all its weights start this model's (new options' layers fresh)
    image_ema: bool = True  # take the image run's EMA weights
    freeze_spatial: bool = False  # keep the image run's spatial layers fixed (all but the input
    # convolution); needs image_run

    def validate(self) -> None:
        super().validate()
        if self.freeze_spatial and not self.image_run:
            raise ConfigError(
                "freeze_spatial = true keeps the spatial layers of an image model fixed; give "
                "the image run too (image_run=RUN or --base RUN)."
            )
        if self.motion_input and (self.text or self.context_prob == 0):
            raise ConfigError(
                "motion_input = true moves the last known frame on; it needs prediction "
                f"training (context_prob > 0, got {self.context_prob}) and text = false."
            )
        if self.coarse_input and (self.text or self.motion_input):
            raise ConfigError(
                "coarse_input = true conditions on a coarse clip (video-worldmodel's frame "
                "decoder); it goes with text = false and motion_input = false."
            )
        if self.text and self.context_prob > 0:
            raise ConfigError(
                f"text = true with context_prob = {self.context_prob}: text and first frames are "
                "exclusive conditions; set context_prob=0 for a text-conditioned run."
            )
        if self.text and self.text_width % self.text_heads:
            raise ConfigError(
                f"text_width = {self.text_width} must be divisible by "
                f"text_heads = {self.text_heads}."
            )
        if self.arch not in ("auto", "unet"):
            raise ConfigError(
                f"arch = {self.arch!r}: video-diffusion runs the U-Net on frames; use arch=unet."
            )
        if self.class_conditional:
            raise ConfigError("video-diffusion is not class-conditional; drop class_conditional.")


def shift_images(img: Tensor, dy: Tensor, dx: Tensor, fill: float) -> Tensor:
    """``img`` ``(N, C, H, W)`` moved by the integers ``dy``, ``dx`` ``(N,)`` (down, right):
    ``out[n, :, y, x] = img[n, :, y - dy, x - dx]``, ``fill`` where that is outside the frame."""
    n, _, h, w = img.shape
    ys = torch.arange(h, device=img.device)[None] - dy.long()[:, None]  # (N, H) source rows
    xs = torch.arange(w, device=img.device)[None] - dx.long()[:, None]  # (N, W) source columns
    inside = ((ys >= 0) & (ys < h))[:, :, None] & ((xs >= 0) & (xs < w))[:, None, :]  # (N, H, W)
    rows, cols = ys.clamp(0, h - 1), xs.clamp(0, w - 1)
    out = img[torch.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (N,H,W,C)
    out = out.permute(0, 3, 1, 2)  # (N, C, H, W)
    return torch.where(inside[:, None], out, torch.full_like(out, fill))


def motion_estimate(prev: Tensor, last: Tensor, max_shift: int) -> Tensor:
    """The integer shift ``(dy, dx)`` ``(N, 2)`` within ``max_shift`` pixels that maximises the
    cross-correlation ``sum shift(prev) * last`` of the intensities ``(x + 1) / 2`` of frames
    ``(N, C, H, W)`` (model range; black is 0), the first maximum in row-major order of
    ``(dy, dx)`` from ``-max_shift``. Written out over the ``(2 max_shift + 1)^2`` shifts (49
    small products) since a batched cross-correlation at integer lags is not in torch."""
    a, b = (prev.float() + 1) / 2, (last.float() + 1) / 2
    n, s = a.shape[0], max_shift
    shifts = [(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1)]
    scores = torch.stack([
        (shift_images(a, a.new_full((n,), dy), a.new_full((n,), dx), 0.0) * b).flatten(1).sum(1)
        for dy, dx in shifts
    ], 1)  # (N, shifts)  # fmt: skip
    best = torch.tensor(shifts, device=prev.device)[scores.argmax(1)]  # (N, 2)
    return best


def motion_frames(x0: Tensor, k: Tensor, max_shift: int) -> Tensor:
    """``(B, T, C, H, W)``: on each frame ``t >= k`` of a clip with ``k`` ``(B,)`` known first
    frames, its last known frame moved on by ``(t - k + 1) v`` (``v``: :func:`motion_estimate` of
    frames ``k - 2`` and ``k - 1``; 0 when ``k = 1``), black outside it; 0 on the known frames and
    on clips with no known frame."""
    b, t = x0.shape[:2]
    ar = torch.arange(b, device=x0.device)
    last = x0[ar, (k - 1).clamp_min(0)]  # (B, C, H, W)
    prev = x0[ar, (k - 2).clamp_min(0)]
    v = motion_estimate(prev, last, max_shift) * (k >= 2)[:, None]  # (B, 2)
    steps = torch.arange(t, device=x0.device)[None] - k[:, None] + 1  # (B, T): t - k + 1
    dy = (steps * v[:, :1]).flatten()  # (B*T,)
    dx = (steps * v[:, 1:]).flatten()
    lasts = last[:, None].expand_as(x0).flatten(0, 1)  # (B*T, C, H, W)
    moved = shift_images(lasts, dy, dx, -1.0).view_as(x0)  # (B, T, C, H, W)
    use = ((steps >= 1) & (k >= 1)[:, None]).to(x0.dtype)[:, :, None, None, None]  # (B, T, 1..)
    return moved * use


def cond_channels(config: VideoDiffusionConfig, c: int) -> int:
    """Condition channels per frame of frames with ``c`` channels: the known frames and their
    mask, the moved last known frame (``motion_input``), the coarse clip (``coarse_input``)."""
    return c + 1 + (c if config.motion_input else 0) + (c if config.coarse_input else 0)


def _motion_tokenizer() -> CaptionTokenizer:
    return get_caption_tokenizer(motion=True)


def motion_prompts(n: int) -> list[str]:
    """``n`` moving-shapes prompts cycling through the 30 colour-shape classes and, in turn, the
    4 directions: "a red circle moving left", "a red square moving right", ..."""
    out = []
    for i in range(n):
        name = CLASS_NAMES[i % len(CLASS_NAMES)]
        out.append(f"{article(name)} {name} moving {SHAPE_DIRECTIONS[i % len(SHAPE_DIRECTIONS)]}")
    return out


@register_model("video-diffusion")
class VideoDiffusion(EDM, PromptConditioned, BuiltOnRuns):
    """Video diffusion (arXiv:2204.03458): EDM over clips with a factorised space-time U-Net,
    unconditional, conditioned on the first frames, or (``text = true``) on a caption (see the
    module docstring). A text-conditioned run's ``cond`` is caption tokens ``(B, L)``.

    Part: ``image``, the trained ``edm`` model of ``image_run``, whose U-Net starts the spatial
    layers (:meth:`load_image_unet`)."""

    config_class = VideoDiffusionConfig
    config: VideoDiffusionConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "ema_decay": 0.999, "batch_size": 32}
    preview_options: ClassVar[dict[str, Any]] = {"steps": 8}
    sub_runs: ClassVar[tuple[SubRun, ...]] = (
        SubRun("image", "image_run", "image_ema", needs=(EDM,)),
    )

    def __init__(
        self, config: VideoDiffusionConfig, info: DataInfo, image: nn.Module | None = None
    ) -> None:
        encoder = None
        if config.text:
            if info.kind != "video" or info.name.split("?")[0] != "moving-shapes":
                raise ConfigError(
                    f"video-diffusion with text = true needs captioned clips; dataset "
                    f"{info.name!r} has none (try --data 'moving-shapes?size=16')."
                )
            tok = get_caption_tokenizer(motion=True)
            c = config
            encoder = TextEncoder(
                tok.vocab_size, MAX_LEN, c.text_width, c.text_layers, c.text_heads
            )
        opts = {} if encoder is None else {"context_dim": encoder.out_dim}
        super().__init__(config, info, net_options=opts)
        self.text_encoder: TextEncoder | None = encoder
        self.pool_proj: nn.Linear | None = None
        if encoder is not None:  # nothing of this exists without text: the model is unchanged
            tok = get_caption_tokenizer(motion=True)
            self.pad_id = tok.pad_id
            self.register_buffer("vocab_fingerprint", torch.tensor([tok.fingerprint()]))
            self.register_load_state_dict_post_hook(vocabulary_check(_motion_tokenizer))
            if config.pooled_text:
                self.pool_proj = nn.Linear(encoder.out_dim, 4 * config.unet.channels)
        self.word_proj: nn.Linear | None = None
        if encoder is not None and config.caption_words:
            self.word_proj = nn.Linear(encoder.out_dim, 4 * config.unet.channels)
            nn.init.zeros_(self.word_proj.weight)  # starts at zero: the model is unchanged
            nn.init.zeros_(self.word_proj.bias)
        if config.image_run:
            if image is None:
                raise ConfigError(
                    f"video-diffusion with image_run = {config.image_run!r} needs that run's "
                    "model (image=...)."
                )
            if isinstance(image, VideoDiffusion):
                self.load_video_run(image)
            else:
                self.load_image_unet(image)
            if config.freeze_spatial:
                for name, p in self.net.spatial.named_parameters():
                    p.requires_grad_(name.startswith("conv_in."))

    def load_video_run(self, video: VideoDiffusion) -> None:
        """Fine-tuning a trained video-diffusion run with new options: every weight of ``video``
        is copied; only the layers of options it was trained without (``temporal_cond``'s adaLN,
        ``frame_embedding``, ``caption_words``) keep their zero start, so at the start this model
        denoises as ``video`` does (tested). One sentence naming the first key or shape that does
        not fit."""
        run = self.config.image_run
        src, dst = video.state_dict(), self.state_dict()
        new = {k for k in dst if ".ada." in k or k.startswith(("net.frame_emb.", "word_proj."))}
        for key in sorted(dst.keys() | src.keys()):
            if key in new and key not in src:
                continue
            if key not in src or key not in dst:
                where = "the base run" if key not in src else "this model"
                raise ConfigError(
                    f"image_run = {run!r} (a video-diffusion run) does not fit: key {key!r} is "
                    f"missing from {where}; give the base run's settings (text, channels, "
                    "channel_mult, ...) and change only temporal_cond, frame_embedding or "
                    "caption_words."
                )
            if src[key].shape != dst[key].shape:
                raise ConfigError(
                    f"image_run = {run!r} (a video-diffusion run) does not fit: {key!r} has shape "
                    f"{tuple(src[key].shape)} there and {tuple(dst[key].shape)} here; give the "
                    "base run's settings."
                )
        self.load_state_dict({**dst, **src}, strict=True)

    def load_image_unet(self, image: nn.Module) -> None:
        """Copy the U-Net of a trained image ``edm`` model into the spatial layers (see the
        module docstring); the input convolution's extra input channels (known frames, mask)
        start at zero. One sentence naming the first key or shape that does not match."""
        c = self.info.shape[1]
        run = self.config.image_run
        if (
            not isinstance(image, EDM)
            or isinstance(image, VideoDiffusion)
            or image.info.kind != "images"
            or not isinstance(image.net, UNet)
        ):
            kind = image.info.kind if isinstance(image, EDM) else "?"
            raise ConfigError(
                f"image_run = {run!r} is a {type(image).__name__} model on {kind}; "
                "video-diffusion starts from an 'edm' run with a U-Net on the video's frames "
                f"(e.g. --data 'frames:{self.info.name}') or from a video-diffusion run."
            )
        if tuple(image.info.shape) != tuple(self.info.shape[1:]):
            raise ConfigError(
                f"image_run = {run!r} was trained on images of shape {tuple(image.info.shape)}; "
                f"this video's frames are {tuple(self.info.shape[1:])} (train it on "
                f"'frames:{self.info.name}')."
            )
        if image.config.sigma_data != self.config.sigma_data:
            raise ConfigError(
                f"image_run = {run!r} has sigma_data = {image.config.sigma_data}, this model "
                f"{self.config.sigma_data}: give sigma_data={image.config.sigma_data}."
            )
        src = image.net.state_dict()
        dst = self.net.spatial.state_dict()
        for key in sorted(dst.keys() | src.keys()):
            if key not in src or key not in dst:
                where = "the image run's U-Net" if key not in src else "this video U-Net"
                raise ConfigError(
                    f"image_run = {run!r} does not fit: key {key!r} is missing from {where}; "
                    "train the image run with the same U-Net settings (channels, channel_mult, "
                    "num_res_blocks, attn_resolutions, adaptive_norm) and no class or text "
                    "conditioning."
                )
            want, got = tuple(dst[key].shape), tuple(src[key].shape)
            in_conv = key == "conv_in.weight" and got == (want[0], c, *want[2:])
            if want != got and not in_conv:
                raise ConfigError(
                    f"image_run = {run!r} does not fit: {key!r} has shape {got} in the image "
                    f"run's U-Net and {want} in this video U-Net; train the image run with the "
                    "same U-Net settings."
                )
        new = dict(src)
        w = torch.zeros_like(dst["conv_in.weight"])  # (out, 2C + 1, k, k)
        w[:, :c] = src["conv_in.weight"]  # the noisy frame: the image model's weights
        new["conv_in.weight"] = w  # the known frames and the mask: zero
        self.net.spatial.load_state_dict(new, strict=True)

    def build_net(
        self, config: DiffusionConfig, info: DataInfo, n_classes: int, net_options: dict[str, Any]
    ) -> torch.nn.Module:
        if info.kind != "video" or len(info.shape) != 4:
            clips = info.name[len("frames:") :] if info.name.startswith("frames:") else ""
            hint = f" (from an image run with --base, give the clips: --data {clips!r})"
            raise ConfigError(
                f"video-diffusion needs video data (moving-digits, moving-shapes); {info.name!r} "
                f"holds {info.kind}{hint if clips else ''}."
            )
        self.arch = "unet"
        c, res = info.shape[1], info.shape[-1]
        spatial = UNet(
            in_channels=c + cond_channels(config, c),
            # [c_in x, m x0, m] (+ the moved last known frame) (+ the coarse clip)
            out_channels=c,
            resolution=res,
            **dataclasses.asdict(config.unet),  # type: ignore[attr-defined]
            **net_options,  # text: the cross-attention's context width
        )
        full = tuple(config.spacetime_attn_resolutions)  # type: ignore[attr-defined]
        levels = sorted(set(spatial.block_resolutions))
        if any(r not in levels for r in full):
            raise ConfigError(
                f"spacetime_attn_resolutions = {list(full)}: this U-Net on {res} x {res} frames "
                f"has the resolutions {levels}; pick among them (e.g. [{levels[0]}])."
            )
        return SpaceTimeUNet(
            spatial,
            causal=config.causal,  # type: ignore[attr-defined]
            spacetime_resolutions=full,
            temporal_cond=config.temporal_cond,  # type: ignore[attr-defined]
            frame_embedding=config.frame_embedding,  # type: ignore[attr-defined]
        )

    @property
    def frames(self) -> int:
        return int(self.info.shape[0])

    # --- the known frames as a condition ---
    def pack_context(self, x0: Tensor, known: Tensor, coarse: Tensor | None = None) -> Tensor:
        """``(B, T, C + 1, H, W)``: the clips ``x0`` on their known frames (0 elsewhere) and the
        mask channel, from ``known`` ``(B, T)`` (1: known; the first frames of each clip); with
        ``motion_input`` then :func:`motion_frames` too, ``(B, T, 2C + 1, H, W)``; with
        ``coarse_input`` then the coarse clip ``coarse`` ``(B, T, C, H, W)`` (required)."""
        m = known.to(x0.dtype)[:, :, None, None, None].expand(*x0.shape[:2], 1, *x0.shape[3:])
        packed = [x0 * m, m]
        if self.config.motion_input:
            k = known.sum(1).long()  # (B,) known first frames
            packed.append(motion_frames(x0, k, self.config.max_shift))
        if self.config.coarse_input:
            packed.append(self.check_coarse(coarse, x0.shape[0]).to(x0))
        return torch.cat(packed, dim=2)  # (B, T, C + 1 (+ C) (+ C), H, W)

    def check_coarse(self, coarse: Tensor | None, n: int) -> Tensor:
        """The coarse clips ``(n, T, C, H, W)`` of a ``coarse_input`` model, or one sentence."""
        shape = (n, *self.info.shape)
        if coarse is None:
            raise ConfigError(
                "This video-diffusion model decodes coarse clips (coarse_input = true, the frame "
                "decoder of video-worldmodel decoder=diffusion): give them (coarse=...); a run "
                "of its own has none to train or sample on."
            )
        if tuple(coarse.shape) != shape:
            raise ConfigError(
                f"Coarse clips of shape {tuple(coarse.shape)} do not fit this decoder: it takes "
                f"{shape}."
            )
        return coarse

    @property
    def cond_channels(self) -> int:
        """Channels of :meth:`pack_context` per frame."""
        return cond_channels(self.config, int(self.info.shape[1]))

    def denoise(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """``D(x, sigma | known frames)`` (EDM Eq. 7); ``cond`` from :meth:`pack_context`, None:
        unconditional (no known frame). A text-conditioned run: ``D(x, sigma, y)`` with ``cond``
        the caption tokens ``(B, L)`` (None: the null caption)."""
        if self.text_encoder is not None:
            return self.denoise_text(x, sigma, cond)
        c_skip, c_out, c_in, c_noise = self.precond(sigma.float())
        if cond is None:
            cond = x.new_zeros(*x.shape[:2], self.cond_channels, *x.shape[3:])
        inp = torch.cat([per_example(c_in, x) * x, cond.to(x.dtype)], dim=2)  # (B, T, 2C+1.., H, W)
        f = self.net(inp, c_noise)  # (B, T, C, H, W)
        return per_example(c_skip, x) * x + per_example(c_out, x) * f.to(x.dtype)

    # --- text (text = true) ---
    def encode_prompts(self, prompts: Sequence[str]) -> Tensor:
        """Prompts -> caption tokens ``(B, L)`` on the model's device."""
        return get_caption_tokenizer(motion=True).encode_batch(list(prompts)).to(self.device)

    def context(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(features (B, L, C), mask (B, L), pooled embedding (B, E) or None)`` of tokens."""
        assert self.text_encoder is not None
        feats = self.text_encoder(tokens.long())
        pooled = self.pool_proj(feats.pooled) if self.pool_proj is not None else None
        if self.word_proj is not None:  # mean word embedding of the real tokens (B, C); null: 0
            m = feats.mask.to(feats.tokens.dtype)[:, :, None]  # (B, L, 1)
            words = (self.text_encoder.tok_emb(tokens.long()) * m).sum(1) / m.sum(1).clamp_min(1)
            bag = self.word_proj(words)  # (B, E)
            pooled = bag if pooled is None else pooled + bag
        return feats.tokens, feats.mask, pooled

    def denoise_text(self, x: Tensor, sigma: Tensor, tokens: Tensor | None) -> Tensor:
        """``D(x, sigma, y) = c_skip x + c_out F([c_in x, 0], c_noise, tau(y))`` (EDM Eq. 7): no
        known frame (zero frame channels and mask), the caption by cross-attention."""
        c_skip, c_out, c_in, c_noise = self.precond(sigma.float())
        if tokens is None:
            tokens = torch.full((x.shape[0], MAX_LEN), self.pad_id, device=x.device)
        ctx, mask, pooled = self.context(tokens)  # the same for every frame of a clip
        empty = x.new_zeros(*x.shape[:2], x.shape[2] + 1, *x.shape[3:])  # no known frame
        inp = torch.cat([per_example(c_in, x) * x, empty], dim=2)  # (B, T, 2C+1, H, W)
        f = self.net(inp, c_noise, None, ctx, mask, pooled)  # (B, T, C, H, W)
        return per_example(c_skip, x) * x + per_example(c_out, x) * f.to(x.dtype)

    def drop_captions(self, tokens: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Each row replaced by the null caption with probability ``caption_dropout``
        (arXiv:2207.12598, Algorithm 1)."""
        return drop_to_null(
            tokens, self.config.caption_dropout, self.null_condition(tokens), generator
        )

    @property
    def default_guidance(self) -> float:
        return float(self.config.guidance) if self.text_encoder is not None else 1.0

    def sampling_denoiser(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """``D`` clamped, with the known frames returned as they are (so samplers end on them)."""
        x0 = super().sampling_denoiser(x, sigma, cond)
        if cond is None or self.text_encoder is not None:
            return x0
        c = x.shape[2]
        m = cond[:, :, c : c + 1]  # (B, T, 1, H, W)
        return torch.where(m > 0.5, cond[:, :, :c], x0)

    def null_condition(self, cond: Tensor) -> Tensor:
        """No known frame (the unconditional model); text: the null caption (padding only)."""
        if self.text_encoder is not None:
            return torch.full_like(cond, self.pad_id)
        return torch.zeros_like(cond)

    def sampling_condition(
        self, n: int, cond: Tensor | None, options: dict[str, Any]
    ) -> Tensor | None:
        """``cond``: the first frames ``(n, k, C, H, W)`` (``1 <= k < T``), model range, or None.
        A text-conditioned run: caption tokens ``(n, L)`` of ``options["prompts"]`` (repeated to
        ``n``) or ``cond`` itself, or (neither) :func:`motion_prompts`. A ``coarse_input``
        model: ``options["coarse"]``, the coarse clips ``(n, T, C, H, W)`` (required)."""
        t, c, h, w = self.info.shape
        prompts = options.pop("prompts", None)
        coarse = options.pop("coarse", None)
        if coarse is not None and not self.config.coarse_input:
            raise ConfigError(
                "This video-diffusion run takes no coarse clips (coarse_input = false)."
            )
        if self.text_encoder is not None:
            if cond is not None and cond.ndim != 2:
                raise ConfigError(
                    "This video-diffusion run is text-conditioned (text = true): it takes "
                    f"prompts or caption tokens ({n}, L), not first frames."
                )
            if prompts is None and cond is None:
                tokens = self.encode_prompts(motion_prompts(n))
            else:  # [UNK] words are said in one warning, as in t2i
                tokens = prompt_tokens(
                    self.encode_prompts, n, prompts, cond, get_caption_tokenizer(motion=True)
                )
            if tokens.ndim != 2 or tokens.shape[0] != n:
                raise ConfigError(f"cond must be caption tokens of shape ({n}, L).")
            return tokens.to(self.device).long()
        if prompts is not None:
            raise ConfigError(
                "This video-diffusion run was trained without text (text = false): it takes no "
                "prompt; train one with text=true context_prob=0 on moving-shapes."
            )
        if cond is None and not self.config.coarse_input:
            return None
        if cond is None:  # a coarse_input model: no known frame, the coarse clips
            x0 = torch.zeros(n, t, c, h, w, device=self.device)
            return self.pack_context(x0, torch.zeros(n, t, device=self.device), coarse)
        k = context_length(cond, n, (t, c, h, w))
        x0 = torch.zeros(n, t, c, h, w, device=self.device)
        x0[:, :k] = cond.to(self.device, x0.dtype)
        known = torch.zeros(n, t, device=self.device)
        known[:, :k] = 1
        return self.pack_context(x0, known, coarse)

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
        """``n`` clips ``(n, T, C, H, W)``; ``cond``: their first frames ``(n, k, C, H, W)``
        (prediction of the rest), or for a text-conditioned run caption tokens ``(n, L)``;
        ``prompts`` (text runs, repeated to ``n``; default :func:`motion_prompts`) with guidance
        ``w`` (default ``config.guidance``). ``frames`` and ``size``, if given, must be the clip
        length and frame side the model was trained on (one sentence otherwise). Other options
        as :meth:`DiffusionModel.sample` (``sampler``, ``steps``, ...)."""
        clip_request(frames, size, tuple(self.info.shape))
        if prompts is not None:
            options["prompts"] = prompts
        return super().sample(n, cond=cond, generator=generator, guidance=guidance, **options)

    # --- training ---
    def context_frames(self, b: int, generator: torch.Generator | None, device: Any) -> Tensor:
        """How many first frames each training clip shows ``(B,)``: 0 with probability ``1 -
        context_prob``, else uniform in ``1 .. min(max_context, T - 1)``."""
        c = self.config
        top = min(c.max_context, self.frames - 1)
        use = rand((b,), generator=generator, device=device) < c.context_prob
        k = 1 + (rand((b,), generator=generator, device=device) * top).long().clamp_max(top - 1)
        return torch.where(use, k, torch.zeros_like(k))

    def clip_noise(
        self, shape: Sequence[int], generator: torch.Generator | None, device: Any
    ) -> Tensor:
        """Unit-variance noise of clips ``shape = (B, T, C, H, W)``: white, or with ``noise_mix =
        alpha > 0`` PYoCo's mixed noise (arXiv:2305.10474, Eq. (3)), ``(alpha eps_shared +
        eps_ind) / sqrt(1 + alpha^2)`` with one ``eps_shared`` per clip for all its frames."""
        eps = randn(tuple(shape), generator=generator, device=device)
        alpha = float(self.config.noise_mix)
        if alpha == 0:
            return eps
        b, _t, *frame = shape
        shared = randn((b, 1, *frame), generator=generator, device=device)
        return (alpha * shared + eps) / (1 + alpha**2) ** 0.5  # PYoCo Eq. (3)

    def initial_noise(self, n: int, sigma_max: float, generator: torch.Generator | None) -> Tensor:
        """The sampler's start, ``sigma_max`` times :meth:`clip_noise` (white by default)."""
        x = self.clip_noise((n, *self.noise_shape), generator, self.device)
        return x * self.prior_std(sigma_max)

    def per_example_loss(
        self,
        x0: Tensor,
        y: Tensor | None = None,
        generator: torch.Generator | None = None,
        denoiser: Any = None,
    ) -> Tensor:
        """``lambda(sigma) |D(x0 + sigma eps, sigma | first k frames) - x0|^2`` averaged over the
        unknown frames (EDM Eq. 2); ``denoiser`` replaces ``D`` (unconditional calls). ``y``:
        caption tokens (text), or the coarse clips (``coarse_input``)."""
        b, t, dev = x0.shape[0], x0.shape[1], x0.device
        sigma = self.train_sigma(b, generator, dev)
        eps = self.clip_noise(x0.shape, generator, dev)
        x = x0 + per_example(sigma, x0) * eps  # x = x0 + sigma eps, one sigma per clip
        if self.text_encoder is not None:  # y: caption tokens (B, L); every frame counts
            d = self.denoise(x, sigma, y) if denoiser is None else denoiser(x, sigma)
            return self.loss_weight(sigma) * ((d - x0) ** 2).flatten(1).mean(1)  # EDM Eq. (2)
        k = self.context_frames(b, generator, dev)
        known = (torch.arange(t, device=dev)[None] < k[:, None]).float()  # (B, T)
        if denoiser is None:
            coarse = y if self.config.coarse_input else None
            d = self.denoise(x, sigma, self.pack_context(x0, known, coarse))
        else:
            d = denoiser(x, sigma)
        err = ((d - x0) ** 2).flatten(2).mean(2)  # (B, T) per frame, EDM Eq. (2)
        unknown = 1 - known
        return self.loss_weight(sigma) * (err * unknown).sum(1) / unknown.sum(1)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """EDM's loss; a text-conditioned run reads the captions ``text``, each dropped to the null
        caption with probability ``caption_dropout``."""
        tokens = None
        if self.text_encoder is not None:
            if "text" not in batch:
                raise ConfigError(
                    f"video-diffusion with text = true needs captions; dataset "
                    f"{self.info.name!r} has none (try --data 'moving-shapes?size=16')."
                )
            tokens = self.drop_captions(batch["text"])
        loss = self.per_example_loss(batch["x"], tokens).mean()
        return LossOutput(loss, {"loss": loss.detach()})

    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """The test denoising loss (a text-conditioned run: given the clips' captions)."""
        y = batch.get("text") if self.text_encoder is not None else None
        return {"loss": self.per_example_loss(batch["x"], y, generator)}
