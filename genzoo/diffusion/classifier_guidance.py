"""Classifier guidance (Dhariwal & Nichol, arXiv:2105.05233, Sec. 4) for a denoiser.

A noise-aware classifier ``p(y | x, sigma)`` on the unscaled ``x = x0 + sigma * eps`` shifts the
score by ``s * grad_x log p(y | x, sigma)`` (Sec. 4.1-4.2, the guidance scale ``s``). Since
``D(x, sigma) = x + sigma^2 grad_x log p_sigma(x)`` (Tweedie; EDM, arXiv:2206.00364, Eq. 3),
the guided denoiser is

    D'(x, sigma, y) = D(x, sigma) + s * sigma^2 * grad_x log p(y | x, sigma).

With ``s = 1`` and exact ``D`` and classifier this is exactly the class-conditional denoiser.
:class:`NoisyClassifier` is a small MLP on ``x / sqrt(sigma^2 + sigma_data^2)`` and ``ln sigma``
features; :func:`train_noisy_classifier` fits it with cross-entropy on noised data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from genzoo.core.seeding import rand, randn
from genzoo.core.tensors import per_example

SigmaSampler = Callable[[int, "torch.Generator | None", Any], Tensor]


class ClassifierGuidance:
    """``D + scale * sigma^2 * grad_x log p(y | x, sigma)``; ``cond`` are the labels y (B,).

    ``classifier(x, sigma) -> logits (B, K)`` on the unscaled ``x``. Without ``cond`` the wrapper
    is the plain denoiser.
    """

    def __init__(self, denoiser: Any, classifier: Callable[[Tensor, Tensor], Tensor], scale: float):
        self.denoiser = denoiser
        self.classifier = classifier
        self.scale = scale

    def __call__(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        d = self.denoiser(x, sigma)
        if cond is None or self.scale == 0:
            return d
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            logp = torch.log_softmax(self.classifier(xg, sigma), -1)  # (B, K)
            picked = logp.gather(1, cond.long().reshape(-1, 1)).sum()
            (grad,) = torch.autograd.grad(picked, xg)
        s2 = per_example(sigma, x) ** 2
        return d + self.scale * s2 * grad  # Sec. 4.1, the score shift written for D


class NoisyClassifier(nn.Module):
    """MLP ``p(y | x, sigma)`` on ``c_in(sigma) x`` (flattened) and Fourier features of ln sigma."""

    def __init__(
        self,
        dim: int,
        n_classes: int,
        hidden: tuple[int, ...] = (128, 128),
        sigma_data: float = 0.5,
        n_freq: int = 8,
    ) -> None:
        super().__init__()
        self.sigma_data = sigma_data
        self.register_buffer("freqs", 2.0 ** torch.arange(n_freq).float() / 8, persistent=False)
        layers: list[nn.Module] = []
        width = dim + 2 * n_freq
        for h in hidden:
            layers += [nn.Linear(width, h), nn.SiLU()]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        b = x.shape[0]
        sigma = sigma.to(x.device, torch.float32).reshape(b, 1)
        c_in = 1 / (sigma**2 + self.sigma_data**2).sqrt()
        h = c_in * x.reshape(b, -1).float()  # (B, D)
        ang = sigma.log() * self.freqs  # (B, n_freq)
        feats = torch.cat([h, ang.sin(), ang.cos()], 1)
        return self.net(feats).to(x.dtype)


def log_uniform_sigmas(sigma_min: float = 0.002, sigma_max: float = 80.0) -> SigmaSampler:
    """A sigma sampler ``ln sigma ~ U[ln sigma_min, ln sigma_max]`` covering a sampling range."""

    def draw(b: int, generator: torch.Generator | None, device: Any) -> Tensor:
        u = rand((b,), generator=generator, device=device)
        return torch.exp(math.log(sigma_min) + u * (math.log(sigma_max) - math.log(sigma_min)))

    return draw


def train_noisy_classifier(
    x: Tensor,
    y: Tensor,
    sigma_sampler: SigmaSampler,
    steps: int = 1000,
    *,
    classifier: NoisyClassifier | None = None,
    lr: float = 1e-3,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
) -> NoisyClassifier:
    """Fit a :class:`NoisyClassifier` by cross-entropy on ``x0 + sigma eps`` (Sec. 4).

    ``sigma_sampler(b, generator, device)`` draws the noise levels, e.g. a diffusion model's
    ``train_sigma`` or :func:`log_uniform_sigmas` over its sampling range.
    """
    n_classes = int(y.max()) + 1
    clf = classifier or NoisyClassifier(x[0].numel(), n_classes).to(x.device)
    opt = torch.optim.Adam(clf.parameters(), lr=lr)
    for _ in range(steps):
        idx = (rand((batch_size,), generator=generator, device=x.device) * x.shape[0]).long()
        x0, yb = x[idx], y[idx]
        sigma = sigma_sampler(batch_size, generator, x.device)
        noisy = x0 + per_example(sigma, x0) * randn(x0.shape, generator=generator, device=x.device)
        loss = nn.functional.cross_entropy(clf(noisy, sigma), yb.long())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return clf.eval()
