"""Neural style transfer: AdaIN's closed forms, the Gram matrix's invariance, Gatys' optimisation,
the adain model's contract, the procedural textures, and the refusal of pickled weights."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from genzoo.core.errors import ConfigError, DataError, GenzooError
from genzoo.data import dataset_info, load_dataset
from genzoo.data.textures import KINDS, make_textures
from genzoo.models.style import AdaIN, AdaINConfig, gatys
from genzoo.nn.style import (
    FeatureNet,
    adain,
    channel_stats,
    gram_matrix,
    small_cnn_body,
    vgg19_features,
)
from genzoo.runs.stylize import load_weights, match, read_input, vgg19_from_weights


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _double_batch(n: int = 3) -> dict[str, torch.Tensor]:
    """The first ``n`` test pairs of ``styled:digits``, floating tensors in float64."""
    items = load_dataset("styled:digits", "test").get(torch.arange(n)).items()
    return {k: (v.double() if v.is_floating_point() else v) for k, v in items}


def test_adain_of_x_with_itself_is_x() -> None:
    x = torch.randn(3, 5, 6, 7, generator=gen(0), dtype=torch.float64) * 3 + 2
    torch.testing.assert_close(adain(x, x, eps=0.0), x)
    torch.testing.assert_close(adain(x, x), x, rtol=1e-5, atol=1e-5)  # eps only perturbs


def test_adain_output_has_the_style_channel_mean_and_std() -> None:
    x = torch.randn(2, 4, 5, 5, generator=gen(1), dtype=torch.float64)
    y = torch.randn(2, 4, 3, 9, generator=gen(2), dtype=torch.float64) * 5 - 3  # other size
    out = adain(x, y, eps=0.0)
    torch.testing.assert_close(out.mean(dim=(2, 3)), y.mean(dim=(2, 3)))
    torch.testing.assert_close(
        out.std(dim=(2, 3), unbiased=False), y.std(dim=(2, 3), unbiased=False)
    )
    mu, sd = channel_stats(y, eps=0.0)  # and channel_stats agrees with torch's own
    torch.testing.assert_close(sd.squeeze(), y.std(dim=(2, 3), unbiased=False).squeeze())
    torch.testing.assert_close(mu.squeeze(), y.mean(dim=(2, 3)).squeeze())


def test_gram_matrix_is_invariant_to_a_spatial_permutation() -> None:
    f = torch.randn(2, 6, 5, 4, generator=gen(3), dtype=torch.float64)
    perm = torch.randperm(20, generator=gen(4))
    g = f.flatten(2)[:, :, perm].reshape(f.shape)  # the same pixels, shuffled
    torch.testing.assert_close(gram_matrix(g), gram_matrix(f))
    flat = f[0].reshape(6, 20)  # and it is F F^T / (H W)
    torch.testing.assert_close(gram_matrix(f)[0], flat @ flat.T / 20)
    assert not torch.allclose(gram_matrix(f + 1), gram_matrix(f))


def test_gatys_reduces_the_style_loss_on_a_tiny_image() -> None:
    torch.manual_seed(0)
    net = FeatureNet(small_cnn_body(1, 4), (1, 6, 11), 1)
    content = torch.rand(1, 1, 12, 12, generator=gen(5)) * 2 - 1
    x, _ = make_textures(4, 12, 1, seed=0)
    style = x[:1].float() / 127.5 - 1
    res = gatys(content, style, net, steps=40, lr=0.05)
    assert float(res.style_reduction) > 0.5
    assert float(res.image.abs().max()) <= 1.0
    # the content term holds the result near the content: with the content weight only, it stays
    same = gatys(content, style, net, steps=10, style_weight=0.0)
    torch.testing.assert_close(same.image, content)


def test_colour_input_to_a_grey_net_keeps_per_channel_features() -> None:
    net = FeatureNet(small_cnn_body(1, 2), (1,), 1)
    x = torch.rand(2, 3, 6, 6, generator=gen(6)) * 2 - 1
    (f,) = net(x)
    assert f.shape == (2, 6, 6, 6)
    torch.testing.assert_close(f[:, 2:4], net(x[:, 1:2])[0])  # channel 1's features


def test_textures_are_deterministic_and_labelled_by_kind() -> None:
    a, ya = make_textures(8, 16, 3, seed=1)
    b, _ = make_textures(8, 16, 3, seed=1)
    assert torch.equal(a, b) and a.shape == (8, 3, 16, 16) and a.dtype == torch.uint8
    assert ya.tolist() == [0, 1, 2, 3, 0, 1, 2, 3] and len(KINDS) == 4
    info = dataset_info("textures?size=16&channels=3")
    assert info.shape == (3, 16, 16) and info.n_classes == 4
    with pytest.raises(DataError, match="channels=1 or channels=3"):
        dataset_info("textures?channels=2")
    batch = load_dataset("styled:digits", "test").get(torch.arange(5))
    assert batch["style"].shape == batch["x"].shape == (5, 1, 8, 8)
    assert float(batch["style"].min()) >= -1 and float(batch["style"].max()) <= 1


def test_adain_model_trains_the_encoder_then_the_decoder_alone() -> None:
    info = dataset_info("styled:digits")
    m = AdaIN(AdaINConfig(width=4, encoder_steps=1), info)
    batch = load_dataset("styled:digits", "test").get(torch.arange(6))
    first = m.loss(batch)  # phase one: the encoder's classification only
    assert set(first.logs) == {"encoder_ce"}
    first.loss.backward()
    assert all(p.grad is not None for p in m.encoder.parameters())
    assert all(p.grad is None for p in m.decoder.parameters())
    m.zero_grad(set_to_none=True)
    second = m.loss(batch)  # phase two: the decoder's losses through the frozen encoder
    assert set(second.logs) == {"content", "style"}
    second.loss.backward()
    assert all(p.grad is None for p in m.encoder.parameters())
    assert all(p.grad is not None for p in m.decoder.parameters())
    assert int(m.steps_seen) == 2 and "steps_seen" in m.state_dict()  # resumes in its phase
    assert set(m.eval_metrics(batch)) == {"content", "style", "encoder_ce"}
    y = m.stylize(batch["x"], batch["style"])
    assert y.shape == batch["x"].shape and float(y.abs().max()) <= 1.0
    with pytest.raises(ConfigError, match="styled:digits"):
        AdaIN(AdaINConfig(width=4), dataset_info("toy2d:8gaussians"))


def test_adain_over_a_fixed_feature_network_trains_only_the_decoder_from_step_0() -> None:
    """``encoder="classifier:<dataset>"``: the runs layer's ``load_run`` is asked for that
    network, the model taps it as given (same features), skips the encoder phase although
    ``encoder_steps`` is set, never updates it, and mirrors its width in the decoder."""
    from genzoo.nn.style import SMALL_CNN_TAPS
    from genzoo.runs.build import build

    info = dataset_info("styled:digits")
    torch.manual_seed(0)
    net = FeatureNet(small_cnn_body(1, 6), SMALL_CNN_TAPS, 1, name="test-net")
    asked: list[tuple[str, bool]] = []

    def load_run(run: str, ema: bool) -> torch.nn.Module:
        asked.append((run, ema))
        return net

    cfg = AdaINConfig(width=4, encoder_steps=5, encoder="classifier:digits")
    m = build(AdaIN, cfg, info, load_run)
    assert asked == [("classifier:digits", False)]
    assert AdaIN.load_parts(AdaINConfig(), load_run) == {} and len(asked) == 1  # own: nothing
    assert m.decoder.stage3[0].in_channels == 4 * 6  # the given net's width, not config.width
    batch = load_dataset("styled:digits", "test").get(torch.arange(6))
    for got, want in zip(m.encode(batch["x"]), net(batch["x"]), strict=True):
        torch.testing.assert_close(got, want)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    m.train()
    out = m.loss(batch)  # step 0 is already the decoder's: no encoder_ce phase
    assert set(out.logs) == {"content", "style"}
    out.loss.backward()
    assert all(p.grad is None for p in m.encoder.parameters())
    assert all(p.grad is not None for p in m.decoder.parameters())
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=0.1)
    opt.step()
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert set(m.eval_metrics(batch)) == {"content", "style"}
    with pytest.raises(ConfigError, match="'own' or 'classifier:<dataset>'"):
        AdaINConfig.from_dict({"encoder": "vgg19"})
    with pytest.raises(ConfigError, match="needs that feature network"):
        AdaIN(cfg, info)
    with pytest.raises(ConfigError, match="3-channel"):
        AdaIN(cfg, info, FeatureNet(small_cnn_body(3, 4), SMALL_CNN_TAPS, 3))


class _Evil:
    """Unpickling this would create a file (it must never happen)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("suffix", [".pkl", ".pt", ".pth"])
def test_a_pickle_weights_file_is_refused_without_being_executed(tmp_path, suffix) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / f"weights{suffix}"
    with path.open("wb") as fh:
        pickle.dump({"features.0.weight": _Evil(marker)}, fh)
    with pytest.raises(GenzooError, match="never"):
        load_weights(path)
    assert not marker.exists()
    # and the payload is real: plain unpickling would have created the file
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_vgg19_weights_load_from_safetensors_and_bad_files_are_one_sentence(tmp_path) -> None:
    from safetensors.torch import save_file

    body = vgg19_features()
    state = {f"features.{k}": v.contiguous() for k, v in body.state_dict().items()}
    save_file(state, str(tmp_path / "vgg.safetensors"))
    net = vgg19_from_weights(tmp_path / "vgg.safetensors")
    torch.testing.assert_close(net.body[0].weight, body[0].weight)
    feats = net(torch.zeros(1, 1, 16, 16))  # a grey image into the colour net
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512]
    torch.save({"features.0.weight": torch.zeros(2)}, tmp_path / "bad.pt")
    with pytest.raises(GenzooError, match="VGG19"):
        vgg19_from_weights(tmp_path / "bad.pt")
    with pytest.raises(DataError, match="does not exist"):
        load_weights(tmp_path / "missing.safetensors")


def test_inputs_of_other_sizes_and_channels_are_converted() -> None:
    content = read_input("digits@0")
    assert content.shape == (1, 1, 8, 8)
    style = read_input("texture:checks@2", like=torch.zeros(1, 3, 20, 20))
    assert style.shape == (1, 3, 20, 20)
    x, notes = match(style, (1, 8, 8), "style")
    assert x.shape == (1, 1, 8, 8) and notes == [
        "style converted from 3 to 1 channels",
        "style resized from 20x20 to 8x8",
    ]
    for bad in ("texture:waves", "digits@99999", "no-such-file.png"):
        with pytest.raises(DataError):
            read_input(bad)


def test_channel_stats_are_over_height_and_width_on_a_non_square_map() -> None:
    """Per example and channel over (H, W), against numpy: a mean over one axis only (column or
    row statistics) or over the channels would fail on a 5 x 9 map."""
    f = torch.randn(2, 3, 5, 9, generator=gen(7), dtype=torch.float64) * 2 + 1
    a = f.numpy()
    mu, sd = channel_stats(f, eps=0.0)
    assert mu.shape == sd.shape == (2, 3, 1, 1)
    np.testing.assert_allclose(mu[..., 0, 0].numpy(), a.mean(axis=(2, 3)), rtol=1e-12)
    np.testing.assert_allclose(sd[..., 0, 0].numpy(), a.std(axis=(2, 3)), rtol=1e-12)
    out = adain(f, f.flip(0) * 3, eps=0.0).numpy()  # AdaIN's output in numpy's statistics
    np.testing.assert_allclose(out.mean(axis=(2, 3)), 3 * a[::-1].mean(axis=(2, 3)), rtol=1e-9)
    np.testing.assert_allclose(out.std(axis=(2, 3)), 3 * a[::-1].std(axis=(2, 3)), rtol=1e-9)


def test_adain_content_and_style_losses_are_the_papers_norms() -> None:
    """Eq. (12) ``||f(g(t)) - t||_2`` and Eq. (13) (norms of the channel mean and std gaps),
    against numpy: both are norms, so lambda weighs them as in the paper (a mean of squares for
    L_c made the content term hundreds of times weaker than the style term)."""
    info = dataset_info("styled:digits")
    torch.manual_seed(0)
    m = AdaIN(AdaINConfig(width=4, encoder_steps=0), info).double()
    batch = _double_batch()
    lc, ls = m.decoder_losses(batch)
    with torch.no_grad():
        fc, fs = m.encode(batch["x"]), m.encode(batch["style"])
        t = adain(fc[-1], fs[-1])
        out = m.encode(m.decoder(t))
    diff = (out[-1] - t).numpy().reshape(3, -1)
    np.testing.assert_allclose(lc.detach().numpy(), np.linalg.norm(diff, axis=1), rtol=1e-9)
    want = np.zeros(3)
    for o, s in zip(out, fs, strict=True):
        o, s = o.numpy(), s.numpy()
        want += np.linalg.norm(o.mean(axis=(2, 3)) - s.mean(axis=(2, 3)), axis=1)
        sd_o = np.sqrt(o.var(axis=(2, 3)) + 1e-5)
        sd_s = np.sqrt(s.var(axis=(2, 3)) + 1e-5)
        want += np.linalg.norm(sd_o - sd_s, axis=1)
    np.testing.assert_allclose(ls.detach().numpy(), want, rtol=1e-9)


def test_adain_decoder_width_keeps_the_mirror_by_default_and_widens_only_the_decoder() -> None:
    """``decoder_width``: 0 (default) builds the mirror decoder, layer for layer and with the same
    initial weights as before the option; ``2 width`` makes the first convolution as wide as its
    ``4 width``-channel input, keeps the image shape, and bad values are one sentence."""
    from genzoo.nn.style import AdaINDecoder

    torch.manual_seed(0)
    old = AdaINDecoder(1, 4, (28, 28))
    torch.manual_seed(0)
    same = AdaINDecoder(1, 4, (28, 28), 4)
    for (k, a), (k2, b) in zip(old.state_dict().items(), same.state_dict().items(), strict=True):
        assert k == k2
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    info = dataset_info("styled:digits")
    m0 = AdaIN(AdaINConfig(width=4), info)
    assert [c.out_channels for c in m0.decoder.modules() if isinstance(c, torch.nn.Conv2d)] == [
        8,
        8,
        4,
        4,
        1,
    ]
    m = AdaIN(AdaINConfig(width=4, decoder_width=8, encoder_steps=0), info)
    convs = [c for c in m.decoder.modules() if isinstance(c, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (16, 16),
        (16, 16),
        (16, 8),
        (8, 8),
        (8, 1),
    ]
    batch = load_dataset("styled:digits", "test").get(torch.arange(3))
    assert m.stylize(batch["x"], batch["style"]).shape == batch["x"].shape
    assert m.encoder[0].out_channels == 4  # the encoder is not widened
    with pytest.raises(ConfigError, match="decoder_width"):
        AdaINConfig.from_dict({"decoder_width": -1})


def test_adain_gram_variant_swaps_only_the_style_term_for_gatys_gram_loss() -> None:
    """``style_loss="gram"``: same weights, same ``L_c`` as the paper's loss; ``L_s`` is Gatys'
    layer-normalised Gram loss against numpy; a bad name is one sentence."""
    info = dataset_info("styled:digits")
    batch = _double_batch()
    torch.manual_seed(0)
    paper = AdaIN(AdaINConfig(width=4, encoder_steps=0), info).double()
    torch.manual_seed(0)
    m = AdaIN(AdaINConfig(width=4, encoder_steps=0, style_loss="gram"), info).double()
    lc0, ls0 = paper.decoder_losses(batch)
    lc, ls = m.decoder_losses(batch)
    torch.testing.assert_close(lc, lc0, rtol=0, atol=0)
    with torch.no_grad():
        fs = m.encode(batch["style"])
        out = m.encode(m.decoder(adain(m.encode(batch["x"])[-1], fs[-1])))
    want = np.zeros(3)
    for o, s in zip(out, fs, strict=True):
        o, s = o.numpy().reshape(3, o.shape[1], -1), s.numpy().reshape(3, s.shape[1], -1)
        go = o @ o.transpose(0, 2, 1) / o.shape[2]
        gs = s @ s.transpose(0, 2, 1) / s.shape[2]
        want += ((go - gs) ** 2).sum(axis=(1, 2)) / ((gs**2).sum(axis=(1, 2)) * len(fs))
    np.testing.assert_allclose(ls.detach().numpy(), want, rtol=1e-9)
    assert not torch.allclose(ls, ls0)
    with pytest.raises(ConfigError, match="style_loss"):
        AdaINConfig.from_dict({"style_loss": "vgg"})


def test_adain_layer_2_moves_adain_and_the_content_loss_to_relu2_only() -> None:
    """``adain_layer=2``: AdaIN (Eq. (8)) and ``L_c`` (Eq. (12)) at relu2 (14 x 14 at 28 x 28)
    against numpy, ``L_s`` (Eq. (13)) still over relu1, relu2, relu3; the decoder starts at relu2's
    ``2 width`` channels and keeps the image shape; AdaIN(x, x) = x still makes Eq. (14) blind to
    alpha; the default (relu3) decoder is the one before the option; bad values are one sentence."""
    from genzoo.nn.style import AdaINDecoder, stats_style_loss

    torch.manual_seed(0)
    old = AdaINDecoder(1, 4, (28, 28), 8)
    torch.manual_seed(0)
    same = AdaINDecoder(1, 4, (28, 28), 8, 3)
    assert list(old.state_dict()) == list(same.state_dict())
    for a, b in zip(old.state_dict().values(), same.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    info = dataset_info("styled:digits")
    torch.manual_seed(0)
    m = AdaIN(AdaINConfig(width=4, encoder_steps=0, adain_layer=2), info).double()
    convs = [c for c in m.decoder.modules() if isinstance(c, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(8, 8), (8, 4), (4, 4), (4, 1)]
    batch = _double_batch()
    lc, ls = m.decoder_losses(batch)
    with torch.no_grad():
        fc, fs = m.encode(batch["x"]), m.encode(batch["style"])
        h = info.shape[1]  # 8: relu2 is 4 x 4, relu3 2 x 2
        assert fc[1].shape[-1] == (h + 1) // 2 == 2 * fc[2].shape[-1] and len(fs) == 3
        a, s = fc[1].numpy(), fs[1].numpy()
        mu_a, sd_a = (
            a.mean(axis=(2, 3), keepdims=True),
            np.sqrt(a.var(axis=(2, 3), keepdims=True) + 1e-5),
        )
        mu_s, sd_s = (
            s.mean(axis=(2, 3), keepdims=True),
            np.sqrt(s.var(axis=(2, 3), keepdims=True) + 1e-5),
        )
        t = sd_s * (a - mu_a) / sd_a + mu_s  # Eq. (8) in numpy, at relu2
        img = m.decoder(torch.from_numpy(t))
        assert img.shape == batch["x"].shape
        out = m.encode(img)
    want = np.linalg.norm((out[1].numpy() - t).reshape(3, -1), axis=1)
    np.testing.assert_allclose(lc.detach().numpy(), want, rtol=1e-9)
    torch.testing.assert_close(ls.detach(), stats_style_loss(out, fs), rtol=1e-12, atol=0)
    x = batch["x"]
    torch.testing.assert_close(m.stylize(x, x, 1.0), m.stylize(x, x, 0.0), rtol=0, atol=1e-4)
    with pytest.raises(ConfigError, match="adain_layer"):
        AdaINConfig.from_dict({"adain_layer": 4})
    with pytest.raises(ValueError, match="level"):
        AdaINDecoder(1, 4, (28, 28), None, 1)


def test_adain_decoder_noise_adds_input_channels_whose_zero_weights_give_the_plain_decoder() -> (
    None
):
    """``decoder_noise=k``: every decoder stage takes ``k`` more input channels; with the noise
    channels' weights set to 0 the decoder equals a noise-free one with the other weights, to the
    bit; the same generator gives the same image, another one another; the model's ``stylize``
    is reproducible by default; the default (0) adds nothing; bad values are one sentence."""
    from genzoo.nn.style import AdaINDecoder

    torch.manual_seed(0)
    plain = AdaINDecoder(1, 4, (28, 28), 8).double()
    noisy = AdaINDecoder(1, 4, (28, 28), 8, 3, 2).double()
    pc = [c for c in plain.modules() if isinstance(c, torch.nn.Conv2d)]
    nc = [c for c in noisy.modules() if isinstance(c, torch.nn.Conv2d)]
    assert [c.in_channels for c in nc] == [16 + 2, 16 + 2, 16, 8 + 2, 8]
    with torch.no_grad():
        for a, b in zip(pc, nc, strict=True):
            extra = b.in_channels - a.in_channels
            b.weight.zero_()
            b.weight[:, : a.in_channels] = a.weight
            b.bias.copy_(a.bias)
            assert extra in (0, 2)
        t = torch.randn(3, 16, 7, 7, dtype=torch.float64)
        torch.testing.assert_close(noisy(t, gen(1)), plain(t), rtol=0, atol=0)
        for c in nc:  # the noise channels' weights back on
            c.weight[:, 16 if c.in_channels == 18 else 8 :].fill_(0.1)
        same = noisy(t, gen(1))
        torch.testing.assert_close(noisy(t, gen(1)), same, rtol=0, atol=0)
        assert not torch.allclose(noisy(t, gen(2)), same)
    info = dataset_info("styled:digits")
    m = AdaIN(AdaINConfig(width=4, encoder_steps=0, decoder_noise=3), info)
    x = load_dataset("styled:digits", "test").get(torch.arange(2))["x"]
    torch.testing.assert_close(m.stylize(x, x.flip(0)), m.stylize(x, x.flip(0)), rtol=0, atol=0)
    assert AdaIN(AdaINConfig(width=4), info).decoder.stage1[0].in_channels == 4
    with pytest.raises(ConfigError, match="decoder_noise"):
        AdaINConfig.from_dict({"decoder_noise": 65})


def test_adain_multi_level_adds_relu2s_adain_to_the_decoder_and_its_term_to_the_content_loss():
    """``multi_level``: with the weights on relu2's AdaIN at 0 the decoder equals the plain one to
    the bit; ``L_c`` is Eq. (12) at relu3 plus at relu2 (numpy); ``adain_layer=2`` with it, or a
    missing ``t2``, is one sentence."""
    from genzoo.nn.style import AdaINDecoder

    torch.manual_seed(0)
    plain = AdaINDecoder(1, 4, (28, 28), 8).double()
    multi = AdaINDecoder(1, 4, (28, 28), 8, 3, 0, True).double()
    assert multi.stage2[0].in_channels == 16 + 8
    with torch.no_grad():
        for a, b in zip(plain.parameters(), multi.parameters(), strict=True):
            b.zero_()
            b[tuple(slice(0, n) for n in a.shape)] = a
        t, t2 = torch.randn(3, 16, 7, 7).double(), torch.randn(3, 8, 14, 14).double()
        torch.testing.assert_close(multi(t, None, t2), plain(t), rtol=0, atol=0)
    info = dataset_info("styled:digits")
    torch.manual_seed(0)
    m = AdaIN(AdaINConfig(width=4, encoder_steps=0, multi_level=True), info).double()
    batch = _double_batch()
    lc, _ = m.decoder_losses(batch)
    with torch.no_grad():
        fc, fs = m.encode(batch["x"]), m.encode(batch["style"])
        ts = [adain(fc[i], fs[i]) for i in (1, 2)]
        out = m.encode(m.decoder(ts[1], None, ts[0]))
    want = sum(np.linalg.norm((out[i] - ts[i - 1]).numpy().reshape(3, -1), axis=1) for i in (1, 2))
    np.testing.assert_allclose(lc.detach().numpy(), want, rtol=1e-9)
    x = batch["x"]  # Eq. (14) at both levels: AdaIN(x, x) = x makes alpha irrelevant
    torch.testing.assert_close(m.stylize(x, x, 1.0), m.stylize(x, x, 0.0), rtol=0, atol=1e-4)
    with pytest.raises(ConfigError, match="multi_level"):
        AdaINConfig.from_dict({"multi_level": True, "adain_layer": 2})
    with pytest.raises(ValueError, match="t2"):
        m.decoder(ts[1])


def test_adain_tanh_output_bounds_the_image_and_the_losses_see_it_as_stylize_returns_it():
    """``tanh_output``: the same seed gives the same weights as the plain decoder and an output
    that is tanh of the plain output, inside (-1, 1) however large the input; the model's losses
    are computed on that bounded image, which ``stylize`` returns unclamped (a no-op clamp)."""
    from genzoo.nn.style import AdaINDecoder, stats_style_loss

    torch.manual_seed(0)
    plain = AdaINDecoder(1, 4, (28, 28), 8, 3, 0, True).double()
    torch.manual_seed(0)
    bounded = AdaINDecoder(1, 4, (28, 28), 8, 3, 0, True, tanh=True).double()
    for a, b in zip(plain.state_dict().values(), bounded.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    t, t2 = 1e3 * torch.randn(3, 16, 7, 7).double(), 1e3 * torch.randn(3, 8, 14, 14).double()
    with torch.no_grad():
        raw, out = plain(t, None, t2), bounded(t, None, t2)
    assert raw.abs().max() > 1.0  # the plain decoder leaves the image range
    torch.testing.assert_close(out, torch.tanh(raw), rtol=0, atol=0)
    assert out.abs().max() <= 1.0
    info = dataset_info("styled:digits")
    cfg = {"width": 4, "encoder_steps": 0, "multi_level": True, "decoder_width": 8}
    assert not AdaIN(AdaINConfig(**cfg), info).decoder.tanh  # the default: the paper's decoder
    torch.manual_seed(0)
    m = AdaIN(AdaINConfig(**cfg, tanh_output=True), info).double()
    batch = _double_batch()
    _, ls = m.decoder_losses(batch)
    with torch.no_grad():
        fc, fs = m.encode(batch["x"]), m.encode(batch["style"])
        img = m.decoder(adain(fc[2], fs[2]), None, adain(fc[1], fs[1]))
        m.decoder.tanh = False
        unbounded = m.decoder(adain(fc[2], fs[2]), None, adain(fc[1], fs[1]))
        m.decoder.tanh = True
    torch.testing.assert_close(img, torch.tanh(unbounded), rtol=0, atol=0)
    torch.testing.assert_close(ls, stats_style_loss(m.encode(img), fs), rtol=1e-12, atol=0)
    torch.testing.assert_close(m.stylize(batch["x"], batch["style"]), img, rtol=0, atol=0)
