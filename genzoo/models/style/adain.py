"""AdaIN: feed-forward style transfer with adaptive instance normalisation and a trained decoder.

Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization",
arXiv:1703.06868. An encoder ``f`` maps content ``c`` and style ``s`` to features; AdaIN gives
``t = AdaIN(f(c), f(s))`` (Eq. (8)) and the decoder ``g`` maps ``t`` back to an image. The decoder
is trained with ``L = L_c + lambda L_s`` (Eq. (11)): ``L_c = ||f(g(t)) - t||_2`` (Eq. (12), the
Euclidean norm as the paper writes it, like the norms of ``L_s``) and the statistics loss ``L_s``
over several encoder layers (Eq. (13)); ``lambda = 10`` as in the paper. ``style_loss="gram"``
swaps Eq. (13) for Gatys' Gram loss (arXiv:1508.06576, Eq. (5)), the loss genzoo's style
benchmark scores: a named variant, not the paper's method (default: Eq. (13)).
At test time ``t = alpha t + (1 - alpha) f(c)`` trades content for style (Eq. (14)).
The paper's decoder ends with a convolution, so its image is clamped into [-1, 1] only after
the losses have seen it; ``tanh_output=true`` bounds it inside the network instead (as Johnson
et al.'s feed-forward style network does, arXiv:1603.08155), so the losses see the image that
``stylize`` returns: a variant (default: the paper's unbounded decoder).

``f`` in Eqs. (8), (12) and (14) is the encoder up to relu3 by default, the paper's choice of its
deepest style layer (relu4_1 of VGG19, 1/8 of the image size: 32-64 positions a side for the
paper's 256-512 px images). At 28 x 28, relu3 is 7 x 7; ``adain_layer=2`` applies AdaIN at relu2
(14 x 14) instead, with a decoder from there, while ``L_s`` keeps relu1, relu2, relu3: an option
for small images, not the paper's layer (default: relu3).

The paper's encoder is a pretrained VGG19, which cannot be downloaded here. ``encoder`` picks
the feature network:

- ``"own"`` (the default): genzoo's small classifier layout
  (:func:`genzoo.nn.style.small_cnn_body`), trained inside the run in two phases: for the first
  ``encoder_steps`` training steps only the encoder learns, as a classifier of the content
  classes and of the texture kinds (cross-entropy); then it is frozen and only the decoder
  learns, with the paper's losses (a fixed encoder, as the paper's VGG). The phase is counted in
  a buffer, so a resumed run continues in the same phase.
- ``"classifier:<dataset>"``: genzoo's cached feature classifier of that dataset (the network
  ``genzoo stylize`` uses for Gatys), fixed from the start, as the paper's pretrained VGG; the
  runs layer builds it and passes it in (:class:`BuiltOnRuns`), the run trains the decoder only.
  Such an encoder is tapped at the same ReLUs; its weights are saved with the run.
Batches come from ``styled:<base>``: content in ``"x"`` (labels ``"y"``), one texture per
example in ``"style"`` (kinds ``"style_y"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, BuiltOnRuns, GenerativeModel, LossOutput
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.data.textures import KINDS
from genzoo.nn.gan_nets import frozen
from genzoo.nn.style import (
    SMALL_CNN_TAPS,
    AdaINDecoder,
    FeatureNet,
    adain,
    gram_matrix,
    gram_style_loss,
    small_cnn_body,
    stats_style_loss,
    tap_features,
)


@dataclass(frozen=True)
class AdaINConfig(Config):
    """Configuration of :class:`AdaIN`."""

    width: int = bounded(16, ge=1)  # own encoder's channels w, 2w, 4w (the classifier layout)
    style_weight: float = bounded(10.0, ge=0.0)  # lambda of Eq. (11)
    encoder_steps: int = bounded(300, ge=0)  # own encoder: the first training steps, the encoder
    # alone learns (classification); afterwards it is frozen and the decoder learns
    encoder: str = "own"  # "own" (trained in the run) or "classifier:<dataset>" (genzoo's
    # cached feature classifier, fixed; the decoder trains from step 0)
    decoder_width: int = bounded(0, ge=0, le=1024)  # decoder channels d (2d, 2d, d, d after its
    # 4w-channel input); 0: the encoder's width w (the mirror); 2w: the first conv is as wide as
    # its input
    style_loss: Literal["stats", "gram"] = "stats"  # the decoder's L_s: "stats", the paper's
    # Eq. (13) (channel means and stds); "gram": Gatys' Gram loss (arXiv:1508.06576, Eq. (5)),
    # the loss genzoo's style benchmark scores: a variant, not the paper's AdaIN
    adain_layer: int = bounded(3, ge=2, le=3)  # the encoder tap where AdaIN (Eq. (8)) and L_c
    # (Eq. (12)) sit and the decoder starts: 3, relu3 (4w channels, 7 x 7 at 28 x 28); 2, relu2
    # (2w channels, 14 x 14); L_s (Eq. (13)) keeps relu1, relu2, relu3 either way
    decoder_noise: int = bounded(0, ge=0, le=64)  # channels of N(0, 1) noise concatenated to
    # every decoder stage's input (Texture Networks, arXiv:1603.03417); 0: none (the paper's)
    multi_level: bool = False  # AdaIN at relu2 too (with adain_layer 3): the decoder takes it
    # beside its upsampled relu3 path and L_c (Eq. (12)) adds relu2's term; a variant, not the paper
    tanh_output: bool = False  # the decoder's output through tanh, so the losses see the image
    # in (-1, 1) that stylize returns (arXiv:1603.08155 bounds its output so); default: unbounded,
    # clamped by stylize (the paper's decoder)

    def validate(self) -> None:
        if self.multi_level and self.adain_layer != 3:
            raise ConfigError(
                f"multi_level = True adds AdaIN at relu2 beside relu3; it needs adain_layer = 3, "
                f"not {self.adain_layer}."
            )
        if self.style_loss not in ("stats", "gram"):
            raise ConfigError(
                f"style_loss = {self.style_loss!r} is not valid; choose 'stats' (the paper's "
                "Eq. (13)) or 'gram' (Gatys' Gram loss)."
            )
        kind, _, data = self.encoder.partition(":")
        if not (self.encoder == "own" or (kind == "classifier" and data)):
            raise ConfigError(
                f"encoder = {self.encoder!r} is not valid; choose 'own' or "
                "'classifier:<dataset>' (e.g. 'classifier:digits')."
            )


@register_model("adain")
class AdaIN(GenerativeModel, BuiltOnRuns):
    """AdaIN style transfer (arXiv:1703.06868): encoder, adaptive instance norm, trained decoder.

    :meth:`stylize` maps content and style images (model space, the dataset's shape) to the
    stylised image. ``loss(batch)`` logs ``content`` (Eq. (12)), ``style`` (Eq. (13)) and
    ``encoder_ce`` (each in its phase); ``eval_metrics`` gives all three per example.
    """

    family: ClassVar[str] = "style"
    config_class: ClassVar[type[Config]] = AdaINConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 32}
    config: AdaINConfig
    info: DataInfo

    def __init__(
        self, config: AdaINConfig, info: DataInfo, feature_net: FeatureNet | None = None
    ) -> None:
        super().__init__(config, info)
        shape = tuple(int(s) for s in info.shape)
        if info.kind != "images" or len(shape) != 3 or info.n_classes < 1:
            raise ConfigError(
                f"Model 'adain' trains on content and style images, but dataset {info.name!r} "
                f"has {info.kind} of shape {shape}; choose 'styled:digits' or 'styled:mnist5k'."
            )
        self.shape = shape
        self.n_classes = info.n_classes
        self.own = config.encoder == "own"
        if self.own:
            self.encoder = small_cnn_body(shape[0], config.width)
            self.taps: tuple[int, ...] = SMALL_CNN_TAPS
        else:
            if feature_net is None:
                raise ConfigError(
                    f"adain with encoder = {config.encoder!r} needs that feature network; "
                    "train it with 'genzoo train adain' (the runs layer builds it)."
                )
            if feature_net.in_channels != shape[0]:
                raise ConfigError(
                    f"The feature network {feature_net.name!r} takes {feature_net.in_channels}-"
                    f"channel images, the data {info.name!r} has {shape[0]}; choose "
                    "a classifier of a dataset with the same channels."
                )
            self.encoder = feature_net.body
            self.taps = feature_net.taps
            self.encoder.requires_grad_(False)  # fixed from the start, as the paper's VGG
        width = self.encoder[0].out_channels  # the decoder mirrors the encoder (w, 2w, 4w)
        self.head = nn.Linear(4 * width, info.n_classes + len(KINDS))
        self.decoder = AdaINDecoder(
            shape[0],
            width,
            (shape[1], shape[2]),
            config.decoder_width or None,
            config.adain_layer,
            config.decoder_noise,
            config.multi_level,
            config.tanh_output,
        )
        self.at = config.adain_layer - 1  # AdaIN's layer among the taps (2: the last, relu3)
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))  # training losses
        if not self.own:
            self.head.requires_grad_(False)  # the encoder is not trained: no classifier head

    @classmethod
    def load_parts(
        cls, config: Config, load_run: Callable[[str, bool], nn.Module]
    ) -> dict[str, nn.Module]:
        """``feature_net``: the classifier named by ``encoder`` (the runs layer's ``load_run``
        builds ``classifier:<dataset>``); nothing for the own encoder."""
        assert isinstance(config, AdaINConfig)
        return {} if config.encoder == "own" else {"feature_net": load_run(config.encoder, False)}

    def _encoder_steps(self) -> int:
        return self.config.encoder_steps if self.own else 0

    def encode(self, x: Tensor) -> list[Tensor]:
        """Encoder features at the taps relu1, relu2, relu3 (``adain_layer`` picks the one that
        feeds AdaIN: relu3 by default)."""
        return tap_features(self.encoder, x, self.taps)

    @torch.no_grad()
    def stylize(
        self,
        content: Tensor,
        style: Tensor,
        alpha: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``g((1 - alpha) f(c) + alpha AdaIN(f(c), f(s)))`` (Eq. (14)), ``(B, C, H, W)``, clamped
        to [-1, 1]. With ``decoder_noise``, the noise comes from ``generator`` (default: seed 0,
        so the same inputs give the same image)."""
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"alpha = {alpha!r} must lie in [0, 1] (1: full style).")
        fc, fs = self.encode(content), self.encode(style)

        def mix(i: int) -> Tensor:  # Eq. (14) at tap i
            return alpha * adain(fc[i], fs[i]) + (1.0 - alpha) * fc[i]

        t = mix(self.at)
        t2 = mix(1) if self.config.multi_level else None  # relu2 too (the multi-level variant)
        if generator is None and self.config.decoder_noise:
            generator = torch.Generator(content.device).manual_seed(0)
        return self.decoder(t, generator, t2).clamp(-1.0, 1.0)  # into the model range

    def _check(self, batch: Batch) -> None:
        if "style" not in batch:
            raise ConfigError(
                "Model 'adain' needs batches with a 'style' image per example; "
                "train it on 'styled:digits' or 'styled:mnist5k'."
            )

    def encoder_loss(self, batch: Batch) -> Tensor:
        """Cross-entropy ``(B,)`` of the encoder's classification of the content classes and of
        the texture kinds (mean of the two per example)."""
        c, s = batch["x"], batch["style"]
        logits = self.head(self.encoder(torch.cat([c, s])).mean(dim=(2, 3)))  # (2B, K + 4)
        labels = torch.cat([batch["y"].long(), batch["style_y"].long() + self.n_classes])
        ce = F.cross_entropy(logits, labels, reduction="none")  # (2B,)
        return 0.5 * (ce[: c.shape[0]] + ce[c.shape[0] :])  # (B,)

    def decoder_losses(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(L_c, L_s)`` per example ``(B,)`` (Eqs. (12), (13)), the encoder frozen; the
        decoder's noise (``decoder_noise``) from ``generator``."""
        c, s = batch["x"], batch["style"]
        with frozen(self.encoder):  # the decoder's losses train the decoder only
            with torch.no_grad():
                content_feats, style_feats = self.encode(c), self.encode(s)
                t = adain(content_feats[self.at], style_feats[self.at])  # Eq. (8)
                t2 = adain(content_feats[1], style_feats[1]) if self.config.multi_level else None
            out_feats = self.encode(self.decoder(t, generator, t2))
            lc = (out_feats[self.at] - t).flatten(1).norm(dim=1)  # Eq. (12): L2 norm, per example
            if t2 is not None:  # the variant: Eq. (12) at relu2 too
                lc = lc + (out_feats[1] - t2).flatten(1).norm(dim=1)
            if self.config.style_loss == "gram":  # the variant: Gatys' Eq. (5), not the paper's
                ls = gram_style_loss(out_feats, [gram_matrix(f) for f in style_feats])
            else:
                ls = stats_style_loss(out_feats, style_feats)  # Eq. (13)
        return lc, ls

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """The own encoder's cross-entropy for the first ``encoder_steps`` calls in training mode,
        then ``L_c + lambda L_s`` (Eq. (11)) for the decoder."""
        self._check(batch)
        phase_one = bool(self.steps_seen < self._encoder_steps())
        if self.training and torch.is_grad_enabled():
            self.steps_seen += 1
        if phase_one:
            ce = self.encoder_loss(batch)
            return LossOutput(ce.mean(), {"encoder_ce": ce.mean().detach()})
        lc, ls = self.decoder_losses(batch)
        per_example = lc + self.config.style_weight * ls  # Eq. (11)
        logs: dict[str, Tensor | float] = {
            "content": lc.mean().detach(),
            "style": ls.mean().detach(),
        }
        return LossOutput(per_example.mean(), logs)

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per example: ``content`` (Eq. (12)), ``style`` (Eq. (13)), ``encoder_ce`` (the own
        encoder's)."""
        self._check(batch)
        lc, ls = self.decoder_losses(batch, generator)
        out = {"content": lc, "style": ls}
        if self.own:
            out["encoder_ce"] = self.encoder_loss(batch)
        return out
