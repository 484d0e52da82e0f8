"""Flow matching / rectified flow (Lipman et al., arXiv:2210.02747; Liu et al., arXiv:2209.03003).

The straight path ``x_t = (1 - t) x0 + t eps`` is the unscaled ``x = x0 + sigma eps`` with
``sigma = t / (1 - t)`` and scale ``s = 1 - t = 1 / (1 + sigma)``. The network predicts the
velocity ``u = eps - x0`` (the conditional flow-matching target) from ``(x_t, t)``, so

    D(x, sigma) = x_t - t u_theta(x_t, t),  x_t = x / (1 + sigma),  t = sigma / (1 + sigma)

(``c_skip = c_in = 1 / (1 + sigma)``, ``c_out = -sigma / (1 + sigma)``) and the flow-matching loss
``|u_theta - u|^2`` is ``|D - x0|^2 / t^2``. Training t ~ U(0, 1) (or logit-normal, as in
Esser et al., arXiv:2403.03206); sampling integrates the ODE from t near 1 to 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from genzoo.core.config import bounded
from genzoo.core.errors import ConfigError
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand, randn
from genzoo.diffusion.parametrization import velocity_from_x0
from genzoo.models.diffusion.base import DiffusionConfig, DiffusionModel


@dataclass(frozen=True)
class FlowMatchingConfig(DiffusionConfig):
    t_dist: Literal["uniform", "logit-normal"] = "uniform"  # training distribution of t
    t_max: float = 0.999  # largest sampling t (t = 1 is pure noise: sigma would be infinite)
    t_min: float = 1e-3  # smallest training t (avoids the 1/t^2 weight blowing up)
    sampler: str = "euler"  # default sampler: Euler on the flow ODE
    sample_steps: int = bounded(50, ge=0)  # default number of steps, uniform in t

    def validate(self) -> None:
        super().validate()
        if not 0 < self.t_min < self.t_max < 1:
            raise ConfigError("t_min and t_max must satisfy 0 < t_min < t_max < 1.")


@register_model("flow-matching")
class FlowMatching(DiffusionModel):
    """Flow matching / rectified flow (arXiv:2210.02747, arXiv:2209.03003): velocity prediction."""

    config_class = FlowMatchingConfig
    config: FlowMatchingConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "ema_decay": 0.999, "batch_size": 128}

    def precond(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        s = 1 / (1 + sigma)  # x_t = x / (1 + sigma)
        t = sigma / (1 + sigma)
        return s, -t, s, t

    def velocity(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        """``u_theta(x_t, t)``, the predicted velocity ``eps - x0`` at the unscaled ``x``."""
        return velocity_from_x0(x, self.denoise(x, sigma, cond), sigma)

    def train_sigma(self, b: int, generator: torch.Generator | None, device: Any) -> Tensor:
        c = self.config
        if c.t_dist == "uniform":
            t = rand((b,), generator=generator, device=device)
        else:
            t = torch.sigmoid(randn((b,), generator=generator, device=device))
        t = c.t_min + (c.t_max - c.t_min) * t
        return t / (1 - t)  # sigma = t / (1 - t)

    def loss_weight(self, sigma: Tensor) -> Tensor:
        t = sigma / (1 + sigma)
        return 1 / t**2  # |u_theta - u|^2 = |D - x0|^2 / t^2

    def sampling_sigmas(self, steps: int | None = None) -> Tensor:
        c = self.config
        t = torch.linspace(c.t_max, 0.0, (steps or c.sample_steps) + 1, dtype=torch.float64)
        return (t / (1 - t)).float()  # uniform in t, ending at sigma = 0

    def prior_std(self, sigma_max: float) -> float:
        return 1 + sigma_max  # x = x_t / (1 - t) with x_t ~ N(0, I) at t near 1
