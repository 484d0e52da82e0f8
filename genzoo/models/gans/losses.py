"""GAN objectives as pure functions of discriminator outputs, per example.

Each pair maps logits (or critic scores) ``r = D(x)`` on real and ``f = D(G(z))`` on generated
examples, shape ``(B,)``, to per-example losses ``(B,)`` that both players *minimise*; callers
reduce them (the mean) in one place. ``sigma`` is the logistic function, and
``-log sigma(t) = softplus(-t)``, ``-log(1 - sigma(t)) = softplus(t)``.

- ``minimax``: D ``-log sigma(r) - log(1 - sigma(f))``, G ``log(1 - sigma(f))``
  (Goodfellow et al., arXiv:1406.2661, Eq. (1)).
- ``nonsaturating``: D as minimax, G ``-log sigma(f)`` (ibid., Sec. 3: maximise log D(G(z))).
- ``wasserstein``: D ``f - r``, G ``-f`` (Arjovsky et al., arXiv:1701.07875, Algorithm 1).
- ``hinge``: D ``relu(1 - r) + relu(1 + f)``, G ``-f`` (Lim & Ye, arXiv:1705.02894; Miyato et
  al., arXiv:1802.05957).
- ``lsgan``: D ``(r - 1)^2 / 2 + f^2 / 2``, G ``(f - 1)^2 / 2`` (Mao et al., arXiv:1611.04076,
  the 0-1 coding a = 0, b = c = 1).

Penalties on the discriminator, per example:

- :func:`gradient_penalty`: ``(|grad D(x_hat)|_2 - 1)^2`` at ``x_hat = e x + (1 - e) x_fake``,
  ``e ~ U[0, 1]`` per example (Gulrajani et al., "Improved Training of Wasserstein GANs",
  arXiv:1704.00028, Eq. (3), weighted by lambda = 10 there).
- :func:`r1_penalty`: ``|grad_x D(x)|_2^2`` on real data (Mescheder et al., "Which Training
  Methods for GANs do actually Converge?", arXiv:1801.04406, Sec. 4.1, weighted by gamma / 2).
- :func:`clip_weights_`: WGAN weight clipping to ``[-c, c]`` (Arjovsky et al., Algorithm 1).

With the optimal discriminator ``D*(x) = p_data(x) / (p_data(x) + p_g(x))`` (Goodfellow et al.,
Proposition 1), the expected minimax D loss is ``2 log 2 - 2 JSD(p_data || p_g)`` (Theorem 1
negated); at ``p_g = p_data`` and logits 0 every per-example minimax D loss equals ``log 4``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.seeding import rand
from genzoo.core.tensors import per_example

LossFn = Callable[..., Tensor]


# --------------------------------------------------------------------------------------------------
# discriminator losses: (real (B,), fake (B,)) -> (B,)


def d_loss_logistic(real: Tensor, fake: Tensor) -> Tensor:
    """``-log sigma(r) - log(1 - sigma(f))``: binary cross-entropy of D (Eq. (1), negated)."""
    return F.softplus(-real) + F.softplus(fake)


def d_loss_wasserstein(real: Tensor, fake: Tensor) -> Tensor:
    """``f - r``: the negated critic objective ``E[D(x)] - E[D(G(z))]`` of WGAN."""
    return fake - real


def d_loss_hinge(real: Tensor, fake: Tensor) -> Tensor:
    """``max(0, 1 - r) + max(0, 1 + f)``: the hinge version of the adversarial loss."""
    return F.relu(1.0 - real) + F.relu(1.0 + fake)


def d_loss_least_squares(real: Tensor, fake: Tensor) -> Tensor:
    """``(r - 1)^2 / 2 + f^2 / 2``: LSGAN with targets b = 1 (real) and a = 0 (fake)."""
    return 0.5 * (real - 1.0).pow(2) + 0.5 * fake.pow(2)


# --------------------------------------------------------------------------------------------------
# generator losses: fake (B,) -> (B,)


def g_loss_minimax(fake: Tensor) -> Tensor:
    """``log(1 - sigma(f)) = -softplus(f)``: G minimises D's objective directly (saturates)."""
    return -F.softplus(fake)


def g_loss_nonsaturating(fake: Tensor) -> Tensor:
    """``-log sigma(f) = softplus(-f)``: G maximises ``log D(G(z))`` instead."""
    return F.softplus(-fake)


def g_loss_critic(fake: Tensor) -> Tensor:
    """``-f``: G raises the critic score of its samples (Wasserstein and hinge GANs)."""
    return -fake


def g_loss_least_squares(fake: Tensor) -> Tensor:
    """``(f - 1)^2 / 2``: LSGAN with target c = 1."""
    return 0.5 * (fake - 1.0).pow(2)


LOSS_PAIRS: dict[str, tuple[LossFn, LossFn]] = {
    "minimax": (d_loss_logistic, g_loss_minimax),
    "nonsaturating": (d_loss_logistic, g_loss_nonsaturating),
    "wasserstein": (d_loss_wasserstein, g_loss_critic),
    "wgan-gp": (d_loss_wasserstein, g_loss_critic),
    "hinge": (d_loss_hinge, g_loss_critic),
    "lsgan": (d_loss_least_squares, g_loss_least_squares),
}
"""Loss name -> (D loss, G loss); ``wgan-gp`` adds :func:`gradient_penalty` to the D loss."""


# --------------------------------------------------------------------------------------------------
# penalties and constraints


def _grad_norm(out: Tensor, x: Tensor) -> Tensor:
    """``|d out_i / d x_i|_2`` per example, differentiable (for a penalty in the loss)."""
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1).norm(2, dim=1)  # (B, ...) -> (B, D) -> (B,)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP penalty ``(|grad D(x_hat)|_2 - 1)^2`` per example, ``(B,)`` (unweighted).

    ``x_hat = e * real + (1 - e) * fake`` with one ``e ~ U[0, 1]`` per example (Algorithm 1 of
    arXiv:1704.00028); the penalty term of Eq. (3) is ``lambda`` times its mean.
    """
    e = rand((real.shape[0],), generator=generator, device=real.device, dtype=real.dtype)
    e = per_example(e, real)  # (B,) -> (B, 1, ...)
    x_hat = (e * real.detach() + (1.0 - e) * fake.detach()).requires_grad_(True)
    return (_grad_norm(critic(x_hat), x_hat) - 1.0).pow(2)  # Eq. (3), penalty term


def r1_penalty(real_out: Tensor, real: Tensor) -> Tensor:
    """R1 penalty ``|grad_x D(x)|_2^2`` per example, ``(B,)`` (unweighted; use ``gamma / 2``).

    ``real`` must require grad and ``real_out = D(real)`` (arXiv:1801.04406, Sec. 4.1).
    """
    return _grad_norm(real_out, real).pow(2)


@torch.no_grad()
def clip_weights_(params: Iterable[nn.Parameter], c: float) -> None:
    """Clamp every parameter to ``[-c, c]`` in place (WGAN weight clipping)."""
    for p in params:
        p.clamp_(-c, c)
