"""What pix2pix and CycleGAN share: image-to-image models conditioned on a source image.

An image-to-image model maps a source image to a target image of the same shape. Its
conditioning input is that source image: ``translate(src)`` is the model's natural use, and
``sample(n, cond=src)`` is the same thing through the protocol's ``sample`` (``n`` must equal the
number of source images). Without ``cond``, ``sample(n)`` translates the first ``n`` sources of the
test split of the model's dataset (cycled), so sample grids during training and ``genzoo sample``
show translations of held-out images. Generators have no latent noise (as in pix2pix's final
models, dropout is the only noise, active only in training mode), so in eval mode a translation
is deterministic and ``generator`` is not used.

They train on the image-to-image datasets of :mod:`genzoo.data.pairs`: batches carry the source in
``batch["src"]`` and the target in ``batch["x"]``, and ``genzoo.evaluate`` passes the test
split's batches, sources included, to :meth:`eval_metrics`.

The adversarial objectives are the pure functions of :mod:`genzoo.models.gans.losses`, applied to
every patch logit of a PatchGAN and averaged over patches (per example). Both papers halve D's
objective ("we divide the objective by 2 while optimizing D", pix2pix Sec. 3.3; CycleGAN
Sec. 7.1). genzoo's least-squares pair carries LSGAN's factor 1/2 (Mao et al., Eq. (2)), which
CycleGAN's Eq. (1) with the least-squares loss (Sec. 4) does not: for ``loss = 'lsgan'`` the pair
is doubled first, so G minimises ``(D(G(x)) - 1)^2`` and D ``((D(y) - 1)^2 + D(G(x))^2) / 2``
exactly as in the paper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, GenerativeModel, Samples, Translates
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo
from genzoo.data.pairs import is_pair_spec, pair_specs, parse_pair_spec
from genzoo.models.gans.losses import LOSS_PAIRS
from genzoo.models.gans.players import player_settings

AdvLoss = Literal["nonsaturating", "minimax", "lsgan", "hinge"]
ADV_LOSSES = ("nonsaturating", "minimax", "lsgan", "hinge")


def adversarial_pair(
    loss: str,
) -> tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """``(d_loss(real, fake), g_loss(fake))`` elementwise on patch logits, D's objective halved
    and the least-squares pair without LSGAN's 1/2 (see the module docstring)."""
    if loss not in ADV_LOSSES:
        raise ConfigError(f"loss = {loss!r} is not valid here; choose {choices(ADV_LOSSES)}.")
    d_fn, g_fn = LOSS_PAIRS[loss]
    s = 2.0 if loss == "lsgan" else 1.0

    def d_loss(real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * s * d_fn(real, fake)  # D's objective divided by 2

    def g_loss(fake: Tensor) -> Tensor:
        return s * g_fn(fake)

    return d_loss, g_loss


def patch_mean(t: Tensor) -> Tensor:
    """Mean over every axis but the batch: ``(B, ...) -> (B,)`` (patches, pixels)."""
    return t.flatten(1).mean(1)


def l1(a: Tensor, b: Tensor) -> Tensor:
    """Mean absolute difference per example, ``(B,)``, in model space ([-1, 1] pixels)."""
    return patch_mean((a - b).abs())


class ImageTranslator(GenerativeModel, Samples, Translates):
    """Base of the image-to-image models: shape checks, ``translate``, ``sample`` semantics."""

    family: ClassVar[str] = "gans"
    dequantize: ClassVar[bool] = False
    needs_pairs: ClassVar[bool] = False
    """Whether training needs paired data (pix2pix) or also takes unpaired data (CycleGAN)."""
    info: DataInfo

    def __init__(self, config: Any, info: DataInfo) -> None:
        super().__init__(config, info)
        ok = [s for s in pair_specs() if s.startswith("pairs:") or not self.needs_pairs]
        if not is_pair_spec(info.name) or info.kind != "images" or len(info.shape) != 3:
            raise ConfigError(
                f"Model {self.name!r} translates images and needs an image-to-image dataset, not "
                f"{info.name!r}; choose {choices(ok)}."
            )
        if self.needs_pairs and not parse_pair_spec(info.name)[0]:
            raise ConfigError(
                f"Model {self.name!r} learns from paired images, but {info.name!r} is unpaired; "
                f"choose {choices(ok)} (or model 'cyclegan' for unpaired data)."
            )
        self.shape: tuple[int, int, int] = tuple(int(s) for s in info.shape)  # type:
        # ignore[assignment]

    # ----------------------------------------------------------------------------------------------

    def check_images(self, x: Tensor, what: str = "source images") -> Tensor:
        """``x`` as a float tensor on the model's device, or a :class:`ConfigError` naming the
        expected shape ``(B, C, H, W)``."""
        x = torch.as_tensor(x)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.shape:
            c, h, w = self.shape
            raise ConfigError(
                f"{what} must have shape (B, {c}, {h}, {w}) for model {self.name!r} trained on "
                f"{self.info.name!r}, got {tuple(x.shape)}."
            )
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise ConfigError(f"{what} hold NaN or infinite values; give images in [-1, 1].")
        return x.to(self.device, torch.float32)

    def _sources(self, batch: Batch) -> Tensor:
        if "src" not in batch:
            raise ConfigError(
                f"Model {self.name!r} needs source images in batch['src'] (the image-to-image "
                "datasets 'pairs:...' and 'unpaired:...' provide them)."
            )
        return batch["src"]

    def generator_ab(self) -> nn.Module:  # pragma: no cover - abstract
        """The source -> target generator."""
        raise NotImplementedError

    def generator_ba(self) -> nn.Module:
        """The target -> source generator (CycleGAN only)."""
        raise ConfigError(f"Model {self.name!r} translates one way only (source -> target).")

    @torch.no_grad()
    def translate(self, x: Tensor, *, reverse: bool = False) -> Tensor:
        """Translate source images ``(B, C, H, W)`` (model space) to targets of the same shape;
        ``reverse`` translates targets back to sources (CycleGAN only). Deterministic in eval
        mode (``genzoo.load`` returns models in eval mode)."""
        x = self.check_images(x, "target images" if reverse else "source images")
        g = self.generator_ba() if reverse else self.generator_ab()
        return g(x).float()

    def default_sources(self, n: int) -> Tensor:
        """The first ``n`` sources of the test split of the model's dataset (cycled)."""
        test = load_dataset(self.info.name, "test")
        idx = torch.arange(n) % len(test)
        return test.get(idx)["src"].to(self.device)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """Translations ``(n, C, H, W)`` of the source images ``cond`` (``(n, C, H, W)``), or of
        the first ``n`` test sources when ``cond`` is ``None``; ``generator`` is not used."""
        if options:
            raise ConfigError(
                f"Unknown sampling option {next(iter(options))!r} for {self.name!r}; "
                "image-to-image models take none (pass source images as cond)."
            )
        src = self.default_sources(n) if cond is None else self.check_images(cond)
        if src.shape[0] != n:
            raise ConfigError(f"cond holds {src.shape[0]} source images; n = {n} asks for {n}.")
        return self.translate(src)

    def eval_pair(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """The ``(source, target)`` images of a test batch, the sources checked."""
        return self.check_images(self._sources(batch)), batch["x"]

    def group_settings(self) -> dict[str, dict[str, Any]]:
        c: Any = self.config
        return player_settings(c.betas, c.lr_d, c.lr_g)
