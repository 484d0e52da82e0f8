"""The two players of every genzoo GAN: their parameter groups and optimizer settings.

Every adversarial model trains D first, then G (the order of :func:`player_groups`), each with
its own optimizer; :func:`player_settings` gives the per-group overrides of the Trainer's
settings (Adam betas, two-time-scale learning rates, ``n_critic`` repeats of D's step).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from genzoo.core.errors import ConfigError
from genzoo.data.base import DataInfo


def player_groups(d: Sequence[nn.Module], g: Sequence[nn.Module]) -> dict[str, list[nn.Parameter]]:
    """``{"d": D's trainable parameters, "g": G's}``, D first (its steps precede G's)."""
    return {
        "d": [p for m in d for p in m.parameters() if p.requires_grad],
        "g": [p for m in g for p in m.parameters() if p.requires_grad],
    }


def player_settings(
    betas: Sequence[float],
    lr_d: float | None,
    lr_g: float | None,
    n_critic: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Per-group optimizer overrides: both players' ``betas``, ``lr`` where set (``None``: the
    Trainer's ``lr``), and ``repeats = n_critic`` D steps per G step where given."""
    d: dict[str, Any] = {"betas": tuple(betas)}
    g: dict[str, Any] = {"betas": tuple(betas)}
    if n_critic is not None:
        d["repeats"] = n_critic
    if lr_d is not None:
        d["lr"] = lr_d
    if lr_g is not None:
        g["lr"] = lr_g
    return {"d": d, "g": g}


def image_shape(model: str, info: DataInfo, min_side: int = 2) -> tuple[int, int, int]:
    """The data's ``(C, H, W)``, or one sentence if ``model`` cannot draw it: not images, or a
    side shorter than ``min_side`` pixels."""
    shape = tuple(int(s) for s in info.shape)
    if info.kind != "images" or len(shape) != 3 or min(shape[1:]) < min_side:
        raise ConfigError(
            f"Model {model!r} needs images of shape (C, H, W) of at least {min_side} x {min_side} "
            f"pixels, but dataset {info.name!r} has {info.kind} of shape {shape}; choose an "
            "image dataset such as 'digits' or 'mnist5k'."
        )
    return shape  # type: ignore[return-value]
