"""The U-Net backbone: adaptive group norm, class conditioning and cross-attention behave as their
formulas say (arXiv:2105.05233 Sec. 3; arXiv:2112.10752 Sec. 3.3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genzoo.nn.unet import CrossAttnBlock, ResBlock, UNet


def _randomize(module: nn.Module, seed: int = 0) -> None:
    """Give every parameter (including the zero-initialised output layers) random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def test_adaptive_group_norm_matches_its_formula() -> None:
    torch.manual_seed(0)
    blk = ResBlock(8, 16, emb_dim=12, adaptive_norm=True)
    _randomize(blk)
    x, emb = torch.randn(3, 8, 5, 5), torch.randn(3, 12)
    # independent computation of AdaGN(h, y) = (1 + y_s) GroupNorm(h) + y_b
    h = blk.conv1(F.silu(F.group_norm(x, blk.norm1.num_groups, blk.norm1.weight, blk.norm1.bias)))
    ys, yb = (emb @ blk.emb.weight.T + blk.emb.bias).chunk(2, dim=1)
    gn = F.group_norm(h, blk.norm2.num_groups, blk.norm2.weight, blk.norm2.bias)
    h = gn * (1 + ys[:, :, None, None]) + yb[:, :, None, None]
    ref = blk.skip(x) + blk.conv2(F.silu(h))
    assert torch.allclose(blk(x, emb), ref, atol=1e-5)
    # additive conditioning (DDPM) adds the embedding before the second group norm; with more
    # than one channel per group the norm does not cancel it, so the embedding still matters
    add = ResBlock(8, 16, emb_dim=12, adaptive_norm=False)
    _randomize(add, 1)
    assert not torch.allclose(add(x, emb), add(x, emb.flip(0)), atol=1e-4)


@pytest.mark.parametrize("adaptive_norm", [False, True])
def test_unet_is_class_conditional_and_the_default_is_the_null_class(adaptive_norm: bool) -> None:
    net = UNet(1, 8, channels=16, channel_mult=(1, 2), n_classes=10, adaptive_norm=adaptive_norm)
    _randomize(net)
    x, c = torch.randn(4, 1, 8, 8), torch.full((4,), 0.3)
    y = torch.tensor([0, 1, 2, 3])
    out = net(x, c, y)
    assert out.shape == x.shape
    assert not torch.allclose(out, net(x, c, (y + 1) % 10), atol=1e-4)  # the label matters
    assert torch.equal(net(x, c), net(x, c, torch.full((4,), 10)))  # None = the null class
    # each example depends on its own label only
    y2 = y.clone()
    y2[0] = 9
    assert torch.allclose(net(x, c, y2)[1:], out[1:], atol=1e-5)


def _xattn(seed: int = 0) -> tuple[CrossAttnBlock, torch.Tensor, torch.Tensor, torch.Tensor]:
    blk = CrossAttnBlock(32, context_dim=12, head_dim=16)
    _randomize(blk, seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(3, 32, 4, 4, generator=g)
    ctx = torch.randn(3, 5, 12, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    return blk, x, ctx, mask


def test_cross_attention_ignores_padding_and_token_order() -> None:
    blk, x, ctx, mask = _xattn()
    out = blk(x, ctx, mask)
    # padded tokens carry no weight: changing them changes nothing
    junk = torch.where(mask[..., None], ctx, torch.randn_like(ctx) * 100)
    assert torch.allclose(blk(x, junk, mask), out, atol=1e-5)
    # attention is a function of the set of tokens: permuting tokens (and mask) changes nothing
    perm = torch.tensor([4, 2, 0, 3, 1])
    assert torch.allclose(blk(x, ctx[:, perm], mask[:, perm]), out, atol=1e-5)
    # ... but a real token does matter
    ctx2 = ctx.clone()
    ctx2[2, 0] += 1.0
    assert not torch.allclose(blk(x, ctx2, mask)[2], out[2], atol=1e-4)
    assert torch.allclose(blk(x, ctx2, mask)[:2], out[:2], atol=1e-6)  # others untouched


def test_cross_attention_matches_a_reference_softmax_and_empty_rows_are_identity() -> None:
    blk, x, ctx, mask = _xattn(3)
    b, c, h, w = x.shape
    nh, hd = blk.heads, c // blk.heads
    q = blk.q(F.group_norm(x, blk.norm.num_groups, blk.norm.weight, blk.norm.bias))
    q = q.reshape(b, nh, hd, h * w).transpose(-1, -2)
    k, v = (ctx @ blk.kv.weight.T + blk.kv.bias).reshape(b, -1, 2, nh, hd).unbind(2)
    k, v = k.transpose(1, 2), v.transpose(1, 2)  # (B, nh, L, hd)
    logits = q @ k.transpose(-1, -2) / hd**0.5
    logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
    att = logits.softmax(-1) @ v  # softmax(Q K^T / sqrt(d)) V
    ref = x + blk.proj(att.transpose(-1, -2).reshape(b, c, h, w))
    assert torch.allclose(blk(x, ctx, mask), ref, atol=1e-4)
    empty = torch.zeros_like(mask)
    assert torch.equal(blk(x, ctx, empty), x)  # a dropped caption: no contribution, no NaN


def test_unet_with_cross_attention_on_odd_sizes_and_without_context() -> None:
    net = UNet(3, 7, channels=16, channel_mult=(1, 2), attn_resolutions=(7, 4), context_dim=12)
    _randomize(net)
    x, c = torch.randn(2, 3, 7, 7), torch.full((2,), 1.0)
    ctx, mask = torch.randn(2, 4, 12), torch.ones(2, 4, dtype=torch.bool)
    out = net(x, c, context=ctx, context_mask=mask)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.allclose(out, net(x, c), atol=1e-4)  # the context matters
    # no context and an all-padded context are the same (unconditional) network
    assert torch.allclose(net(x, c), net(x, c, context=ctx, context_mask=~mask), atol=1e-5)
    n_xattn = sum(isinstance(m, CrossAttnBlock) for m in net.modules())
    # 2 blocks per level down, 3 up, at both levels (7x7 and 4x4), and the middle
    assert n_xattn == 2 + 2 + 1 + 3 + 3


def test_coordinate_channels_hold_each_pixels_position() -> None:
    """With ``coord_channels`` the first convolution sees two extra channels, x (left -1 to right
    +1) and y (top -1 to bottom +1): on a constant image its interior outputs then vary with the
    position (an affine function of x and y), while without them they are all equal."""
    torch.manual_seed(0)
    seen = {}
    for coords in (False, True):
        net = UNet(3, 12, channels=8, channel_mult=(1,), num_res_blocks=1, coord_channels=coords)
        net.conv_in.register_forward_hook(lambda m, i, o, c=coords: seen.update({c: (i[0], o)}))
        net(torch.full((2, 3, 12, 12), 0.3), torch.zeros(2))
    inp, out = seen[True]
    assert inp.shape == (2, 5, 12, 12)
    ramp = torch.linspace(-1, 1, 12)
    torch.testing.assert_close(inp[0, 3], ramp.expand(12, 12))  # x along the width
    torch.testing.assert_close(inp[0, 4], ramp[:, None].expand(12, 12))  # y along the height
    flat = seen[False][1][:, :, 1:-1, 1:-1]
    torch.testing.assert_close(flat, flat[:, :, :1, :1].expand_as(flat))
    inner = out[0, :, 1:-1, 1:-1]  # (C, 10, 10): interior, so no padding effect
    assert inner.std(dim=(1, 2)).min() > 1e-3
    dx = inner[:, :, 1:] - inner[:, :, :-1]  # constant steps: affine in x and y
    torch.testing.assert_close(dx, dx[:, :1, :1].expand_as(dx), atol=1e-5, rtol=0)
