"""DDPAE: Hsieh, Liu, Huang, Fei-Fei & Niebles, "Learning to Decompose and Disentangle
Representations for Video Prediction" (Decompositional Disentangled Predictive Auto-Encoder),
arXiv:1806.04166 — here for one object per clip.

A clip is a **content** that does not change (the object's appearance, one latent per clip) seen
at a **pose** that does (its position, one low-dimensional latent per frame). The generative
model (Sec. 3.2-3.3, one object) is

    z_c ~ N(0, I)                                     content, one per clip       (Sec. 3.3)
    p_1 ~ N(m_0, diag s_0^2),  p_t ~ N(mu_t, diag s_t^2),  (mu_t, s_t) = f(p_1..p_{t-1})
                                                      pose dynamics, a GRU prior   (Eq. 4)
    x_t ~ N(T(D(z_c), p_t), sigma^2 I)               frame = sprite at the pose   (Eq. 3)

where ``D(z_c)`` decodes the content to a ``k x k`` sprite of intensities and ``T(sprite, p)`` is
the spatial transformer (arXiv:1506.02025) that places it with its centre at ``p`` (bilinear,
black outside the sprite), so every frame of a clip shows the very same sprite, moved. The
inference model factorises as in DDPAE's decomposition and disentanglement (Sec. 3.3): the pose
of frame ``t`` is read from that frame (``q(p_t | x_t)``: a convolutional heat map and its
spatial soft-argmax, the keypoint read-out of arXiv:1806.07823, with a learned standard
deviation), and the content from the frames brought back into the sprite's frame by the inverse
transform (``q(z_c | x_1..T)``: the windows cut around the inferred poses, averaged over time,
into an MLP). Training maximises the ELBO (Eq. 5)

    log p(x) >= sum_t E_q[log p(x_t | z_c, p_t)] - KL(q(z_c | x) || N(0, I))
                - sum_t E_q[KL(q(p_t | x_t) || p(p_t | p_{<t}))]                    (Eq. 5)

with the prior of pose ``t`` evaluated at the posterior samples of the earlier poses
(reparameterised). Prediction (Sec. 3.4) infers the content and the poses of the known frames,
rolls the pose prior forward and renders: the content of the predicted frames is the content of
the known ones by construction.

Differences from the paper, for moving-digits' single digit: one object (the paper decomposes
into several and adds them), a pose of translation only (the paper adds scale), the pose read per
frame instead of by a recurrent inference network, and the content averaged over time instead of
by an LSTM. The pixel term is a Gaussian of fixed standard deviation ``sigma`` (``obs_std``) on
the frames' intensities in [0, 1] (the paper's pixel loss is not stated per dataset; a
Bernoulli cross-entropy learnt the content several times slower here, since grey levels leave it
a large floor that a sprite cannot lower).

Two priors closer to the data (both off by default; then no parameter of theirs exists and the
model is the one above):

- ``content_prior = "vamp"``: the VampPrior (Tomczak & Welling, arXiv:1705.07120, Eq. (9)),
  ``p(z_c) = K^-1 sum_k q(z_c | u_k)``, a mixture of the content posterior at ``K``
  (``pseudo_inputs``) learned pseudo-windows ``u_k`` (``k x k`` sprites, intensities through a
  sigmoid), trained with the rest. A VAE whose aggregate posterior does not fill ``N(0, I)``
  decodes prior draws that fall between its digits to ambiguous sprites; the VampPrior draws
  where the posterior puts its mass. The content KL is then estimated with the posterior sample,
  ``log q(z_c | x) - log p(z_c)`` (Eq. (5) of the VampPrior paper, one sample), as the pose KL.
- ``first_pose = "grid"``: the first pose's prior is a mixture with one Gaussian at every pixel
  centre of the frame, learned weights and one learned standard deviation, instead of one
  Gaussian. The data start their digit at a whole-pixel position drawn uniformly within the
  frame; one Gaussian wide enough to cover that square puts part of its mass outside it, where
  the digit is cut by the border (a trained run drew a first pose outside the data's range in
  about a fifth of its clips; RESULTS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.options import option
from genzoo.core.protocol import Batch, GenerativeModel, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand, randn
from genzoo.data.base import DataInfo
from genzoo.data.video import clip_request, clip_shape, context_length, digit_side
from genzoo.models.autoencoders.base import check_sample_args
from genzoo.models.autoencoders.vae import gaussian_kl, standard_normal_log_prob
from genzoo.nn.sprites import render, windows

SAMPLING_OPTIONS = ("temperature",)
CONTENT_PRIORS = ("normal", "vamp")
FIRST_POSES = ("gaussian", "grid")
# the grid prior's parameters enter multiplied by this: a learning-rate multiplier by
# reparameterisation (as the equalised learning rate of ProGAN, arXiv:1710.10196, Sec. 4.1). Adam
# moves a parameter by about lr a step whatever its gradient's scale, so at lr 1e-3 the logits of
# the pixels the data never start at would need some 5,000 steps to fall by 5; ten times faster.
GRID_LR_SCALE = 10.0
LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class DDPAEConfig(Config):
    content_dim: int = bounded(16, ge=1)  # dimension of z_c, one per clip
    hidden: int = bounded(256, ge=1)  # width of the content MLPs and of the pose GRU
    heat_width: int = bounded(32, ge=1)  # channels of the pose heat-map CNN
    sprite: int = bounded(0, ge=0)  # side k of the sprite in pixels (0: 7/16 of the frame + 2)
    min_std: float = bounded(0.02, gt=0.0)  # floor on the pose standard deviations (pixels)
    components: int = bounded(16, ge=1)  # Gaussians in the mixture of the pose prior's step
    beta: float = bounded(1.0, ge=0.0)  # weight of the KL terms in the training loss (1: ELBO)
    obs_std: float = bounded(0.1, gt=0.0)  # sigma of p(x_t | z_c, p_t) on intensities in [0, 1]
    content_prior: str = "normal"  # "normal": N(0, I); "vamp": the VampPrior (module docstring)
    pseudo_inputs: int = bounded(64, ge=1)  # K pseudo-windows of the VampPrior
    first_pose: str = "gaussian"  # "gaussian" or "grid": a Gaussian at every pixel centre


class PoseEncoder(nn.Module):
    """``q(p_t | x_t)``'s mean: a heat map over the frame's pixels (three 3 x 3 convolutions on
    the intensities, so black borders pad like the background) and its spatial soft-argmax, the
    expected pixel centre under the softmax of the map."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 1, 3, padding=1),
        )

    def forward(self, frames: Tensor) -> Tensor:
        """Intensities ``(N, C, H, W)`` -> poses ``(N, 2)`` (x, y in pixels)."""
        n, _, h, w = frames.shape
        prob = self.net(frames).flatten(1).softmax(1).view(n, h, w)
        xs = torch.arange(w, device=frames.device, dtype=prob.dtype) + 0.5
        ys = torch.arange(h, device=frames.device, dtype=prob.dtype) + 0.5
        return torch.stack([(prob.sum(1) * xs).sum(1), (prob.sum(2) * ys).sum(1)], -1)


class PosePrior(nn.Module):
    """The pose dynamics ``p(p_t | p_{<t})`` (Eq. 4): a learned Gaussian for the first pose, then
    a GRU over the earlier poses and their steps whose head gives a mixture of ``K`` Gaussians
    over the next step ``p_t - p_{t-1}`` (a mixture density network, Bishop 1994: the first step
    of a clip is one of a few velocities, which one Gaussian would blur); causal by construction.
    """

    def __init__(
        self,
        hidden: int,
        side: float,
        min_std: float,
        components: int,
        grid: tuple[int, int] | None = None,
    ) -> None:
        """``grid = (H, W)``: the first pose's prior is a mixture with a Gaussian at each of the
        ``H * W`` pixel centres (learned weights, one learned std) instead of one Gaussian."""
        super().__init__()
        self.side, self.min_std, self.k = side, min_std, components
        self.first_mean = nn.Parameter(torch.full((2,), side / 2))
        self.first_raw_std = nn.Parameter(torch.full((2,), math.log(math.expm1(side / 4))))
        self.grid_logits: nn.Parameter | None = None
        if grid is not None:
            h, w = grid
            ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
            self.register_buffer("grid_centres", torch.stack([xs, ys], -1).view(-1, 2).float())
            self.grid_logits = nn.Parameter(torch.zeros(h * w))  # uniform at the start
            self.grid_raw_std = nn.Parameter(torch.zeros(2))  # std(0) = 1 px, as the steps'
        self.cell = nn.GRUCell(4, hidden)
        self.head = nn.Linear(hidden, 5 * components)  # per component: logit, mean (2), std (2)
        nn.init.normal_(self.head.weight, std=1e-3)
        with torch.no_grad():  # components start spread over steps of -2..2 px, std ~1 px
            self.head.bias.zero_()
            self.head.bias[components : 3 * components] = 2 * torch.rand(2 * components) * 2 - 2

    def std(self, raw: Tensor) -> Tensor:
        return F.softplus(raw + 0.5413) + self.min_std  # softplus(0.5413) = 1: a std of ~1 px

    def first(self, b: int) -> tuple[Tensor, Tensor]:
        """``p(p_1)``: mean and std ``(b, 2)`` (the one-Gaussian first pose)."""
        std = F.softplus(self.first_raw_std) + self.min_std  # starts at a quarter of the side
        return self.first_mean.expand(b, 2), std.expand(b, 2)

    def first_mixture(self, b: int) -> tuple[Tensor, Tensor, Tensor]:
        """``p(p_1)`` as a mixture: log-weights ``(b, K1)``, means and stds ``(b, K1, 2)``; one
        component (the Gaussian of :meth:`first`) without the grid, else one per pixel centre."""
        if self.grid_logits is None:
            m, s = self.first(b)
            return m.new_zeros(b, 1), m[:, None], s[:, None]
        n = self.grid_logits.numel()
        logw = (GRID_LR_SCALE * self.grid_logits).log_softmax(0).expand(b, n)
        mean = self.grid_centres.expand(b, n, 2)
        std = self.std(GRID_LR_SCALE * self.grid_raw_std).expand(b, n, 2)
        return logw, mean, std

    def step(
        self, prev: Tensor, before: Tensor, h: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``p(p_t | p_{<t})`` from ``p_{t-1}`` ``prev``, ``p_{t-2}`` ``before`` (``prev`` at
        ``t = 2``) and the GRU state ``h``: mixture log-weights ``(B, K)``, means and stds ``(B,
        K, 2)`` of the pose ``p_t`` (``p_{t-1}`` plus each component's step), the new state."""
        inp = torch.cat([prev / self.side - 0.5, (prev - before) / self.side], 1)
        h = self.cell(inp, h)
        out = self.head(h)
        k = self.k
        logw = out[:, :k].log_softmax(1)
        mean = prev[:, None] + out[:, k : 3 * k].view(-1, k, 2)  # Eq. (4): p_{t-1} + step
        std = self.std(out[:, 3 * k :].view(-1, k, 2))
        return logw, mean, std, h

    def log_prob(self, poses: Tensor) -> Tensor:
        """``log p(p_t | p_{<t})`` ``(B, T)`` for every ``t`` of ``poses (B, T, 2)``
        (teacher-forced: pose ``t``'s prior sees the given poses before it)."""
        b, t = poses.shape[:2]
        logw, mean, std = self.first_mixture(b)
        out = [torch.logsumexp(logw + normal_log_prob(poses[:, 0, None], mean, std), 1)]
        h = poses.new_zeros(b, self.cell.hidden_size)
        for i in range(1, t):
            logw, mean, std, h = self.step(poses[:, i - 1], poses[:, max(i - 2, 0)], h)
            comp = normal_log_prob(poses[:, i, None], mean, std)  # (B, K)
            out.append(torch.logsumexp(logw + comp, 1))
        return torch.stack(out, 1)

    def draw(
        self, logw: Tensor, mean: Tensor, std: Tensor, tau: float, generator: torch.Generator | None
    ) -> Tensor:
        """One pose ``(B, 2)`` from the mixture: a component by its weight (``tau = 0``: the
        heaviest), then its Gaussian with the std scaled by ``tau``."""
        b = logw.shape[0]
        if tau == 0:
            idx = logw.argmax(1)
        else:
            u = rand((b, 1), generator=generator, device=logw.device)
            idx = (logw.exp().cumsum(1) < u).sum(1).clamp_max(logw.shape[1] - 1)
        rows = torch.arange(b, device=logw.device)
        eps = randn((b, 2), generator=generator, device=logw.device)
        return mean[rows, idx] + tau * std[rows, idx] * eps


def normal_log_prob(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``log N(x; mean, diag std^2)`` summed over the last dimension."""
    return (-0.5 * ((x - mean) / std) ** 2 - std.log() - 0.5 * LOG_2PI).sum(-1)


def normal_entropy(std: Tensor) -> Tensor:
    """The entropy of ``N(., diag std^2)`` summed over the last dimension."""
    return (std.log() + 0.5 * (LOG_2PI + 1)).sum(-1)


@register_model("video-ddpae")
class DDPAE(GenerativeModel, Samples):
    """DDPAE (arXiv:1806.04166), one object: a content latent per clip decoded to a sprite, a
    pose latent per frame with GRU dynamics, frames rendered by a spatial transformer; trained on
    the ELBO, samples and predicts clips (``sample(n, cond=first_frames)``). Logs ``rec``,
    ``kl_content``, ``kl_pose``."""

    family: ClassVar[str] = "autoencoders"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = DDPAEConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 32, "grad_clip": 1000.0}
    config: DDPAEConfig

    def __init__(self, config: DDPAEConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        shape = clip_shape("video-ddpae", info)
        if "digits=2" in info.name:
            raise ConfigError(
                f"video-ddpae models one object per clip; {info.name!r} has two digits: train it "
                "on one-digit clips (digits=1, the default)."
            )
        _, c, h, w = shape
        k = config.sprite or digit_side(min(h, w)) + 2
        if k > min(h, w):
            raise ConfigError(
                f"video-ddpae sprite = {k} does not fit frames of {h} x {w}; choose 1 to "
                f"{min(h, w)} (0: 7/16 of the frame + 2)."
            )
        self.shape, self.k = shape, k
        self.pose_encoder = PoseEncoder(c, config.heat_width)
        self.pose_log_std = nn.Parameter(torch.zeros(2))  # q(p_t | x_t)'s std, learned
        self.content_encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(c * k * k, config.hidden), nn.ReLU(inplace=True),
            nn.Linear(config.hidden, config.hidden), nn.ReLU(inplace=True),
            nn.Linear(config.hidden, 2 * config.content_dim),
        )  # fmt: skip
        self.sprite_decoder = nn.Sequential(
            nn.Linear(config.content_dim, config.hidden), nn.ReLU(inplace=True),
            nn.Linear(config.hidden, config.hidden), nn.ReLU(inplace=True),
            nn.Linear(config.hidden, c * k * k),
        )  # fmt: skip
        for key, value, valid in (("content_prior", config.content_prior, CONTENT_PRIORS),
                                  ("first_pose", config.first_pose, FIRST_POSES)):  # fmt: skip
            if value not in valid:
                raise ConfigError(
                    f"video-ddpae {key} = {value!r} is not one of {', '.join(valid)}."
                )
        grid = (h, w) if config.first_pose == "grid" else None
        self.prior = PosePrior(
            config.hidden, float(min(h, w)), config.min_std, config.components, grid
        )
        self.pseudo: nn.Parameter | None = None
        if config.content_prior == "vamp":  # the VampPrior's pseudo-windows, as logits
            g = torch.Generator().manual_seed(0)
            self.pseudo = nn.Parameter(torch.randn(config.pseudo_inputs, c, k, k, generator=g))

    # ------------------------------------------------------------------------------- pieces

    @staticmethod
    def intensities(x: Tensor) -> Tensor:
        """Model range [-1, 1] -> intensities [0, 1] (black 0)."""
        return ((x + 1) / 2).clamp(0, 1)

    def pose_posterior(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """``q(p_t | x_t)`` of intensities ``(B, T, C, H, W)``: means and stds ``(B, T, 2)``."""
        b, t = frames.shape[:2]
        mean = self.pose_encoder(frames.flatten(0, 1)).view(b, t, 2)
        std = (F.softplus(self.pose_log_std) + self.config.min_std).expand_as(mean)
        return mean, std

    def content_posterior(self, frames: Tensor, pose: Tensor) -> tuple[Tensor, Tensor]:
        """``q(z_c | x)``: mean and log-variance ``(B, content_dim)`` from the windows around the
        poses (``T^-1``), averaged over the frames given."""
        return self.encode_window(windows(frames, pose, self.k).mean(1))  # (B, C, k, k)

    def encode_window(self, win: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance ``(B, content_dim)`` of the content of windows ``(B, C, k,
        k)``."""
        mu, logvar = self.content_encoder(win).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def vamp_components(self) -> tuple[Tensor, Tensor]:
        """The VampPrior's components ``q(z_c | u_k)``: means and log-variances ``(K,
        content_dim)`` of the pseudo-windows ``u_k = sigmoid(pseudo_k)``."""
        assert self.pseudo is not None
        return self.encode_window(torch.sigmoid(self.pseudo))

    def content_log_prior(self, z_c: Tensor) -> Tensor:
        """``log p(z_c)`` ``(B,)``: ``N(0, I)``, or the VampPrior ``log K^-1 sum_k q(z_c | u_k)``
        (arXiv:1705.07120, Eq. (9))."""
        if self.pseudo is None:
            return standard_normal_log_prob(z_c)
        mu, logvar = self.vamp_components()  # (K, D)
        comp = normal_log_prob(z_c[:, None], mu, (0.5 * logvar).exp())  # (B, K)
        return torch.logsumexp(comp, 1) - math.log(mu.shape[0])  # Eq. (9)

    def draw_content(self, n: int, tau: float, generator: torch.Generator | None) -> Tensor:
        """``n`` contents ``(n, content_dim)`` from the prior, every std scaled by ``tau``: from
        ``N(0, I)``, or from a uniformly drawn component of the VampPrior."""
        dev, d = self.device, self.config.content_dim
        eps = randn((n, d), generator=generator, device=dev)
        if self.pseudo is None:
            return tau * eps
        mu, logvar = self.vamp_components()
        u = rand((n,), generator=generator, device=dev)
        idx = (u * mu.shape[0]).long().clamp_max(mu.shape[0] - 1)  # k ~ U{1..K}
        return mu[idx] + tau * (0.5 * logvar[idx]).exp() * eps

    def sprite(self, z_c: Tensor) -> Tensor:
        """``D(z_c)``: the sprite's intensities ``(B, C, k, k)`` in (0, 1)."""
        c = self.shape[1]
        return torch.sigmoid(self.sprite_decoder(z_c)).view(-1, c, self.k, self.k)

    def decode(self, z_c: Tensor, pose: Tensor) -> Tensor:
        """Frame intensities ``(B, T, C, H, W)``: the sprite of ``z_c`` at each pose (Eq. 3)."""
        return render(self.sprite(z_c), pose, *self.shape[2:])

    # -------------------------------------------------------------------------------- ELBO

    def elbo_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Per clip ``(B,)``: the reconstruction term ``-log p(x | z_c, p)`` (nats, intensities in
        [0, 1]) and both KL terms of Eq. (5), one posterior sample each."""
        frames = self.intensities(x)
        q_mean, q_std = self.pose_posterior(frames)
        pose = q_mean + q_std * torch.randn_like(q_mean)  # reparameterised p_t ~ q(p_t | x_t)
        mu, logvar = self.content_posterior(frames, q_mean)
        z_c = mu + (0.5 * logvar).exp() * torch.randn_like(mu)  # z_c ~ q(z_c | x)
        mean = self.decode(z_c, pose)
        sigma = torch.full_like(mean, self.config.obs_std)
        rec = -normal_log_prob(frames.flatten(1), mean.flatten(1), sigma.flatten(1))  # Eq. (3)
        # E_q[log q(p_t | x_t) - log p(p_t | p_{<t})]: q's entropy in closed form, the mixture
        # prior's cross-entropy at the sampled poses (one sample; the prior sees earlier samples)
        kl_pose = (-normal_entropy(q_std) - self.prior.log_prob(pose)).sum(1)
        if self.pseudo is None:
            kl_content = gaussian_kl(mu, logvar)
        else:  # one-sample estimate log q(z_c | x) - log p(z_c) (VampPrior, Eq. (5))
            q_log = normal_log_prob(z_c, mu, (0.5 * logvar).exp())
            kl_content = q_log - self.content_log_prior(z_c)
        return {"rec": rec, "kl_content": kl_content, "kl_pose": kl_pose}

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        terms = self.elbo_terms(batch["x"])
        kl = terms["kl_content"] + terms["kl_pose"]
        loss = (terms["rec"] + self.config.beta * kl).mean()  # -Eq. (5) at beta = 1
        logs = {key: v.mean().detach() for key, v in terms.items()}
        return LossOutput(loss, logs)

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per clip: the negative ELBO (``loss``, nats, of the intensities in [0, 1]) and its
        parts."""
        terms = self.elbo_terms(batch["x"])
        return {"loss": terms["rec"] + terms["kl_content"] + terms["kl_pose"], **terms}

    # ----------------------------------------------------------------------------- sampling

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
        """``n`` clips ``(n, T, C, H, W)`` in [-1, 1] (the frames' mean intensities). ``cond``:
        their first ``k`` frames ``(n, k, C, H, W)``, returned as given; the content is drawn from
        ``q(z_c | known frames)`` and the poses after them from the prior (Sec. 3.4).
        ``temperature`` scales every standard deviation drawn with (default 1; 0: the means).
        ``frames``: clips of any length (default: the trained ``T``; the prior rolls on, so e.g.
        8 frames predicted after 4 known ones in one call); ``size`` must be the trained side."""
        z_c, poses, k = self.sample_latents(
            n, cond=cond, generator=generator, frames=frames, size=size, **options
        )
        out = self.decode(z_c, poses) * 2 - 1
        if cond is not None:
            out[:, :k] = cond.to(out)
        return out.float()

    @torch.no_grad()
    def sample_latents(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        frames: int | None = None,
        size: int | None = None,
        **options: Any,
    ) -> tuple[Tensor, Tensor, int]:
        """What :meth:`sample` draws before rendering: the contents ``(n, content_dim)``, the
        poses ``(n, T, 2)`` and the number ``k`` of known frames (0 without ``cond``); the same
        arguments, the same draws (``decode(z_c, poses)`` renders them)."""
        check_sample_args(self.name, None, options, SAMPLING_OPTIONS)
        t = clip_request(frames, size, self.shape, any_length=True)
        tau = option(options, "temperature", 1.0, ge=0)
        dev = self.device
        k = 0 if cond is None else context_length(cond, n, (t, *self.shape[1:]))
        poses: list[Tensor] = []
        h = torch.zeros(n, self.prior.cell.hidden_size, device=dev)
        if cond is None:
            z_c = self.draw_content(n, tau, generator)
            logw, mean, std = self.prior.first_mixture(n)
            if self.prior.grid_logits is None:  # the one Gaussian, drawn as before
                m, s = mean[:, 0], std[:, 0]
                poses.append(m + tau * s * randn((n, 2), generator=generator, device=dev))
            else:
                poses.append(self.prior.draw(logw, mean, std, tau, generator))
        else:
            known = self.intensities(cond.to(dev).float())
            q_mean, _ = self.pose_posterior(known)
            mu, logvar = self.content_posterior(known, q_mean)
            eps = randn(mu.shape, generator=generator, device=dev)
            z_c = mu + tau * (0.5 * logvar).exp() * eps
            poses = list(q_mean.unbind(1))
            for i in range(1, k):  # the GRU's state after the known poses
                h = self.prior.step(poses[i - 1], poses[max(i - 2, 0)], h)[-1]
        while len(poses) < t:
            i = len(poses)
            logw, mean, std, h = self.prior.step(poses[i - 1], poses[max(i - 2, 0)], h)
            poses.append(self.prior.draw(logw, mean, std, tau, generator))
        return z_c, torch.stack(poses, 1), k
