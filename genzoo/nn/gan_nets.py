"""Generator and discriminator networks for GANs: MLPs for points, DCGAN nets for images.

Building blocks only (no losses, no training):

- :class:`Generator` maps ``(z, y)`` to a sample; a class-conditional generator concatenates a
  one-hot label to ``z`` (Mirza & Osindero, "Conditional Generative Adversarial Nets",
  arXiv:1411.1784).
- :class:`Discriminator` maps ``(x, y)`` to one logit (or critic score) per example through
  features ``phi(x)`` and a linear head ``psi``. Class-conditional discriminators either
  concatenate a one-hot label to the input (``"concat"``, Mirza & Osindero) or add the projection
  term ``<embed(y), phi(x)>`` (``"projection"``, Miyato & Koyama, "cGANs with Projection
  Discriminator", arXiv:1802.05637, Sec. 3): ``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>``.
- :func:`dcgan_generator` and :func:`dcgan_discriminator` follow the architecture guidelines of
  Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional
  Generative Adversarial Networks", arXiv:1511.06434, Sec. 3: no pooling (strided convolutions
  in D, fractionally strided ones in G), batch norm in G (not on its output layer), ReLU in G with
  tanh on the output, LeakyReLU(0.2) in D, optional batch norm in D (not on its input layer), a
  projection of ``z`` reshaped to the smallest map, and D's last map flattened into one output.
- :func:`apply_spectral_norm` wraps every linear, convolution and embedding weight with
  ``torch.nn.utils.parametrizations.spectral_norm`` (Miyato et al., "Spectral Normalization for
  Generative Adversarial Networks", arXiv:1802.05957, Sec. 2.1: ``W / sigma(W)``, one power
  iteration per training forward pass).
- :func:`frozen`: a player's weights take no gradient inside (the generator's step through D).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

Conditioning = Literal["none", "concat", "projection"]


# --------------------------------------------------------------------------------------------------
# sizes


def dcgan_sizes(
    size: tuple[int, int], min_stages: int = 2, smallest: int = 4
) -> list[tuple[int, int]]:
    """Spatial sizes of D's stride-2 stages, input first: ``n -> ceil(n / 2)`` until both sides
    are at most ``smallest`` (and at least ``min_stages`` times); G walks the list backwards.

    ``(64, 64) -> 64, 32, 16, 8, 4`` (the DCGAN paper's 4x4 base); ``(28, 28) -> 28, 14, 7, 4``;
    ``(8, 8) -> 8, 4, 2``.
    """
    h, w = int(size[0]), int(size[1])
    if h < 2 or w < 2:
        raise ValueError(f"DCGAN nets need images of at least 2x2 pixels, got {size}")
    sizes = [(h, w)]
    while len(sizes) - 1 < min_stages or max(h, w) > smallest:
        if min(h, w) == 1:
            break
        h, w = (h + 1) // 2, (w + 1) // 2
        sizes.append((h, w))
    return sizes


def _down(c_in: int, c_out: int, src: tuple[int, int]) -> nn.Conv2d:
    """Stride-2 convolution ``n -> ceil(n / 2)``: kernel 4 on even sides, 3 on odd ones."""
    k = tuple(4 if s % 2 == 0 else 3 for s in src)
    return nn.Conv2d(c_in, c_out, k, stride=2, padding=1, bias=True)


def _up(c_in: int, c_out: int, src: tuple[int, int], dst: tuple[int, int], bias: bool) -> nn.Module:
    """Fractionally strided convolution ``src -> dst`` with ``dst`` in ``{2 src - 1, 2 src}``:
    kernel 4 doubles a side exactly, kernel 3 gives ``2 n - 1``."""
    k = []
    for s, d in zip(src, dst, strict=True):
        if d == 2 * s:
            k.append(4)
        elif d == 2 * s - 1:
            k.append(3)
        else:
            raise ValueError(f"cannot upsample {src} to {dst} with one stride-2 layer")
    return nn.ConvTranspose2d(c_in, c_out, tuple(k), stride=2, padding=1, bias=bias)


# --------------------------------------------------------------------------------------------------
# bodies


class Reshape(nn.Module):
    """``(B, prod(shape)) -> (B, *shape)``."""

    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.view(x.shape[0], *self.shape)  # (B, prod) -> (B, *shape)


def mlp_generator(in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256, 256)) -> nn.Module:
    """``(B, in_dim) -> (B, out_dim)``: Linear + ReLU per hidden width, then a linear output."""
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


def mlp_discriminator(
    in_dim: int, hidden: Sequence[int] = (256, 256, 256), batchnorm: bool = False
) -> nn.Module:
    """Features ``(B, in_dim) -> (B, hidden[-1])``: Linear + LeakyReLU(0.2) per hidden width
    (batch norm after every linear layer but the first when ``batchnorm``)."""
    if not hidden:
        raise ValueError("mlp_discriminator needs at least one hidden width")
    layers: list[nn.Module] = []
    d = in_dim
    for i, h in enumerate(hidden):
        layers.append(nn.Linear(d, h))
        if batchnorm and i > 0:
            layers.append(nn.BatchNorm1d(h))
        layers.append(nn.LeakyReLU(0.2))
        d = h
    return nn.Sequential(*layers)


def dcgan_generator(
    in_dim: int, out_ch: int, size: tuple[int, int], width: int = 64, out_act: bool = True
) -> nn.Module:
    """DCGAN generator ``(B, in_dim) -> (B, out_ch, H, W)`` (arXiv:1511.06434, Sec. 3, Fig. 1).

    ``z`` is projected (a matrix multiplication) and reshaped to the smallest map with
    ``width * 2^(stages - 1)`` channels; each fractionally strided convolution halves the channels
    and doubles the size (exactly to the sizes of :func:`dcgan_sizes`), with batch norm and ReLU;
    the output layer has no batch norm and a tanh (``out_act``).
    """
    sizes = dcgan_sizes(size)
    n = len(sizes) - 1
    chans = [width * 2**i for i in range(n)]  # D's widths; G mirrors them
    h, w = sizes[-1]
    layers: list[nn.Module] = [
        nn.Linear(in_dim, chans[-1] * h * w, bias=False),
        Reshape(chans[-1], h, w),  # (B, C_top * h * w) -> (B, C_top, h, w)
        nn.BatchNorm2d(chans[-1]),
        nn.ReLU(),
    ]
    for i in range(n - 1, 0, -1):
        layers += [
            _up(chans[i], chans[i - 1], sizes[i + 1], sizes[i], bias=False),
            nn.BatchNorm2d(chans[i - 1]),
            nn.ReLU(),
        ]
    layers.append(_up(chans[0], out_ch, sizes[1], sizes[0], bias=True))
    if out_act:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def dcgan_discriminator(
    in_ch: int, size: tuple[int, int], width: int = 64, batchnorm: bool = False
) -> tuple[nn.Module, int]:
    """DCGAN discriminator features ``(B, in_ch, H, W) -> (B, F)`` and ``F``.

    Strided convolutions (no pooling) with ``width * 2^i`` channels and LeakyReLU(0.2), batch
    norm on every stage but the first when ``batchnorm``; the last map is flattened.
    """
    sizes = dcgan_sizes(size)
    layers: list[nn.Module] = []
    c = in_ch
    for i in range(len(sizes) - 1):
        c_out = width * 2**i
        layers.append(_down(c, c_out, sizes[i]))
        if batchnorm and i > 0:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.LeakyReLU(0.2))
        c = c_out
    layers.append(nn.Flatten(1))  # (B, C, h, w) -> (B, C * h * w)
    h, w = sizes[-1]
    return nn.Sequential(*layers), c * h * w


# --------------------------------------------------------------------------------------------------
# conditioning wrappers


def _one_hot(y: Tensor, n_classes: int, like: Tensor) -> Tensor:
    if y.shape != (like.shape[0],):
        raise ValueError(f"labels must have shape ({like.shape[0]},), got {tuple(y.shape)}")
    return F.one_hot(y.long(), n_classes).to(like.dtype)  # (B, K)


class Generator(nn.Module):
    """``G(z, y)``: ``body(cat(z, one_hot(y)))`` when class-conditional, else ``body(z)``."""

    def __init__(self, body: nn.Module, n_classes: int = 0) -> None:
        super().__init__()
        self.body = body
        self.n_classes = n_classes

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.n_classes:
            if y is None:
                raise ValueError("this generator is class-conditional: pass labels y")
            z = torch.cat([z, _one_hot(y, self.n_classes, z)], dim=1)  # (B, latent + K)
        return self.body(z)


class Discriminator(nn.Module):
    """``D(x, y) -> (B,)`` logits or critic scores from features ``phi`` and a linear head ``psi``.

    ``cond = "none"``: ``psi(phi(x))``. ``"concat"``: ``psi(phi([x, one_hot(y)]))``, the one-hot
    label appended as features (``(B, D)`` inputs) or as constant channels (``(B, C, H, W)``
    inputs; the body must expect ``C + K`` channels). ``"projection"`` (arXiv:1802.05637, Sec. 3):
    ``psi(phi(x)) + <embed(y), phi(x)>`` with a learned class embedding of width ``F``.
    """

    def __init__(
        self, body: nn.Module, feat_dim: int, n_classes: int = 0, cond: Conditioning = "none"
    ) -> None:
        super().__init__()
        if cond != "none" and n_classes < 1:
            raise ValueError(f"cond = {cond!r} needs n_classes >= 1")
        self.body = body
        self.cond = cond
        self.n_classes = n_classes if cond != "none" else 0
        self.psi = nn.Linear(feat_dim, 1)
        self.embed = nn.Embedding(n_classes, feat_dim) if cond == "projection" else None

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """``phi``: ``(B, ...) -> (B, F)`` (the one-hot label goes in first under ``concat``)."""
        if self.cond == "concat":
            if y is None:
                raise ValueError("this discriminator is class-conditional: pass labels y")
            oh = _one_hot(y, self.n_classes, x)  # (B, K)
            if x.ndim == 4:
                oh = oh[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])  # (B, K, H, W)
            x = torch.cat([x, oh], dim=1)
        return self.body(x)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        phi = self.features(x, y)  # (B, F)
        out = self.psi(phi).squeeze(1)  # (B,)
        if self.embed is not None:
            if y is None:
                raise ValueError("this discriminator is class-conditional: pass labels y")
            out = out + (self.embed(y.long()) * phi).sum(1)  # <embed(y), phi(x)>
        return out


def apply_spectral_norm(module: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Spectrally normalise every ``Linear``, ``Conv2d``, ``ConvTranspose2d`` and ``Embedding``
    weight inside ``module`` (in place; returns it). arXiv:1802.05957, Sec. 2.1."""
    kinds = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)
    for m in list(module.modules()):
        if isinstance(m, kinds):
            spectral_norm(m, n_power_iterations=n_power_iterations)
    return module


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """The modules' weights take no gradient inside (G's step through D): the graph is recorded
    without them, and the parameters that required grad before do so again afterwards."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
