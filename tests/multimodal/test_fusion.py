"""Encoders and fusion modules: masking, pooling and the structure each fusion promises."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genzoo.nn.encoders import ImageEncoder, ImageFeatures, TextEncoder, TextFeatures
from genzoo.nn.fusion import CrossAttention, EarlyFusion, LateFusion, MiddleFusion

V, L = 40, 12


def _tokens(lengths: list[int], pad_fill: int = 0, total: int = L) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    out = torch.full((len(lengths), total), pad_fill, dtype=torch.long)
    for i, n in enumerate(lengths):
        out[i, :n] = torch.randint(3, V, (n,), generator=g)
        out[i, 0], out[i, n - 1] = 1, 2  # [BOS] ... [EOS]
    return out


def _text_encoder() -> TextEncoder:
    torch.manual_seed(0)
    return TextEncoder(V, 16, width=32, n_layer=2, n_head=4).eval()


def test_text_encoder_mask_pool_and_padding() -> None:
    enc = _text_encoder()
    tok = _tokens([5, 9, 12])
    out = enc(tok)
    assert out.tokens.shape == (3, L, 32) and out.pooled.shape == (3, 32)
    assert out.mask.tolist() == (tok != 0).tolist()
    for i, n in enumerate([5, 9, 12]):
        assert torch.equal(out.pooled[i], out.tokens[i, n - 1])  # the [EOS] feature
    # causal attention: what lies in the padding never changes a real token's feature
    other = tok.clone()
    other[tok == 0] = 7
    out2 = enc(other)
    assert torch.allclose(out2.tokens[out.mask], out.tokens[out.mask], atol=1e-6)
    longer = enc(_tokens([5, 9, 12], total=16))  # more padding: the same pooled features
    assert torch.allclose(longer.pooled, out.pooled, atol=1e-6)


def test_image_encoder_grid() -> None:
    for size, grid in ((32, 4), (16, 4), (8, 4), (28, 4), (64, 4)):
        enc = ImageEncoder(3, size, width=8)
        f = enc(torch.randn(2, 3, size, size))
        assert enc.grid == grid and f.tokens.shape == (2, grid * grid, enc.out_dim)
        assert f.pooled.shape == (2, enc.out_dim)


def test_cross_attention_equals_attention_over_the_real_tokens_only() -> None:
    torch.manual_seed(0)
    att = CrossAttention(16, 24, n_head=4)
    x = torch.randn(3, 5, 16)
    ctx = torch.randn(3, 7, 24)
    n_real = [7, 3, 1]
    mask = torch.arange(7)[None] < torch.tensor(n_real)[:, None]
    full = att(x, ctx, mask)
    for i, n in enumerate(n_real):
        # by hand: softmax(Q K^T / sqrt(d)) V over the n real tokens (Vaswani et al., Eq. (1))
        q = att.q(x[i]).view(5, 4, 4).transpose(0, 1)  # (H, N, hd)
        k, v = att.kv(ctx[i, :n]).view(n, 2, 4, 4).permute(1, 2, 0, 3)  # (H, n, hd) each
        w = (q @ k.transpose(-1, -2) / math.sqrt(4)).softmax(-1)
        ref = att.proj((w @ v).transpose(0, 1).reshape(5, 16))
        assert torch.allclose(full[i], ref, atol=1e-5)
    empty = att(x, ctx, torch.zeros(3, 7, dtype=torch.bool))
    assert torch.equal(empty, torch.zeros_like(empty))  # nothing to attend to: no update


def test_middle_fusion_ignores_padded_tokens() -> None:
    enc = _text_encoder()
    torch.manual_seed(1)
    fuse = MiddleFusion(32, 32, n_out=6, n_layer=2, n_head=4).eval()
    img = ImageFeatures(torch.randn(3, 16, 32), torch.randn(3, 32))
    tok = _tokens([4, 7, 10])
    ref = fuse(img, enc(tok))
    # garbage in the padding, and a different amount of padding: the same answer logits
    feats = enc(tok)
    noise = 5.0 * torch.randn_like(feats.tokens) * (~feats.mask)[..., None]
    feats = TextFeatures(feats.tokens + noise, feats.mask, feats.pooled)
    assert torch.allclose(fuse(img, feats), ref, atol=1e-5)
    shorter = enc(_tokens([4, 7, 10], total=10))
    assert torch.allclose(fuse(img, shorter), ref, atol=1e-5)
    # while the real tokens matter
    changed = tok.clone()
    changed[:, 1] = 5
    assert not torch.allclose(fuse(img, enc(changed)), ref, atol=1e-3)


def test_late_fusion_is_a_function_of_the_two_scores() -> None:
    torch.manual_seed(0)
    fuse = LateFusion(32, 32, n_out=6)
    with torch.no_grad():
        fuse.weights.copy_(torch.tensor([0.7, 1.3]))
        fuse.bias.normal_()
    imgs = ImageFeatures(torch.randn(2, 16, 32), torch.randn(2, 32))
    txts = TextFeatures(
        torch.randn(2, L, 32), torch.ones(2, L, dtype=torch.bool), torch.randn(2, 32)
    )

    def f(i: int, t: int) -> torch.Tensor:
        img = ImageFeatures(imgs.tokens[i : i + 1], imgs.pooled[i : i + 1])
        txt = TextFeatures(txts.tokens[t : t + 1], txts.mask[t : t + 1], txts.pooled[t : t + 1])
        return fuse(img, txt)[0]

    # no interaction: f(i1, t) - f(i2, t) does not depend on t (additive scores)
    assert torch.allclose(f(0, 0) - f(1, 0), f(0, 1) - f(1, 1), atol=1e-5)
    s_img, s_txt = fuse.scores(imgs, txts)
    assert torch.allclose(fuse(imgs, txts), fuse.combine(s_img, s_txt))
    assert torch.allclose(fuse.combine(s_img, s_txt), 0.7 * s_img + 1.3 * s_txt + fuse.bias)
    # the image tokens (not the pooled vector) never reach it
    other = ImageFeatures(torch.randn(2, 16, 32), imgs.pooled)
    assert torch.equal(fuse(other, txts), fuse(imgs, txts))


def test_early_fusion_is_a_function_of_the_concatenation() -> None:
    torch.manual_seed(0)
    fuse = EarlyFusion(8, 6, n_out=5, hidden=16)
    img = ImageFeatures(torch.randn(4, 3, 8), torch.randn(4, 8, requires_grad=True))
    txt = TextFeatures(torch.randn(4, L, 6), torch.ones(4, L, dtype=torch.bool),
                       torch.randn(4, 6, requires_grad=True))  # fmt: skip
    out = fuse(img, txt)
    assert out.shape == (4, 5)
    ref = fuse.net(torch.cat([img.pooled, txt.pooled], -1))
    assert torch.equal(out, ref)
    # unlike late fusion the modalities interact: a mixed second difference is not zero
    a, b = img.pooled.detach(), txt.pooled.detach()
    d = lambda i, t: fuse.net(torch.cat([i, t], -1))  # noqa: E731
    mixed = d(a, b) - d(a.roll(1, 0), b) - d(a, b.roll(1, 0)) + d(a.roll(1, 0), b.roll(1, 0))
    assert mixed.abs().max() > 1e-4
    assert F.mse_loss(out, out.detach() + 1).item() == 1.0
