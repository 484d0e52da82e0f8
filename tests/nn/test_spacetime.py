"""The factorised space-time U-Net (arXiv:2204.03458, Sec. 3): its spatial layers are the image
U-Net's, its temporal layers start as the identity, and causal temporal attention lets no frame
see a later one."""

from __future__ import annotations

import torch
from torch import nn

from genzoo.nn.spacetime import SpaceTimeUNet, TemporalAttention
from genzoo.nn.unet import UNet


def _randomize(module: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def _image_unet() -> UNet:
    torch.manual_seed(0)
    net = UNet(2, 8, channels=16, channel_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,))
    _randomize(net)  # every weight random, the zero-initialised output layers included
    return net


def test_with_one_frame_the_space_time_unet_is_the_image_unet() -> None:
    image = _image_unet()
    video = SpaceTimeUNet(image, max_resolution=8)
    assert video.spatial is image  # the very same spatial layers, not a copy
    assert sum(isinstance(m, TemporalAttention) for m in video.temporal) == len(
        image.block_channels
    )
    x, c = torch.randn(3, 2, 8, 8), torch.randn(3)
    assert torch.equal(video(x[:, None], c)[:, 0], image(x, c))


def test_at_initialisation_every_frame_is_the_image_unet_on_that_frame() -> None:
    image = _image_unet()
    video = SpaceTimeUNet(image, max_resolution=8)
    x, c = torch.randn(2, 5, 2, 8, 8), torch.randn(2)
    out = video(x, c)
    for t in range(5):
        assert torch.allclose(out[:, t], image(x[:, t], c), atol=1e-5)
    # once the temporal layers are trained (random here), frames do mix
    _randomize(video.temporal, seed=3)
    assert not torch.allclose(video(x, c)[:, 0], image(x[:, 0], c), atol=1e-3)


def test_causal_temporal_layers_see_no_future_frame() -> None:
    def outputs(causal: bool) -> tuple[torch.Tensor, torch.Tensor]:
        video = SpaceTimeUNet(_image_unet(), causal=causal, max_resolution=8)
        _randomize(video.temporal, seed=5)
        x, c = torch.randn(2, 6, 2, 8, 8), torch.randn(2)
        y = x.clone()
        y[:, 4] += torch.randn(2, 2, 8, 8)  # perturb frame t + 1 = 4
        return video(x, c), video(y, c)

    a, b = outputs(causal=True)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)  # frames <= 3 unchanged
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-3)  # frame 4 and later do change
    a, b = outputs(causal=False)
    assert not torch.allclose(a[:, :4], b[:, :4], atol=1e-3)  # full attention sees the future
