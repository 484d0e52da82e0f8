"""Neural style transfer's pieces: Gram matrices, AdaIN, style/content losses, feature networks.

- :func:`gram_matrix`: ``G = F F^T / (H W)`` of a feature map ``F`` reshaped to ``(C, HW)``
  (Gatys, Ecker & Bethge, "A Neural Algorithm of Artistic Style", arXiv:1508.06576, Eq. (3),
  divided by the number of positions so that sizes compare).
- :func:`adain`: ``sigma(y) (x - mu(x)) / sigma(x) + mu(y)`` per example and channel (Huang &
  Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization",
  arXiv:1703.06868, Eq. (8)).
- :func:`gram_style_loss`, :func:`content_loss`, :func:`stats_style_loss`: the losses of both
  papers over lists of feature maps.
- :class:`FeatureNet`: any ``nn.Sequential`` of convolutions with the indices of the layers whose
  outputs are the style features (the last one is also the content feature); it converts the
  channel count of its input (grey into a colour net: repeated; colour into a grey net: each
  channel passes alone and the features are concatenated, so the colour statistics still count)
  and maps model-space images ([-1, 1]) to the net's input normalisation.
- :func:`vgg19_features` (the layout of torchvision's ``vgg19().features``, for user weights)
  and :func:`small_cnn_body` (the layout of genzoo's feature classifier,
  :mod:`genzoo.metrics.classifier`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# VGG19's taps relu1_1, relu2_1, relu3_1, relu4_1 (indices in torchvision's vgg19().features)
VGG19_TAPS = (1, 6, 11, 20)
SMALL_CNN_TAPS = (1, 6, 11)  # the classifier's ReLU after its 1st, 3rd and 5th convolution
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def gram_matrix(f: Tensor) -> Tensor:
    """``(B, C, H, W) -> (B, C, C)``: ``F F^T / (H W)`` (arXiv:1508.06576, Eq. (3))."""
    b, c, h, w = f.shape
    flat = f.reshape(b, c, h * w)  # (B, C, H, W) -> (B, C, HW)
    return flat @ flat.transpose(1, 2) / (h * w)  # Eq. (3), per position


def channel_stats(f: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per example and channel mean and std over positions, each ``(B, C, 1, 1)``
    (arXiv:1703.06868, Eqs. (5) and (6); the biased variance plus ``eps``)."""
    mu = f.mean(dim=(2, 3), keepdim=True)  # Eq. (5)
    sigma = (f.var(dim=(2, 3), keepdim=True, unbiased=False) + eps).sqrt()  # Eq. (6)
    return mu, sigma


def adain(x: Tensor, y: Tensor, eps: float = 1e-5) -> Tensor:
    """``AdaIN(x, y) = sigma(y) (x - mu(x)) / sigma(x) + mu(y)`` (arXiv:1703.06868, Eq. (8))."""
    mu_x, sd_x = channel_stats(x, eps)
    mu_y, sd_y = channel_stats(y, eps)
    return sd_y * (x - mu_x) / sd_x + mu_y  # Eq. (8)


def gram_style_loss(feats: Sequence[Tensor], targets: Sequence[Tensor]) -> Tensor:
    """Gatys' style loss per example ``(B,)``: ``sum_l w_l ||G(F_l) - A_l||_F^2`` over layers
    (arXiv:1508.06576, Eqs. (4)-(5)), with ``A_l`` the style's Gram matrices and the layer
    weights ``w_l = 1 / (L ||A_l||_F^2)``, so that every layer counts alike whatever its scale."""
    total = torch.zeros(feats[0].shape[0], device=feats[0].device)
    for f, a in zip(feats, targets, strict=True):
        g = gram_matrix(f)  # (B, C, C)
        diff = (g - a).pow(2).sum(dim=(1, 2))  # Eq. (4)
        total = total + diff / (a.pow(2).sum(dim=(1, 2)).clamp_min(1e-12) * len(feats))  # Eq. (5)
    return total


def content_loss(f: Tensor, target: Tensor) -> Tensor:
    """Content loss per example ``(B,)``: ``||F - P||^2 / ||P||^2`` at the content layer
    (arXiv:1508.06576, Eq. (1), relative so that it reads as the content-feature error)."""
    num = (f - target).pow(2).flatten(1).sum(1)  # Eq. (1)
    return num / target.pow(2).flatten(1).sum(1).clamp_min(1e-12)


def stats_style_loss(feats: Sequence[Tensor], targets: Sequence[Tensor]) -> Tensor:
    """AdaIN's style loss per example ``(B,)``: ``sum_l |mu(phi_l(g)) - mu(phi_l(s))|_2 +
    |sigma(phi_l(g)) - sigma(phi_l(s))|_2`` (arXiv:1703.06868, Eq. (13))."""
    total = torch.zeros(feats[0].shape[0], device=feats[0].device)
    for f, t in zip(feats, targets, strict=True):
        mu_f, sd_f = channel_stats(f)
        mu_t, sd_t = channel_stats(t)
        total = total + (mu_f - mu_t).flatten(1).norm(dim=1) + (sd_f - sd_t).flatten(1).norm(dim=1)
    return total  # Eq. (13)


def tap_features(body: nn.Sequential, x: Tensor, taps: Sequence[int]) -> list[Tensor]:
    """The outputs of ``body``'s layers at indices ``taps`` (it stops after the last one)."""
    out = []
    for i, layer in enumerate(body):
        x = layer(x)
        if i in taps:
            out.append(x)
            if i == max(taps):
                break
    return out


class FeatureNet(nn.Module):
    """Features at ``taps`` of ``body`` for model-space images: ``x -> [F_1, ..., F_L]``.

    ``in_channels`` is what ``body`` takes; ``mean``/``std`` (per channel, for inputs in [0, 1])
    give its input normalisation, or ``None`` for a net that takes model space [-1, 1] directly
    (genzoo's own nets). The weights are frozen (no gradient), the net is in eval mode.
    """

    def __init__(
        self,
        body: nn.Sequential,
        taps: Sequence[int],
        in_channels: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        name: str = "features",
    ) -> None:
        super().__init__()
        if not taps or max(taps) >= len(body):
            raise ValueError(f"taps {tuple(taps)} must index layers of a body of {len(body)}")
        self.body = body[: max(taps) + 1]
        self.taps = tuple(taps)
        self.in_channels = in_channels
        self.name = name
        self.normalise = mean is not None
        m = torch.tensor(mean or [0.0] * in_channels).view(1, -1, 1, 1)
        s = torch.tensor(std or [1.0] * in_channels).view(1, -1, 1, 1)
        self.register_buffer("mean", m, persistent=False)
        self.register_buffer("std", s, persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FeatureNet:  # a fixed feature extractor stays in eval
        return super().train(False)

    def _run(self, x: Tensor) -> list[Tensor]:
        if self.normalise:
            x = ((x + 1.0) / 2.0 - self.mean) / self.std  # model space -> the net's input
        return tap_features(self.body, x, self.taps)

    def forward(self, x: Tensor) -> list[Tensor]:
        c = x.shape[1]
        if c == self.in_channels:
            return self._run(x)
        if c == 1:
            return self._run(x.expand(-1, self.in_channels, -1, -1))  # grey into a colour net
        if self.in_channels == 1:
            b = x.shape[0]
            feats = self._run(x.reshape(b * c, 1, *x.shape[2:]))  # (B, C, H, W) -> (B C, 1, H, W)
            return [f.reshape(b, c * f.shape[1], *f.shape[2:]) for f in feats]  # (B, C F, h, w)
        raise ValueError(f"{self.name} takes {self.in_channels}-channel images, got {c} channels")


def vgg19_features() -> nn.Sequential:
    """VGG19's convolutional part (Simonyan & Zisserman, arXiv:1409.1556, configuration E) with
    the layer indices of torchvision's ``vgg19().features`` (so its state dict loads as is)."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M"]
    cfg += [512, 512, 512, 512, "M"]
    layers: list[nn.Module] = []
    c = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            c = int(v)
    return nn.Sequential(*layers)


def small_cnn_body(in_channels: int, width: int) -> nn.Sequential:
    """The convolutional body of genzoo's feature classifier (two 3x3-conv + ReLU pairs with a
    2x2 max-pool after each, widths ``w, 2w``, one more 3x3 conv to ``4w`` + ReLU)."""
    w = width
    return nn.Sequential(
        nn.Conv2d(in_channels, w, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(w, w, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(w, 2 * w, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(2 * w, 2 * w, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(2 * w, 4 * w, 3, padding=1),
        nn.ReLU(),
    )


class AdaINDecoder(nn.Module):
    """Mirror of :func:`small_cnn_body` up to its last tap: ``(B, 4w, h, w) -> (B, C, H, W)``,
    nearest upsampling back to the stored sizes, reflection padding (arXiv:1703.06868, Sec. 6.1:
    the decoder mirrors the encoder, no normalisation layers) and a linear output as in the paper
    (callers clamp to the model range). ``decoder_width`` (default: ``width``, the mirror) sets
    the decoder's own channels ``2d, 2d, d, d`` while its input stays ``4 width``; with
    ``decoder_width = 2 width`` the first convolution is as wide as its input.

    ``level`` is the encoder tap the decoder starts from: 3 (the default) is relu3, ``4 width``
    channels at 1/4 of the image size; 2 is relu2, ``2 width`` channels at 1/2 of the size: the
    decoder then has no ``stage3`` and its ``stage2`` takes the ``2 width`` channels (the same
    layers after it).

    ``noise`` (default 0: none) concatenates that many channels of standard normal noise to the
    input of every decoder stage (at 1/4, 1/2 and the full size), as the generator of Texture
    Networks (Ulyanov et al., arXiv:1603.03417) takes noise at every scale: a flat content region
    (a digit's black background) gives AdaIN's output no spatial variation of its own, and the
    noise is a source to paint a texture from. Give ``generator`` for a reproducible output.

    ``multi_level`` (``level`` 3 only; default off): the decoder also takes AdaIN's output at
    relu2 (``t2``, ``2 width`` channels), concatenated to its upsampled ``stage3`` output before
    ``stage2``: statistics injected at two levels, a variant, not the paper's decoder.

    ``tanh`` (default off: the paper's decoder ends with its last convolution) passes the output
    through tanh, so the image lies in (-1, 1) by construction and a loss on it sees the image as
    it is shown, not one that is clamped afterwards; Johnson et al.'s feed-forward style network
    bounds its output the same way (arXiv:1603.08155, a scaled tanh)."""

    def __init__(
        self,
        out_channels: int,
        width: int,
        size: tuple[int, int],
        decoder_width: int | None = None,
        level: int = 3,
        noise: int = 0,
        multi_level: bool = False,
        tanh: bool = False,
    ) -> None:
        super().__init__()
        if level not in (2, 3):
            raise ValueError(f"level = {level!r} must be 2 (relu2) or 3 (relu3)")
        if multi_level and level != 3:
            raise ValueError("multi_level takes relu2's AdaIN beside relu3's: it needs level 3")
        w = width if decoder_width is None else decoder_width
        h0, w0 = size
        self.sizes = [(h0, w0), ((h0 + 1) // 2, (w0 + 1) // 2)]  # after pool 0, before pool 1

        def conv(a: int, b: int) -> nn.Conv2d:
            return nn.Conv2d(a, b, 3, padding=1, padding_mode="reflect")

        self.level, self.noise, self.multi_level, self.tanh = level, noise, multi_level, tanh
        k = noise
        if level == 3:
            self.stage3 = nn.Sequential(conv(4 * width + k, 2 * w), nn.ReLU())
        first = 2 * w if level == 3 else 2 * width  # relu2 feeds stage2 directly
        first += 2 * width if multi_level else 0  # relu2's AdaIN beside the upsampled stage3
        self.stage2 = nn.Sequential(conv(first + k, 2 * w), nn.ReLU(), conv(2 * w, w), nn.ReLU())
        self.stage1 = nn.Sequential(conv(w + k, w), nn.ReLU(), conv(w, out_channels))

    def _with_noise(self, h: Tensor, generator: torch.Generator | None) -> Tensor:
        if not self.noise:
            return h
        b, _, hh, ww = h.shape
        dev = h.device if generator is None else generator.device  # draw where the generator is
        z = torch.randn(b, self.noise, hh, ww, generator=generator, device=dev, dtype=h.dtype)
        z = z.to(h.device)  # (B, noise, h, w)
        return torch.cat([h, z], dim=1)  # (B, C + noise, h, w)

    def forward(
        self, t: Tensor, generator: torch.Generator | None = None, t2: Tensor | None = None
    ) -> Tensor:
        """``t``: AdaIN's output at the decoder's level; ``t2``: at relu2 (``multi_level``)."""
        if self.multi_level != (t2 is not None):
            raise ValueError("t2 (AdaIN at relu2) is given exactly when multi_level is on")
        h = t
        if self.level == 3:
            h = self.stage3(self._with_noise(t, generator))
            h = F.interpolate(h, size=self.sizes[1], mode="nearest")
            if t2 is not None:
                h = torch.cat([h, t2], dim=1)  # (B, 2d + 2w, H / 2, W / 2)
        h = F.interpolate(
            self.stage2(self._with_noise(h, generator)), size=self.sizes[0], mode="nearest"
        )
        out = self.stage1(self._with_noise(h, generator))
        return torch.tanh(out) if self.tanh else out  # ``tanh``: the image inside (-1, 1)
