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


def test_temporal_attention_is_attention_over_the_frames_of_each_pixel_of_each_clip() -> None:
    """Parity with a loop written out per (clip, pixel): softmax(q k^T / sqrt(d)) v over the T
    frames with RoFormer's rotation of q and k by the frame index, then the output projection;
    and a spike at one pixel of one frame (the group norm left out, since it pools a frame's
    pixels) reaches the other frames of its clip at that pixel only, no other clip."""
    torch.manual_seed(0)
    b, t, c, h, w = 2, 5, 32, 3, 4
    layer = TemporalAttention(c)
    _randomize(layer, seed=7)
    x = torch.randn(b * t, c, h, w)
    tok = layer.norm(x).view(b, t, c, h, w)
    heads, hd = layer.heads, c // layer.heads
    ang = torch.arange(t, dtype=torch.float64)[:, None] * 10000.0 ** (
        -torch.arange(0, hd, 2, dtype=torch.float64) / hd
    )  # (T, hd/2): the angle m theta_i of frame m
    cos, sin = ang.cos().float(), ang.sin().float()

    def rotate(z: torch.Tensor) -> torch.Tensor:  # (heads, T, hd), consecutive pairs
        z1, z2 = z[..., 0::2], z[..., 1::2]
        return torch.stack((z1 * cos - z2 * sin, z1 * sin + z2 * cos), -1).flatten(-2)

    want = torch.empty(b, t, c, h, w)
    with torch.no_grad():
        for i in range(b):
            for yy in range(h):
                for xx in range(w):
                    q, k, v = layer.qkv(tok[i, :, :, yy, xx]).split(c, -1)  # 3 x (T, C)
                    q, k, v = (z.view(t, heads, hd).transpose(0, 1) for z in (q, k, v))
                    a = torch.softmax(rotate(q) @ rotate(k).transpose(1, 2) / hd**0.5, -1)
                    o = (a @ v).transpose(0, 1).reshape(t, c)  # (T, C)
                    want[i, :, :, yy, xx] = layer.proj(o)
        got = layer(x, t).view(b, t, c, h, w) - x.view(b, t, c, h, w)
    assert torch.allclose(got, want, atol=1e-5)

    layer.norm = nn.Identity()
    spiked = x.clone()
    spiked.view(b, t, c, h, w)[1, 2, :, 1, 3] += 5.0  # clip 1, frame 2, pixel (1, 3)
    with torch.no_grad():
        changed = (layer(spiked, t) - layer(x, t)).view(b, t, c, h, w).abs().amax(2) > 1e-6
    expect = torch.zeros(b, t, h, w, dtype=torch.bool)
    expect[1, :, 1, 3] = True  # every frame of clip 1 at that pixel, nothing else
    assert torch.equal(changed, expect)
