"""A video world model: a GPT over per-frame VQ-VAE tokens, the route of GAIA-1 (Hu et al.,
arXiv:2309.17080) and TECO (Yan et al., arXiv:2210.02396).

Each frame ``x_t`` ``(C, H, W)`` of a clip is encoded by one VQ-VAE (van den Oord et al.,
arXiv:1711.00937; genzoo's :class:`~genzoo.models.autoencoders.vqvae.VQVAE`) to ``P = h w`` code
indices ``z_t``; a clip is the token stream ``[BOS, z_1, ..., z_T]`` of ``T P`` codes (frames in
order, raster order within a frame), and genzoo's
:class:`~genzoo.models.autoregressive.gpt.GPT` (the world model, "dynamics") fits

    log p(z_1 .. z_T) = sum_t sum_i log p(z_{t,i} | z_<t, z_{t,<i})        # GAIA-1 Eq. (1)

Frames are decoded by the VQ-VAE decoder, one frame at a time (deterministic). GAIA-1 and the
implementation notes decode with a video diffusion model conditioned on the tokens; genzoo's world
model does not (it is the cheaper decoder; a diffusion decoder is left out).

Both parts are trained together inside this one model, in one loss (TECO trains its VQ and
dynamics jointly too): the VQ-VAE's loss (arXiv:1711.00937 Eq. (3)) on every frame, plus
``prior_weight`` times the GPT's next-code cross-entropy on the codes of the current VQ-VAE,
taken without gradient into the VQ-VAE (the codes are discrete targets).

Prediction (as ``video-diffusion``): ``sample(n, cond=frames)`` with the first ``k`` frames
``(n, k, C, H, W)`` encodes them to codes, continues the stream by the other ``(T - k) P`` codes
with the KV-cached GPT, and returns the known frames as given followed by the decoded rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, GenerativeModel, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.models.autoencoders.base import check_sample_args, clip_to_data
from genzoo.models.autoencoders.vqvae import VQVAE, VQVAEConfig
from genzoo.models.autoregressive.gpt import GPT, GPTConfig, TransformerConfig
from genzoo.models.autoregressive.sampling import (
    SAMPLING_OPTIONS,
    at_least_float32,
    sampling_kwargs,
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
class VideoWorldModel(GenerativeModel, Samples):
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
        self.gpt = GPT(
            GPTConfig(
                vocab_size=self.n_codes + 1, block_size=self.positions,
                **config.transformer_fields(),
            ),
            self.code_info,
        )  # fmt: skip

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

    # --- the token stream -------------------------------------------------------------------------
    def code_token_log_probs(self, codes: Tensor) -> Tensor:
        """``log p(z_i | BOS, z_<i)`` of every code of the clips: ``(B, T P)`` nats (Eq. (1))."""
        bos = torch.full((codes.shape[0], 1), self.bos, dtype=torch.long, device=codes.device)
        inp = torch.cat([bos, codes[:, :-1]], dim=1)  # (B, T P)
        logits = at_least_float32(self.gpt(inp))  # (B, T P, K)
        return -F.cross_entropy(logits.transpose(1, 2), codes, reduction="none")  # (B, T P)

    def code_log_prob(self, codes: Tensor) -> Tensor:
        """The GPT's exact log-likelihood of clips' codes ``(B, T P)``: ``(B,)`` nats."""
        return self.code_token_log_probs(codes).sum(1)

    # --- protocol ---------------------------------------------------------------------------------
    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """VQ-VAE loss on every frame (arXiv:1711.00937 Eq. (3)) + ``prior_weight`` x the GPT's
        mean next-code cross-entropy (Eq. (1)) on the frames' current codes."""
        x = batch["x"].float()  # (B, T, C, H, W)
        vq = self.vqvae.loss({"x": x.flatten(0, 1)})  # frames (B T, C, H, W)
        ce = -self.code_token_log_probs(self.encode_codes(x)).mean()  # one reduction
        loss = vq.loss + self.config.prior_weight * ce
        return LossOutput(loss, {**vq.logs, "bits_per_code": ce.detach() / math.log(2)})

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per clip: ``mse`` of the VQ-VAE's reconstruction (mean over frames and values),
        ``code_log_prob`` (nats) and ``bits_per_code``."""
        x = batch["x"].float()
        codes = self.encode_codes(x)
        rec = self.decode_codes(codes)
        lp = self.code_log_prob(codes)
        return {
            "mse": ((rec - x) ** 2).flatten(1).mean(1),
            "code_log_prob": lp,
            "bits_per_code": -lp / (self.positions * math.log(2)),
            "loss": -lp / self.positions,  # nats per code
        }

    def context_codes(self, n: int, cond: Tensor | None) -> tuple[Tensor, int]:
        """The prefix ``[BOS, codes of the known frames]`` ``(n, 1 + k P)`` and ``k``."""
        t, c, h, w = self.info.shape
        bos = torch.full((n, 1), self.bos, dtype=torch.long, device=self.device)
        if cond is None:
            return bos, 0
        if cond.ndim != 5 or tuple(cond.shape[2:]) != (c, h, w) or cond.shape[0] != n:
            raise ConfigError(
                f"Context frames of shape {tuple(cond.shape)} do not fit this run: it takes "
                f"({n}, k, {c}, {h}, {w}) with 1 <= k < {t} (frames of {c} x {h} x {w})."
            )
        k = int(cond.shape[1])
        if not 1 <= k < t:
            raise ConfigError(f"{k} context frames: give 1 to {t - 1} of the {t} frames.")
        return torch.cat([bos, self.encode_codes(cond.to(self.device))], dim=1), k

    @torch.no_grad()
    def sample_codes(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        **options: Any,
    ) -> Tensor:
        """Codes ``(n, T P)`` of ``n`` clips: the known frames' codes (``cond``) continued by the
        GPT (``temperature``, ``top_k``, ``top_p``; KV cache unless ``use_cache=False``)."""
        check_sample_args(self.name, None, options, SAMPLING_OPTIONS)
        prefix, k = self.context_codes(n, cond)
        new = self.gpt.generate(
            prefix,
            (self.frames - k) * self.per_frame,
            **sampling_kwargs(self.config, options),
            generator=generator,
            use_cache=use_cache,
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
        **options: Any,
    ) -> Tensor:
        """``n`` clips ``(n, T, C, H, W)`` in the data range; ``cond``: their first frames
        ``(n, k, C, H, W)``, returned as given, the rest predicted. ``frames`` and ``size``, if
        given, must be the trained clip length and frame side (one sentence otherwise)."""
        t, _, h, _ = self.info.shape
        if frames is not None and int(frames) != t:
            raise ConfigError(
                f"frames={frames}: this run was trained on clips of {t} frames and draws clips "
                f"of {t} frames only."
            )
        if size is not None and int(size) != h:
            raise ConfigError(
                f"size={size}: this run was trained on {h} x {h} frames and draws those only."
            )
        codes = self.sample_codes(n, cond=cond, generator=generator, **options)
        x = self.decode_codes(codes)  # (n, T, C, H, W)
        if cond is not None:
            x[:, : cond.shape[1]] = cond.to(x.device, x.dtype)  # the known frames as given
        return x
