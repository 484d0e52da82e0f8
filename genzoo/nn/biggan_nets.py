"""BigGAN's building blocks: conditional batch norm, residual up/down blocks, small nets.

Brock, Donahue & Simonyan, "Large Scale GAN Training for High Fidelity Natural Image Synthesis",
arXiv:1809.11096 (Sec. 3 and Appendix B, Fig. 15): the generator is a stack of residual blocks
that upsample, each with *class-conditional batch norm* whose gains and biases are linear
projections of a conditioning vector (a shared class embedding concatenated with this block's
chunk of ``z``: the *hierarchical latent*); the discriminator is a stack of residual blocks that
downsample, followed by ReLU and global sum pooling to the features ``phi(x)``, read by the
projection head of :class:`genzoo.nn.gan_nets.Discriminator` (Miyato & Koyama,
arXiv:1802.05637). Building blocks only: no losses, no training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.nn.gan_nets import dcgan_sizes


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose affine parameters depend on a conditioning vector ``c`` (B, cond_dim).

    ``y = (1 + W_gamma c) * BN(x) + W_beta c``: BigGAN's class-conditional BN with gains and biases
    projected from the shared embedding (arXiv:1809.11096, Sec. 3; de Vries et al.,
    arXiv:1707.00683). The gain is parametrised around 1 so that a zero projection is plain BN.
    """

    def __init__(self, channels: int, cond_dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False, eps=eps)
        self.gain = nn.Linear(cond_dim, channels, bias=False)
        self.bias = nn.Linear(cond_dim, channels, bias=False)

    def affine(self, c: Tensor) -> tuple[Tensor, Tensor]:
        """``(gamma, beta)`` of conditioning vectors ``c``, each ``(B, channels)``."""
        return 1.0 + self.gain(c), self.bias(c)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        gamma, beta = self.affine(c)
        return self.bn(x) * gamma[:, :, None, None] + beta[:, :, None, None]  # (B, C, H, W)


class GBlock(nn.Module):
    """Generator residual block (Fig. 15b): CBN, ReLU, upsample, 3x3 conv, CBN, ReLU, 3x3 conv;
    the shortcut upsamples and applies a 1x1 conv. Upsampling is nearest-neighbour to ``size``."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = size
        self.bn1 = ConditionalBatchNorm2d(c_in, cond_dim)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.bn2 = ConditionalBatchNorm2d(c_out, cond_dim)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), size=self.size, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.skip(F.interpolate(x, size=self.size, mode="nearest"))


class DBlock(nn.Module):
    """Discriminator residual block (Fig. 15c): (ReLU), 3x3 conv, ReLU, 3x3 conv, 2x2 average
    pool (ceil mode, so odd sides halve like :func:`dcgan_sizes`); the shortcut is a 1x1 conv and
    the same pooling. The first block takes no ReLU on its input (the image)."""

    def __init__(self, c_in: int, c_out: int, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    @staticmethod
    def _pool(x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2, ceil_mode=True, count_include_pad=False)

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        return h + self._pool(self.skip(x))


class BigGANGenerator(nn.Module):
    """``G(z, y)``: ``z`` is split into ``len(blocks) + 1`` chunks (hierarchical latent); the
    first is projected to the smallest map, each block's CBN sees ``[embed(y), z_i]``.

    Sizes follow :func:`dcgan_sizes` backwards (``8x8: 2 -> 4 -> 8``, ``28x28: 4 -> 7 -> 14 ->
    28``); channels go from ``width * 2^(n-1)`` down to ``width``; the output is BN, ReLU, a 3x3
    conv and tanh (model space [-1, 1]).
    """

    def __init__(
        self,
        latent_dim: int,
        n_classes: int,
        embed_dim: int,
        out_ch: int,
        size: tuple[int, int],
        width: int,
    ) -> None:
        super().__init__()
        sizes = dcgan_sizes(size)
        n = len(sizes) - 1
        if latent_dim < n + 1:
            raise ValueError(f"latent_dim must be at least {n + 1} to split z over {n} blocks")
        chunk = latent_dim // (n + 1)
        self.chunks = [latent_dim - n * chunk] + [chunk] * n  # the remainder goes to the first
        self.embed = nn.Embedding(n_classes, embed_dim)  # the shared class embedding
        chans = [width * 2**i for i in range(n)]  # D's widths; G walks them backwards
        h, w = sizes[-1]
        self.base = (chans[-1], h, w)
        self.linear = nn.Linear(self.chunks[0], chans[-1] * h * w)
        blocks = []
        c_in = chans[-1]
        for i in range(n - 1, -1, -1):
            blocks.append(GBlock(c_in, chans[i], embed_dim + chunk, sizes[i]))
            c_in = chans[i]
        self.blocks = nn.ModuleList(blocks)
        self.out_bn = nn.BatchNorm2d(c_in)
        self.out_conv = nn.Conv2d(c_in, out_ch, 3, padding=1)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        zs = torch.split(z, self.chunks, dim=1)  # (B, latent) -> [(B, chunk_0), (B, chunk), ...]
        e = self.embed(y.long())  # (B, embed_dim)
        h = self.linear(zs[0]).view(z.shape[0], *self.base)  # (B, C * h * w) -> (B, C, h, w)
        for block, zi in zip(self.blocks, zs[1:], strict=True):
            h = block(h, torch.cat([e, zi], dim=1))  # CBN conditioning (B, embed_dim + chunk)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


def biggan_discriminator_body(
    in_ch: int, size: tuple[int, int], width: int
) -> tuple[nn.Module, int]:
    """D's features ``phi``: residual down blocks (``width * 2^i`` channels), ReLU and global sum
    pooling, ``(B, C, H, W) -> (B, F)``; returns the body and ``F``."""
    n = len(dcgan_sizes(size)) - 1
    chans: Sequence[int] = [width * 2**i for i in range(n)]
    layers: list[nn.Module] = []
    c = in_ch
    for i, c_out in enumerate(chans):
        layers.append(DBlock(c, c_out, first=i == 0))
        c = c_out
    layers.append(_ReLUSumPool())
    return nn.Sequential(*layers), c


class _ReLUSumPool(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x).sum(dim=(2, 3))  # (B, C, h, w) -> (B, C)
