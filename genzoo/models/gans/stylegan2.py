"""StyleGAN2, small: a style-based generator with weight demodulation, in plain PyTorch.

Karras, Laine, Aittala, Hellsten, Lehtinen & Aila, "Analyzing and Improving the Image Quality of
StyleGAN", arXiv:1912.04958, on the style-based generator of Karras, Laine & Aila, "A Style-Based
Generator Architecture for Generative Adversarial Networks", arXiv:1812.04948.

- **Mapping network** ``f: z -> w`` (1812.04948, Sec. 2), 8 layers there, ``mapping_layers``
  here, with the learning-rate multiplier 0.01.
- **Synthesis**: a learned constant at the smallest size (4 x 4), then per size a resizing
  modulated convolution and a modulated convolution, each followed by noise, bias and
  LeakyReLU; every size has a ``tRGB`` layer and the RGB outputs are summed after upsampling
  (the "skip" generator of 1912.04958, Fig. 7). Each layer takes its own ``w``: ``n_ws`` of them.
- **Modulation and demodulation** (1912.04958, Sec. 2.2, Eqs. (1)-(3)) in
  :mod:`genzoo.nn.style_layers`, one grouped convolution per layer (no custom CUDA ops).
- **Noise**: one noise image per layer with a learned strength (1812.04948, Sec. 3.2).
- **Style mixing** (1812.04948, Sec. 3.1): with probability ``mixing_prob`` a training example
  takes ``w_1`` for the layers before a random crossover and ``w_2`` after it.
- **Truncation** (1812.04948, Sec. 3 and App. B): ``w' = w_avg + psi (w - w_avg)`` with the
  tracked mean ``w_avg`` (a buffer, an exponential moving average of G's ``w``, decay 0.995);
  ``sample(n, truncation=psi)``.
- **Losses** (1912.04958, App. B): non-saturating logistic loss; **lazy R1**, ``gamma / 2 |grad
  D(x)|^2`` on real data every ``r1_every`` D steps, weighted by ``r1_every``
  (1912.04958, Sec. 3.1, on Mescheder et al., arXiv:1801.04406); **path-length regularisation**
  ``(|J_w^T y|_2 - a)^2`` with ``y ~ N(0, I / (H W))`` and ``a`` the moving average of the lengths
  (Sec. 3.2, Eq. (4)), every ``pl_every`` G steps, weighted by ``pl_every``. The lazy counters
  and ``a`` are buffers, so they resume with the checkpoint.
- **Discriminator**: the residual D of config F (1912.04958, Fig. 7c) with minibatch standard
  deviation (arXiv:1710.10196, Sec. 3) and equalised learning rate.

Differences from the paper, for a CPU and data of any size: one channel width for every size;
upsampling and downsampling by bilinear and area resizing (so 28 x 28 data grows 4 -> 7 -> 14 ->
28) instead of the [1, 3, 3, 1] filters; the Adam settings are not adjusted for lazy
regularisation; no mixed precision.

Options that are not the paper's, for small images and short runs (defaults are the paper's):
``g_width`` gives G's synthesis layers their own channel count (``None``: ``width``, one width
for G and D); ``affine_lr_mul`` slows the style affines ``A`` (the paper: 1; on 8 x 8 digits at
lr 2e-3 their biases drift from 1 to 1.6-2.0 within 1,000 steps and the image stops depending
on ``w``; see benchmarks/RESULTS.md, issue 19); ``loss="hinge"`` and ``d_arch="dcgan-sn"`` (the
loss and the spectrally normalised DCGAN discriminator of genzoo's ``hinge-sn``) are named
variants for comparisons that isolate the generator; ``d_mbstd`` adds the paper D's minibatch
standard deviation to that ``dcgan-sn`` D (against the low recall measured with it).

Training runs on the one Trainer with the two players' parameter groups (D first, then G), as
every genzoo GAN; ``diffaug`` augments real and fake images before D (arXiv:2006.10738).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, choices
from genzoo.core.protocol import Batch, GenerativeModel, LossOutput, Samples
from genzoo.core.registry import register_model
from genzoo.core.seeding import rand, randn
from genzoo.data.base import DataInfo
from genzoo.models.gans.losses import (
    d_loss_hinge,
    d_loss_logistic,
    g_loss_critic,
    g_loss_nonsaturating,
    r1_penalty,
)
from genzoo.models.gans.players import image_shape, player_groups, player_settings
from genzoo.nn.diffaug import diff_augment, parse_policy
from genzoo.nn.gan_nets import (
    Discriminator,
    apply_spectral_norm,
    dcgan_discriminator,
    dcgan_sizes,
    frozen,
)
from genzoo.nn.style_layers import (
    EqualConv2d,
    EqualLinear,
    MappingNetwork,
    MinibatchStdDev,
    StyledConv,
    ToRGB,
    lrelu,
    resize,
)

# D's and G's per-example losses: the paper's non-saturating logistic pair, or the hinge pair of
# genzoo's hinge + SN GAN (arXiv:1802.05957) as a named variant
LOSSES = {
    "logistic": (d_loss_logistic, g_loss_nonsaturating),
    "hinge": (d_loss_hinge, g_loss_critic),
}

# "dcgan-sn": the discriminator of genzoo's hinge + SN GAN (DCGAN's strided convolutions, spectral
# norm on every weight), a named variant that isolates G from D in comparisons with it
D_ARCHS = ["residual", "dcgan-sn"]


@dataclass(frozen=True)
class StyleGAN2Config(Config):
    """Configuration of :class:`StyleGAN2` (small: widths and depths for a CPU)."""

    latent_dim: int = bounded(64, ge=1)  # dimension of z and of w
    mapping_layers: int = bounded(4, ge=1)  # layers of the mapping network (8 in the paper)
    mapping_lr_mul: float = bounded(0.01, gt=0.0)  # learning-rate multiplier of the mapping net
    width: int = bounded(64, ge=1)  # channels of every synthesis and D layer
    g_width: int | None = bounded(None, ge=1)  # channels of every synthesis layer (None: width)
    affine_lr_mul: float = bounded(1.0, gt=0.0)  # lr multiplier of the style affines A (paper 1)
    mixing_prob: float = bounded(0.9, ge=0.0, le=1.0)  # style-mixing probability per example
    w_avg_beta: float = bounded(0.995, ge=0.0, lt=1.0)  # decay of the tracked mean w
    r1: float = bounded(0.1, ge=0.0)  # gamma of the R1 penalty gamma/2 |grad D(x)|^2 (0: off)
    r1_every: int = bounded(16, ge=1)  # lazy R1: every k-th D step, weighted by k
    pl_weight: float = bounded(2.0, ge=0.0)  # weight of the path-length penalty (0: off)
    pl_every: int = bounded(4, ge=1)  # lazy path-length penalty: every k-th G step, weight k
    pl_decay: float = bounded(0.01, gt=0.0, le=1.0)  # step of the moving average a of lengths
    mbstd_group: int = bounded(4, ge=1)  # minibatch-stddev group size in D
    # the minibatch-stddev feature (1710.10196, Sec. 3) in the "dcgan-sn" D too, before its
    # flatten (the residual D always has it); off: hinge + SN's D exactly
    d_mbstd: bool = False
    lr_d: float | None = bounded(None, gt=0.0)  # D learning rate (None: the trainer's lr)
    lr_g: float | None = bounded(None, gt=0.0)  # G learning rate (None: the trainer's lr)
    betas: tuple[float, float] = bounded((0.0, 0.99), ge=0.0, lt=1.0)  # Adam betas (paper)
    diffaug: str = ""  # DiffAugment policies before D, e.g. "color,translation,cutout"
    loss: str = "logistic"  # "logistic" (the paper's non-saturating pair) or "hinge"
    d_arch: str = "residual"  # D: "residual" (the paper's) or "dcgan-sn" (hinge + SN's D)

    def validate(self) -> None:
        parse_policy(self.diffaug)
        if self.loss not in LOSSES:
            raise ConfigError(
                f"StyleGAN2 loss {self.loss!r} is not known; choose {choices(list(LOSSES))}."
            )
        if self.d_arch not in D_ARCHS:
            raise ConfigError(
                f"StyleGAN2 d_arch {self.d_arch!r} is not known; choose {choices(D_ARCHS)}."
            )
        if self.d_mbstd and self.d_arch != "dcgan-sn":
            raise ConfigError(
                f"StyleGAN2 d_mbstd=true applies to d_arch='dcgan-sn' only; d_arch "
                f"{self.d_arch!r} already has its minibatch stddev (set d_mbstd=false)."
            )


class SynthesisNetwork(nn.Module):
    """``ws (B, n_ws, w_dim) -> images (B, C, H, W)``: constant input, styled convolutions per
    size, skip connections through ``tRGB`` (1912.04958, Fig. 7b)."""

    def __init__(
        self,
        out_ch: int,
        size: tuple[int, int],
        width: int,
        w_dim: int,
        affine_lr_mul: float = 1.0,
    ) -> None:
        super().__init__()
        self.sizes = list(reversed(dcgan_sizes(size, min_stages=1)))  # smallest first
        h0, w0 = self.sizes[0]
        a = affine_lr_mul
        self.const = nn.Parameter(torch.randn(1, width, h0, w0))
        self.convs = nn.ModuleList([StyledConv(width, width, w_dim, a)])
        self.to_rgb = nn.ModuleList([ToRGB(width, out_ch, w_dim, a)])
        for _ in self.sizes[1:]:
            self.convs.append(StyledConv(width, width, w_dim, a))  # resizes first
            self.convs.append(StyledConv(width, width, w_dim, a))
            self.to_rgb.append(ToRGB(width, out_ch, w_dim, a))
        self.n_ws = len(self.convs) + 1  # each conv its own w; tRGB shares the next conv's

    def forward(self, ws: Tensor, generator: torch.Generator | None = None) -> Tensor:
        h = self.convs[0](self.const.expand(ws.shape[0], -1, -1, -1), ws[:, 0], None, generator)
        rgb = self.to_rgb[0](h, ws[:, 1])
        for s, size in enumerate(self.sizes[1:], start=1):
            i = 2 * s - 1  # index of this size's first conv
            h = self.convs[i](h, ws[:, i], size, generator)
            h = self.convs[i + 1](h, ws[:, i + 1], None, generator)
            rgb = resize(rgb, size, "bilinear") + self.to_rgb[s](h, ws[:, i + 2])  # skip
        return rgb


class ResidualDiscriminator(nn.Module):
    """``x (B, C, H, W) -> (B,)`` logits: ``fRGB``, residual blocks down to the smallest size,
    minibatch stddev, a 3 x 3 convolution and two linear layers (1912.04958, Fig. 7c)."""

    def __init__(self, in_ch: int, size: tuple[int, int], width: int, mbstd_group: int) -> None:
        super().__init__()
        self.sizes = dcgan_sizes(size, min_stages=1)  # largest first
        # gain 1 here: lrelu() carries the sqrt(2) of He's constant (StyleGAN2's convention)
        self.from_rgb = EqualConv2d(in_ch, width, 1, gain=1.0)
        self.blocks = nn.ModuleList()
        self.skips = nn.ModuleList()
        for _ in self.sizes[1:]:
            self.blocks.append(
                nn.ModuleList(
                    [EqualConv2d(width, width, 3, gain=1.0), EqualConv2d(width, width, 3, gain=1.0)]
                )
            )
            self.skips.append(EqualConv2d(width, width, 1, gain=1.0, bias=False))
        self.mbstd = MinibatchStdDev(mbstd_group)
        self.conv = EqualConv2d(width + 1, width, 3, gain=1.0)
        h0, w0 = self.sizes[-1]
        self.fc = EqualLinear(width * h0 * w0, width, gain=1.0)
        self.out = EqualLinear(width, 1, gain=1.0)

    def forward(self, x: Tensor) -> Tensor:
        h = lrelu(self.from_rgb(x))
        for (c1, c2), skip, size in zip(self.blocks, self.skips, self.sizes[1:], strict=True):
            main = resize(lrelu(c2(lrelu(c1(h)))), size)
            h = (main + skip(resize(h, size))) / math.sqrt(2.0)  # residual, unit variance
        h = lrelu(self.conv(self.mbstd(h)))
        h = lrelu(self.fc(h.flatten(1)))  # (B, C, h, w) -> (B, C * h * w)
        return self.out(h).squeeze(1)  # (B, 1) -> (B,)


@register_model("stylegan2")
class StyleGAN2(GenerativeModel, Samples):
    """StyleGAN2 (arXiv:1912.04958), small, for images of any size down to 4 x 4.

    ``loss(batch, "d")``: logistic D loss on (augmented) real and detached fakes, plus lazy R1;
    ``loss(batch, "g")``: non-saturating G loss, plus the lazy path-length penalty, and the update
    of the tracked mean ``w``. Logs: ``d_loss``, ``d_real``, ``d_fake``, ``r1`` (on its steps);
    ``g_loss``, ``d_fake``, ``pl`` and ``pl_mean`` (on its steps). Samples in the data range;
    ``sample(n, truncation=psi)`` with ``psi`` in [0, 1]. No likelihood.
    """

    family: ClassVar[str] = "gans"
    dequantize: ClassVar[bool] = False
    config_class: ClassVar[type[Config]] = StyleGAN2Config
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-3, "batch_size": 32, "grad_clip": 0.0}
    config: StyleGAN2Config
    info: DataInfo

    def __init__(self, config: StyleGAN2Config, info: DataInfo) -> None:
        super().__init__(config, info)
        c = config
        self.shape = image_shape("stylegan2", info, min_side=2)
        size = (self.shape[1], self.shape[2])
        self.mapping = MappingNetwork(
            c.latent_dim, c.latent_dim, c.mapping_layers, c.mapping_lr_mul
        )
        self.synthesis = SynthesisNetwork(
            self.shape[0], size, c.g_width or c.width, c.latent_dim, c.affine_lr_mul
        )
        self.discriminator: nn.Module
        if c.d_arch == "residual":
            self.discriminator = ResidualDiscriminator(self.shape[0], size, c.width, c.mbstd_group)
        else:  # hinge + SN's D: DCGAN body, linear head, spectral norm (arXiv:1802.05957)
            body, feat = dcgan_discriminator(self.shape[0], size, c.width)
            if c.d_mbstd:  # one stddev map before the flatten: (B, C, h, w) -> (B, C + 1, h, w)
                h0, w0 = dcgan_sizes(size)[-1]
                layers = list(body.children())  # the last one is the flatten
                body = nn.Sequential(*layers[:-1], MinibatchStdDev(c.mbstd_group), layers[-1])
                feat += h0 * w0
            self.discriminator = apply_spectral_norm(Discriminator(body, feat))
        self.n_ws = self.synthesis.n_ws
        self.policy = parse_policy(c.diffaug)
        self.register_buffer("w_avg", torch.zeros(c.latent_dim))  # tracked mean w
        self.register_buffer("pl_mean", torch.zeros(()))  # moving average a of path lengths
        self.register_buffer("d_steps", torch.zeros((), dtype=torch.long))  # lazy R1 counter
        self.register_buffer("g_steps", torch.zeros((), dtype=torch.long))  # lazy PL counter

    # ----------------------------------------------------------------------------------------------
    # networks

    def mapped(self, z: Tensor, truncation: float = 1.0) -> Tensor:
        """``w = f(z)``, truncated towards the tracked mean: ``w_avg + psi (w - w_avg)``."""
        w = self.mapping(z)  # (B, w_dim)
        if truncation != 1.0:
            w = self.w_avg + truncation * (w - self.w_avg)  # truncation trick, 1812.04948 App. B
        return w

    def broadcast(self, w: Tensor) -> Tensor:
        """One ``w`` per layer: ``(B, w_dim) -> (B, n_ws, w_dim)``."""
        return w[:, None, :].expand(-1, self.n_ws, -1)

    def forward(
        self, z: Tensor, truncation: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """The generator ``G(z)``: ``(B, latent_dim) -> (B, C, H, W)`` (no mixing)."""
        return self.synthesis(self.broadcast(self.mapped(z, truncation)), generator)

    def _mixed_ws(self, n: int) -> Tensor:
        """Training ``ws (n, n_ws, w_dim)``: style mixing with probability ``mixing_prob``."""
        c = self.config
        ws = self.broadcast(self.mapping(self._latent(n)))
        if c.mixing_prob > 0 and self.n_ws > 1:
            w2 = self.mapping(self._latent(n))  # (n, w_dim)
            u = rand((2, n), device=self.device)
            cut = 1 + (u[0] * (self.n_ws - 1)).long()  # crossover in 1 .. n_ws - 1
            cut = torch.where(u[1] < c.mixing_prob, cut, torch.full_like(cut, self.n_ws))
            layer = torch.arange(self.n_ws, device=self.device)[None, :]  # (1, n_ws)
            second = (layer >= cut[:, None])[:, :, None]  # (n, n_ws, 1)
            ws = torch.where(second, w2[:, None, :], ws)
        return ws

    def critic(self, x: Tensor) -> Tensor:
        """D's logits ``(B, C, H, W) -> (B,)``."""
        return self.discriminator(x)

    def augmented_critic(self, x: Tensor) -> Tensor:
        """D on DiffAugment's transform of ``x`` (identity when ``diffaug`` is off)."""
        return self.discriminator(diff_augment(x, self.policy))

    def _latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return randn((n, self.config.latent_dim), generator=generator, device=self.device)

    # ----------------------------------------------------------------------------------------------
    # protocol

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """D first, then G (mapping and synthesis networks)."""
        return player_groups([self.discriminator], [self.mapping, self.synthesis])

    def group_settings(self) -> dict[str, dict[str, Any]]:
        c = self.config
        return player_settings(c.betas, c.lr_d, c.lr_g)

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """D's loss (``group="d"``) or G's loss (``group="g"``)."""
        if group == "d":
            return self._d_loss(batch)
        if group == "g":
            return self._g_loss(batch)
        raise ConfigError(
            f"StyleGAN2 loss group {group!r} is not valid; choose {choices(['d', 'g'])}."
        )

    def _d_loss(self, batch: Batch) -> LossOutput:
        c = self.config
        x = batch["x"]
        lazy_r1 = c.r1 > 0 and int(self.d_steps) % c.r1_every == 0
        with torch.no_grad():
            fake = self.synthesis(self._mixed_ws(x.shape[0]))
        x_in = x.detach().requires_grad_(True) if lazy_r1 else x
        real_out = self.augmented_critic(x_in)  # (B,)
        fake_out = self.augmented_critic(fake)  # (B,)
        per_example = LOSSES[c.loss][0](real_out, fake_out)  # (B,)
        logs: dict[str, Tensor | float] = {
            "d_loss": per_example.mean().detach(),
            "d_real": real_out.mean().detach(),
            "d_fake": fake_out.mean().detach(),
        }
        if lazy_r1:
            r1 = r1_penalty(real_out, x_in)  # (B,)
            per_example = per_example + 0.5 * c.r1 * c.r1_every * r1  # lazy: weight x k
            logs["r1"] = r1.mean().detach()
        self.d_steps += 1
        return LossOutput(per_example.mean(), logs)

    def _g_loss(self, batch: Batch) -> LossOutput:
        c = self.config
        n = batch["x"].shape[0]
        ws = self._mixed_ws(n)  # (n, n_ws, w_dim)
        with torch.no_grad():  # the tracked mean of w (unmixed: layer 0's w)
            self.w_avg.lerp_(ws[:, 0].mean(0), 1.0 - c.w_avg_beta)
        fake = self.synthesis(ws)
        with frozen(self.discriminator):  # D's weights take no gradient in G's step
            fake_out = self.augmented_critic(fake)  # (B,)
        per_example = LOSSES[c.loss][1](fake_out)  # (B,)
        loss = per_example.mean()
        logs: dict[str, Tensor | float] = {
            "g_loss": loss.detach(),
            "d_fake": fake_out.mean().detach(),
        }
        if c.pl_weight > 0 and int(self.g_steps) % c.pl_every == 0:
            pl = self.path_length_penalty(max(1, n // 2))  # (n/2,), half the batch as the paper
            loss = loss + c.pl_weight * c.pl_every * pl.mean()  # lazy: weight x k
            logs["pl"] = pl.mean().detach()
            logs["pl_mean"] = self.pl_mean.detach().clone()
        self.g_steps += 1
        return LossOutput(loss, logs)

    def path_lengths(self, ws: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``|J_w^T y|_2`` per example for ``y ~ N(0, I / (H W))`` (differentiable), ``(B,)``;
        the squared norm is averaged over the ``n_ws`` layers as in the reference code."""
        img = self.synthesis(ws, generator)
        h, w = img.shape[-2:]
        y = randn(img.shape, generator=generator, device=img.device, dtype=img.dtype)
        y = y / math.sqrt(h * w)
        (grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)  # (B, n_ws, w_dim)
        return grad.pow(2).sum(2).mean(1).sqrt()  # (B,)

    def path_length_penalty(self, n: int) -> Tensor:
        """``(|J_w^T y|_2 - a)^2`` per example (Eq. (4)); ``a`` moves towards the batch mean."""
        ws = self._mixed_ws(n)
        lengths = self.path_lengths(ws)  # (n,)
        with torch.no_grad():
            self.pl_mean.lerp_(lengths.mean(), self.config.pl_decay)  # a <- a + decay (mean - a)
        return (lengths - self.pl_mean).pow(2)  # Eq. (4)

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per example on a test batch and as many fresh fakes: ``d_loss``, ``g_loss`` (the
        logistic pair, without penalties), ``d_real``, ``d_fake``."""
        x = batch["x"]
        fake = self.sample(x.shape[0], generator=generator)
        real_out = self.critic(x)
        fake_out = self.critic(fake)
        return {
            "d_loss": d_loss_logistic(real_out, fake_out),
            "g_loss": g_loss_nonsaturating(fake_out),
            "d_real": real_out,
            "d_fake": fake_out,
        }

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        truncation: float = 1.0,
    ) -> Tensor:
        """``n`` images ``G(z)`` in the data range, ``(n, C, H, W)``; ``truncation`` psi in
        [0, 1] pulls every ``w`` towards the tracked mean (1: none, 0: the mean image)."""
        if cond is not None:
            raise ConfigError("Model 'stylegan2' is unconditional; sample it without cond.")
        psi = check_truncation(truncation)
        z = self._latent(n, generator)  # (n, latent_dim)
        return self._to_range(self(z, psi, generator))

    @torch.no_grad()
    def mixing_grid(
        self,
        n_rows: int,
        n_cols: int,
        crossover: int | None = None,
        *,
        generator: torch.Generator | None = None,
        truncation: float = 1.0,
    ) -> Tensor:
        """The style-mixing picture of 1812.04948, Fig. 3: ``((n_rows + 1) * (n_cols + 1),
        C, H, W)`` images in row-major order. Row 0: a blank corner, then the column sources B;
        each next row: source A, then A's ``w`` for the layers before ``crossover`` (coarse
        styles, default half of them) and B's after it."""
        psi = check_truncation(truncation)
        cut = self.n_ws // 2 if crossover is None else crossover
        if not 0 <= cut <= self.n_ws:
            raise ConfigError(
                f"crossover = {cut} is not a layer index; choose 0..{self.n_ws} "
                f"(this generator has {self.n_ws} style inputs)."
            )
        wa = self.mapped(self._latent(n_rows, generator), psi)  # (R, w_dim) row sources
        wb = self.mapped(self._latent(n_cols, generator), psi)  # (K, w_dim) column sources
        seed = int(rand((1,), generator=generator)[0] * 2**31)  # one noise draw for all cells

        def draw(ws: Tensor) -> Tensor:
            return self._to_range(self.synthesis(ws, torch.Generator().manual_seed(seed)))

        blank = torch.full((1, *self.shape), self.info.value_range[0], device=self.device)
        top = torch.cat([blank, draw(self.broadcast(wb))])
        rows = [top]
        for r in range(n_rows):
            ws = self.broadcast(wb).clone()  # (K, n_ws, w_dim)
            ws[:, :cut] = wa[r]  # coarse styles from A
            rows.append(torch.cat([draw(self.broadcast(wa[r : r + 1])), draw(ws)]))
        return torch.cat(rows)

    def _to_range(self, x: Tensor) -> Tensor:
        lo, hi = self.info.value_range
        return x.clamp(lo, hi).float()


def check_truncation(psi: float) -> float:
    """``psi`` in [0, 1], or one sentence."""
    try:
        value = float(psi)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise ConfigError(
            f"truncation = {psi!r} is out of range; choose psi in [0, 1] (1: no truncation, "
            "0: the mean w)."
        )
    return value
