"""The factorised space-time U-Net (arXiv:2204.03458, Sec. 3): its spatial layers are the image
U-Net's, its temporal layers start as the identity, and causal temporal attention lets no frame
see a later one. Full space-time attention (ViViT, arXiv:2103.15691) at chosen levels: every
position of a clip reaches every other, with axial rotary positions that are relative."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genzoo.nn.spacetime import (
    SpaceTimeAttention,
    SpaceTimeUNet,
    TemporalAttention,
    axial_rotary_tables,
)
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


@pytest.mark.parametrize("full", [(), (4,), (4, 8)])
def test_with_one_frame_the_space_time_unet_is_the_image_unet(full: tuple[int, ...]) -> None:
    image = _image_unet()
    video = SpaceTimeUNet(image, max_resolution=8, spacetime_resolutions=full)
    assert video.spatial is image  # the very same spatial layers, not a copy
    kinds = [type(m) for m in video.temporal]
    want = [SpaceTimeAttention if r in full else TemporalAttention for r in image.block_resolutions]
    assert kinds == want
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


def test_space_time_attention_reaches_every_position_of_its_clip_only() -> None:
    """A spike at one pixel of one frame (group norm left out) changes every pixel of every frame
    of its clip, where per-pixel temporal attention changes that pixel only, and nothing of the
    other clip; with ``causal=True`` only the spiked frame and later ones."""
    b, t, c, h, w = 2, 4, 32, 3, 4
    x = torch.randn(b * t, c, h, w, generator=torch.Generator().manual_seed(1))
    spiked = x.clone()
    spiked.view(b, t, c, h, w)[1, 2, :, 1, 3] += 5.0  # clip 1, frame 2, pixel (1, 3)
    for causal in (False, True):
        layer = SpaceTimeAttention(c, causal=causal)
        _randomize(layer, seed=2)
        layer.norm = nn.Identity()
        with torch.no_grad():
            diff = (layer(spiked, t) - layer(x, t)).view(b, t, c, h, w).abs().amax(2)
        expect = torch.zeros(b, t, h, w, dtype=torch.bool)
        expect[1, 2 if causal else 0 :] = True
        assert torch.equal(diff > 1e-6, expect)


def test_space_time_attention_is_softmax_attention_with_relative_axial_positions() -> None:
    """Parity with attention written out in float64 (RoFormer's rotation of consecutive pairs,
    angle = coordinate x frequency, the pairs split t / y / x), and the rotated scores of a
    constant query and key depend only on the offset between two positions."""
    b, t, c, h, w = 1, 3, 32, 4, 5
    layer = SpaceTimeAttention(c)
    _randomize(layer, seed=4)
    x = torch.randn(b * t, c, h, w, generator=torch.Generator().manual_seed(5))
    heads, hd = layer.heads, c // layer.heads  # 2 heads of 16: 8 pairs = 2 (t) + 3 (y) + 3 (x)
    pos = torch.tensor([(i, j, k) for i in range(t) for j in range(h) for k in range(w)])
    freq = [100.0 ** (-torch.arange(n, dtype=torch.float64) / n) for n in (2, 3, 3)]
    ang = torch.cat([pos[:, a, None].double() * f for a, f in enumerate(freq)], 1)  # (N, 8)
    cos, sin = axial_rotary_tables(hd, t, h, w)
    assert torch.allclose(cos.double(), ang.cos(), atol=1e-6)
    assert torch.allclose(sin.double(), ang.sin(), atol=1e-6)

    def rotate(z: torch.Tensor) -> torch.Tensor:  # (heads, N, hd)
        z1, z2 = z[..., 0::2], z[..., 1::2]
        return torch.stack((z1 * ang.cos() - z2 * ang.sin(), z1 * ang.sin() + z2 * ang.cos()), -1)

    with torch.no_grad():
        tok = layer.norm(x).double().permute(0, 2, 3, 1).reshape(t * h * w, c)  # (N, C)
        q, k, v = (tok @ layer.qkv.weight.double().T + layer.qkv.bias.double()).split(c, -1)
        q, k, v = (z.view(-1, heads, hd).transpose(0, 1) for z in (q, k, v))
        a = torch.softmax(rotate(q).flatten(-2) @ rotate(k).flatten(-2).transpose(1, 2) / 4, -1)
        o = (a @ v).transpose(0, 1).reshape(-1, c) @ layer.proj.weight.double().T
        want = (o + layer.proj.bias.double()).view(t, h, w, c).permute(0, 3, 1, 2)
        got = layer(x, t) - x
    assert torch.allclose(got.double(), want, atol=1e-4)

    u = torch.randn(1, hd, dtype=torch.float64).expand(len(pos), hd)
    s = rotate(u[None]).flatten(-2)[0] @ rotate(u[None]).flatten(-2)[0].T  # (N, N) scores
    idx = {tuple(p.tolist()): n for n, p in enumerate(pos)}
    for p1, p2 in [((0, 1, 1), (2, 2, 1)), ((1, 0, 2), (0, 2, 4))]:
        shifted = [tuple(a + d for a, d in zip(p, (0, 1, -1), strict=True)) for p in (p1, p2)]
        assert s[idx[p1], idx[p2]] != pytest.approx(s[idx[p1], idx[p1]])
        assert s[idx[p1], idx[p2]] == pytest.approx(s[idx[shifted[0]], idx[shifted[1]]])


def _conditioned(image: UNet, causal: bool = False) -> tuple[SpaceTimeUNet, SpaceTimeUNet]:
    """The same trained (random) space-time U-Net without and with ``temporal_cond`` and
    ``frame_embedding``: the second holds the first's weights, its new layers at their start."""
    off = SpaceTimeUNet(image, causal=causal, max_resolution=8)
    _randomize(off.temporal, seed=3)
    on = SpaceTimeUNet(image, causal=causal, max_resolution=8, temporal_cond=True,
                       frame_embedding=True)  # fmt: skip
    missing, unexpected = on.load_state_dict(off.state_dict(), strict=False)
    assert not unexpected
    assert set(missing) == {k for k in on.state_dict() if ".ada." in k or "frame_emb" in k}
    assert len(missing) == 2 * len(on.temporal) + 1  # ada weight + bias per layer, the table
    return off, on


def test_conditioned_temporal_layers_start_as_the_unconditioned_ones() -> None:
    """adaLN (DiT, arXiv:2212.09748) of the temporal layers and the frame embedding start at
    zero: with a trained model's weights the output is that model's, exactly, with or without a
    pooled caption; with one frame, freshly built, it is still the image U-Net. Once they are
    trained (random here), the per-frame embedding changes the output."""
    image = _image_unet()
    off, on = _conditioned(image)
    x, c, e = torch.randn(2, 5, 2, 8, 8), torch.randn(2), torch.randn(2, 64)
    with torch.no_grad():
        assert torch.equal(on(x, c), off(x, c))
        assert torch.equal(on(x, c, extra_emb=e), off(x, c, extra_emb=e))
        fresh = SpaceTimeUNet(image, max_resolution=8, temporal_cond=True, frame_embedding=True)
        assert torch.equal(fresh(x[:, :1], c, extra_emb=e)[:, 0], image(x[:, 0], c, extra_emb=e))
        for m in on.temporal:
            _randomize(m.ada, seed=4)
        assert not torch.allclose(on(x, c, extra_emb=e), off(x, c, extra_emb=e), atol=1e-3)


def test_adaln_modulates_the_temporal_attention_by_its_frame_embedding() -> None:
    """Closed form: ``h + (1 + g) A((1 + s) norm(h) + b)`` with ``(s, b, g)`` the linear map of
    each frame's embedding and ``A`` the unconditioned layer's attention and projection; two
    embeddings (e.g. two captions), two outputs."""
    b, t, c = 2, 4, 16
    layer = TemporalAttention(c, emb_dim=8)
    _randomize(layer, seed=9)
    h, emb = torch.randn(b * t, c, 3, 3), torch.randn(b * t, 8)
    plain = TemporalAttention(c)
    plain.load_state_dict({k: v for k, v in layer.state_dict().items() if "ada" not in k})
    with torch.no_grad():
        s, sh, g = layer.ada(emb).chunk(3, dim=1)

        class Modulated(nn.Module):  # the group norm, then (1 + s) . + b
            def forward(self, z: torch.Tensor) -> torch.Tensor:
                return layer.norm(z) * (1 + s[:, :, None, None]) + sh[:, :, None, None]

        plain.norm = Modulated()
        want = h + (1 + g[:, :, None, None]) * (plain(h, t) - h)
        got = layer(h, t, emb)
        assert torch.allclose(got, want, atol=1e-5)
        assert not torch.allclose(layer(h, t, torch.randn(b * t, 8)), got, atol=1e-3)


def test_frame_embedding_is_the_image_unet_given_each_frames_embedding() -> None:
    """With the temporal layers at their identity start, frame ``t`` of the output is the image
    U-Net on frame ``t`` with ``e_t`` (the learned frame-index row) added to its embedding."""
    image = _image_unet()
    video = SpaceTimeUNet(image, max_resolution=8, frame_embedding=True)
    assert video.frame_emb is not None
    _randomize(video.frame_emb, seed=6)
    x, c, e = torch.randn(2, 3, 2, 8, 8), torch.randn(2), torch.randn(2, 64)
    with torch.no_grad():
        out = video(x, c, extra_emb=e)
        for t in range(3):
            want = image(x[:, t], c, extra_emb=e + video.frame_emb.weight[t])
            assert torch.allclose(out[:, t], want, atol=1e-5)
        assert not torch.allclose(out[:, 0], image(x[:, 0], c, extra_emb=e), atol=1e-3)


def test_conditioned_causal_temporal_layers_see_no_future_frame() -> None:
    """adaLN from per-frame embeddings (with the frame index) keeps causality: a change to frame
    4 leaves frames 0-3 as they were."""
    _, on = _conditioned(_image_unet(), causal=True)
    _randomize(on.temporal, seed=5)
    assert on.frame_emb is not None
    _randomize(on.frame_emb, seed=8)
    x, c, e = torch.randn(2, 6, 2, 8, 8), torch.randn(2), torch.randn(2, 64)
    y = x.clone()
    y[:, 4] += torch.randn(2, 2, 8, 8)
    with torch.no_grad():
        a, b = on(x, c, extra_emb=e), on(y, c, extra_emb=e)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-3)
