"""Image-to-image translation: the paired/unpaired digit tasks, the PatchGAN and U-Net nets,
pix2pix and CycleGAN losses and training through the one Trainer, and ``genzoo translate``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

import genzoo
from genzoo.cli import main
from genzoo.core.errors import ConfigError, DataError
from genzoo.core.registry import MODELS
from genzoo.data import dataset_info, list_datasets, load_dataset
from genzoo.data.base import model_to_levels
from genzoo.models.gans import CycleGAN, CycleGANConfig, Pix2Pix, Pix2PixConfig
from genzoo.models.gans.cyclegan import ImagePool
from genzoo.models.gans.translation import adversarial_pair
from genzoo.nn.image2image import (
    PatchDiscriminator,
    ResnetGenerator,
    UNetGenerator,
    auto_patch_layers,
    patch_receptive_field,
)
from genzoo.runs.translate import read_image, write_image
from genzoo.train.checkpoint import find_checkpoint, read_checkpoint

PAIRS = "pairs:digits-thick"
UNPAIRED = "unpaired:digits-thick"


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _shift_max(k: Tensor, sign: int = 1) -> Tensor:
    """Grey dilation (sign 1) or erosion (sign -1) with the 3x3 cross, by shifting: an
    implementation independent of scipy's, zero outside the image."""
    x = sign * k.long()
    p = F.pad(x, (1, 1, 1, 1), value=0)
    h, w = x.shape[-2:]
    shifts = [p[..., 1 : h + 1, 1 : w + 1], p[..., :h, 1 : w + 1], p[..., 2:, 1 : w + 1]]
    shifts += [p[..., 1 : h + 1, :w], p[..., 1 : h + 1, 2:]]
    return sign * torch.stack(shifts).amax(0)


# --------------------------------------------------------------------------------------------------
# data


@pytest.mark.parametrize("base", ["digits", "mnist5k"])
def test_paired_tasks_are_dilation_and_morphological_gradient(base: str) -> None:
    raw = load_dataset(base, "test")
    thick = load_dataset(f"pairs:{base}-thick", "test")
    edges = load_dataset(f"pairs:{base}-edges", "test")
    assert torch.equal(thick.src, raw.x) and torch.equal(thick.y, raw.y)
    assert torch.equal(thick.x.long(), _shift_max(raw.x))  # target = dilation of the source
    assert (thick.x >= thick.src).all() and (thick.x > thick.src).any()
    grad = _shift_max(raw.x) - _shift_max(raw.x, -1)  # dilation - erosion: the outline
    assert torch.equal(edges.src.long(), grad) and torch.equal(edges.x, raw.x)
    info = dataset_info(f"pairs:{base}-thick")
    assert info.shape == raw.info.shape and info.levels == raw.info.levels
    b = thick.get(torch.arange(3))
    assert b["src"].shape == b["x"].shape == (3, *info.shape)
    assert b["src"].abs().max() < 1 and b["y"].dtype == torch.long


def test_unpaired_halves_are_disjoint_and_the_test_split_keeps_pairs() -> None:
    base = load_dataset("digits", "train").x
    un = load_dataset(UNPAIRED, "train")
    assert len(un) == len(base) // 2
    # index of every base image (the digits training images are distinct)
    keys = {bytes(img.numpy()): i for i, img in enumerate(base)}
    assert len(keys) == len(base)
    a_idx = {keys[bytes(s.numpy())] for s in un.src}  # sources are base images (thick task)
    dil = {bytes(d.numpy()): i for i, d in enumerate(_shift_max(base).to(torch.uint8))}
    b_idx = {dil[bytes(t.numpy())] for t in un.x}  # targets are dilations of base images
    assert len(a_idx) == len(b_idx) == len(un) and not (a_idx & b_idx)
    # no source is batched with its own translation
    assert not torch.equal(_shift_max(un.src).to(torch.uint8), un.x)
    assert not (_shift_max(un.src).to(torch.uint8) == un.x).flatten(1).all(1).any()
    paired_test = load_dataset(PAIRS, "test")
    un_test = load_dataset(UNPAIRED, "test")
    assert torch.equal(un_test.src, paired_test.src) and torch.equal(un_test.x, paired_test.x)


def test_pair_specs_are_listed_and_bad_ones_name_the_choices() -> None:
    assert PAIRS in list_datasets() and UNPAIRED in list_datasets()
    with pytest.raises(DataError, match=r"'pairs:digits-edges', 'pairs:digits-thick'"):
        dataset_info("pairs:digits-blur")
    with pytest.raises(DataError, match="Unknown image-to-image dataset"):
        load_dataset("unpaired:cifar10-thick", "train")


# --------------------------------------------------------------------------------------------------
# networks


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_patchgan_receptive_field_equals_its_formula(n_layers: int) -> None:
    """The input pixels one PatchGAN logit depends on (nonzero gradient) form a square of side
    9 * 2^n - 2: 70 for the paper's n = 3."""
    r = patch_receptive_field(n_layers)
    assert r == {1: 16, 2: 34, 3: 70}[n_layers]
    torch.manual_seed(0)
    d = PatchDiscriminator(2, width=4, n_layers=n_layers).double().eval()
    assert d.receptive_field == r
    x = torch.randn(1, 2, 2 * r, 2 * r, dtype=torch.float64, requires_grad=True)
    out = d(x)  # (1, 1, h, w)
    i, j = out.shape[2] // 2, out.shape[3] // 2
    (grad,) = torch.autograd.grad(out[0, 0, i, j], x)
    seen = grad.abs().sum(1)[0] > 0  # (H, W): pixels this logit depends on
    rows = seen.any(1).nonzero().flatten()
    cols = seen.any(0).nonzero().flatten()
    assert rows[-1] - rows[0] + 1 == r and cols[-1] - cols[0] + 1 == r
    assert rows[0] > 0 and rows[-1] < 2 * r - 1  # the field lies inside: not clipped by padding
    assert seen[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all()  # a full square
    # a neighbouring logit sees the same square moved by the total stride 2^n
    (g2,) = torch.autograd.grad(d(x)[0, 0, i + 1, j], x)
    rows2 = (g2.abs().sum(1)[0] > 0).any(1).nonzero().flatten()
    assert rows2[0] - rows[0] == 2**n_layers


@pytest.mark.parametrize("size", [(8, 8), (28, 28), (13, 20)])
def test_unet_skip_shapes_line_up(size: tuple[int, int]) -> None:
    """Decoder stage j ends at the size and width of encoder stage n - 2 - j, so the skip
    concatenation doubles the channels; the bottleneck is 1 x 1 and the output has the input's
    shape (odd sides included)."""
    g = UNetGenerator(2, 3, size, width=4, max_mult=4)
    shapes: dict[str, tuple[int, ...]] = {}
    for i, m in enumerate(g.downs):
        m.register_forward_hook(lambda mod, a, out, k=f"d{i}": shapes.__setitem__(k, out.shape))
    for j, m in enumerate(g.ups):
        m.register_forward_hook(
            lambda mod, a, out, k=f"u{j}": shapes.__setitem__(k, (a[0].shape, out.shape))
        )
    x = torch.randn(2, 2, *size)
    y = g(x)
    n = len(g.downs)
    assert n == math.ceil(math.log2(max(size)))  # down to 1 x 1
    assert shapes[f"d{n - 1}"][2:] == (1, 1)
    for j in range(1, n):
        skip = shapes[f"d{n - 1 - j}"]
        up_in, _ = shapes[f"u{j}"]
        prev_out = shapes[f"u{j - 1}"][1]
        assert prev_out == skip  # same batch, channels and size
        assert up_in == (2, 2 * skip[1], *skip[2:])  # concatenated
    assert y.shape == (2, 3, *size) and y.abs().max() <= 1


def test_resnet_generator_keeps_the_size() -> None:
    for size in [(8, 8), (28, 28), (13, 20)]:
        g = ResnetGenerator(1, 1, size, width=4, n_blocks=1)
        assert g(torch.randn(2, 1, *size)).shape == (2, 1, *size)
    with pytest.raises(ValueError, match="too small"):
        ResnetGenerator(1, 1, (4, 4), width=4, n_down=2)
    assert auto_patch_layers((8, 8)) == 1 and auto_patch_layers((28, 28)) == 2
    assert auto_patch_layers((256, 256)) == 3  # the paper's 70 x 70 PatchGAN


# --------------------------------------------------------------------------------------------------
# objectives


def test_adversarial_pairs_follow_the_papers() -> None:
    r, f = torch.randn(40, generator=gen(0)), torch.randn(40, generator=gen(1))
    d, g = adversarial_pair("lsgan")  # CycleGAN Eq. (1) with least squares, D halved
    torch.testing.assert_close(g(f), (f - 1) ** 2)
    torch.testing.assert_close(d(r, f), 0.5 * ((r - 1) ** 2 + f**2))
    d, g = adversarial_pair("nonsaturating")  # pix2pix: BCE, D's objective divided by 2
    bce = F.binary_cross_entropy_with_logits
    ref = bce(r, torch.ones(40), reduction="none") + bce(f, torch.zeros(40), reduction="none")
    torch.testing.assert_close(d(r, f), 0.5 * ref)
    torch.testing.assert_close(g(f), bce(f, torch.ones(40), reduction="none"))
    with pytest.raises(ConfigError, match="'hinge', 'lsgan', 'minimax' or 'nonsaturating'"):
        adversarial_pair("wgan-gp")


class Roll(nn.Module):
    """An exactly invertible 'generator': roll the image by ``k`` columns."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: Tensor) -> Tensor:
        return torch.roll(x, self.k, dims=3)


def _cyclegan(**kw) -> CycleGAN:
    cfg = {"width": 4, "n_blocks": 1, "pool_size": 4, **kw}
    return CycleGAN(CycleGANConfig.from_dict(cfg), dataset_info(UNPAIRED))


def test_cycle_loss_is_zero_for_exact_inverse_generators() -> None:
    m = _cyclegan()
    batch = load_dataset(UNPAIRED, "train").get(torch.arange(16))
    a, b = batch["src"], batch["x"]
    m.g_ab, m.g_ba = Roll(1), Roll(-1)  # F = G^-1
    cyc_a, cyc_b = m.cycle_errors(a, b)
    assert torch.equal(cyc_a, torch.zeros(16)) and torch.equal(cyc_b, torch.zeros(16))
    out = m.loss(batch, "g")
    assert float(out.logs["cycle"]) == 0.0
    idt = (torch.roll(b, 1, 3) - b).abs().flatten(1).mean(1)
    idt = idt + (torch.roll(a, -1, 3) - a).abs().flatten(1).mean(1)
    assert float(out.logs["identity"]) == pytest.approx(float(idt.mean()), rel=1e-6)
    assert float(out.logs["g_loss"]) == pytest.approx(
        float(out.logs["g_adv"]) + 10 * 0.5 * float(idt.mean()), rel=1e-5
    )
    m.g_ba = Roll(1)  # not an inverse: F(G(a)) is a rolled by 2 columns
    cyc_a, _ = m.cycle_errors(a, b)
    torch.testing.assert_close(cyc_a, (torch.roll(a, 2, 3) - a).abs().flatten(1).mean(1))
    assert (cyc_a > 0).all()


def test_image_pool_returns_new_or_stored_images() -> None:
    torch.manual_seed(0)
    pool = ImagePool(4, (1, 1, 1))
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and int(pool.count) == 4  # filling
    stored = set(pool.images.flatten().tolist())
    from_pool = 0
    for v in range(4, 404):
        out = float(pool.query(torch.full((1, 1, 1, 1), float(v))))
        if out != v:
            assert out in stored  # an older image, which the new one replaced
            from_pool += 1
        stored = set(pool.images.flatten().tolist())
        assert len(stored) == 4
    assert abs(from_pool - 200) < 4 * math.sqrt(400 * 0.25)  # probability 1/2


def test_each_step_updates_only_its_own_player() -> None:
    data = load_dataset(PAIRS, "train")
    batch = data.get(torch.arange(8))
    for m in [Pix2Pix(Pix2PixConfig(width=4), data.info), _cyclegan()]:
        groups = m.param_groups()
        for group, other in [("d", "g"), ("g", "d")]:
            m.zero_grad(set_to_none=True)
            m.loss(batch, group).loss.backward()
            assert all(p.grad is not None for p in groups[group])
            assert all(p.grad is None for p in groups[other])
        with pytest.raises(ConfigError, match="choose 'd' or 'g'"):
            m.loss(batch)


def test_models_refuse_the_wrong_data_and_shapes() -> None:
    with pytest.raises(ConfigError, match="needs an image-to-image dataset, not 'digits'"):
        Pix2Pix(Pix2PixConfig(), dataset_info("digits"))
    with pytest.raises(ConfigError, match=r"is unpaired.*'cyclegan'"):
        Pix2Pix(Pix2PixConfig(), dataset_info(UNPAIRED))
    m = Pix2Pix(Pix2PixConfig(width=4), dataset_info(PAIRS)).eval()
    with pytest.raises(ConfigError, match=r"shape \(B, 1, 8, 8\).*got \(2, 1, 28, 28\)"):
        m.translate(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ConfigError, match="one way only"):
        m.translate(torch.zeros(2, 1, 8, 8), reverse=True)
    with pytest.raises(ConfigError, match="batch\\['src'\\]"):
        m.loss({"x": torch.zeros(2, 1, 8, 8)}, "g")
    test = load_dataset(PAIRS, "test")
    src = test.get(torch.arange(5))["src"]
    torch.testing.assert_close(m.sample(5), m.translate(src))  # no cond: the test sources
    torch.testing.assert_close(m.sample(5, cond=src), m(src))


# --------------------------------------------------------------------------------------------------
# training through the one Trainer


def test_pix2pix_beats_the_identity_baseline_on_held_out_pairs(tmp_path, fast_train) -> None:
    """200 steps (a few seconds on one CPU thread): the translation's L1 on the 359 held-out
    pairs is a fraction of the identity baseline's (measured: 0.18 vs 0.56)."""
    over = {**fast_train, "width": 16, "ckpt_every": 0, "log_every": 50}
    run = genzoo.train("pix2pix", PAIRS, steps=200, out=tmp_path / "p2p", overrides=over)
    res = genzoo.evaluate(run)
    assert res["n"] == 359
    assert res["l1_identity"] == pytest.approx(0.5576, abs=1e-3)  # |dilate(x) - x|, fixed data
    assert res["l1"] < 0.4 * res["l1_identity"], res
    model = genzoo.load(run)
    test = load_dataset(PAIRS, "test").all()
    l1 = (model.translate(test["src"]) - test["x"]).abs().mean()
    assert float(l1) == pytest.approx(res["l1"], rel=1e-5)


def test_cyclegan_trains_and_resumes_bit_exactly(tmp_path, fast_train) -> None:
    """The history pool lives in buffers and draws from the saved RNG: 3 + 3 steps give the
    weights and pools of 6 steps; evaluation reports the cycle errors."""
    common = {**fast_train, "width": 4, "n_blocks": 1, "pool_size": 8, "batch_size": 8}
    straight = genzoo.train("cyclegan", UNPAIRED, steps=6, out=tmp_path / "a", overrides=common)
    half = genzoo.train("cyclegan", UNPAIRED, steps=3, out=tmp_path / "b", overrides=common)
    genzoo.train(resume=half, steps=6, overrides=fast_train)
    fa, _ = read_checkpoint(find_checkpoint(straight))
    fb, _ = read_checkpoint(find_checkpoint(half))
    assert int(fa["model"]["pool_a.count"]) == 8
    for k, v in fa["model"].items():
        assert torch.equal(v, fb["model"][k]), k
    res = genzoo.evaluate(straight, n=32)
    assert {"cycle_a", "cycle_b", "l1", "l1_identity", "l1_reverse"} <= set(res)
    model = genzoo.load(straight)
    b = load_dataset(UNPAIRED, "test").get(torch.arange(32))
    back = model.translate(model.translate(b["src"]), reverse=True)
    assert float((back - b["src"]).abs().mean()) == pytest.approx(res["cycle_a"], rel=1e-5)


# --------------------------------------------------------------------------------------------------
# genzoo translate


def test_translate_cli_round_trip_and_wrong_shape(tmp_path, fast_train, capsys) -> None:
    over = {**fast_train, "width": 4, "ckpt_every": 0}
    run = genzoo.train("pix2pix", PAIRS, steps=3, out=tmp_path / "p", overrides=over)
    model = genzoo.load(run)
    test = load_dataset(PAIRS, "test")
    src = test.get(torch.arange(1))["src"]
    img = write_image(src, test.info, tmp_path / "digit.png")
    assert Image.open(img).size == (8, 8) and Image.open(img).mode == "L"
    back, note = read_image(img, test.info)
    assert note == "" and torch.equal(back, src)  # levels survive the 8-bit file exactly
    out = tmp_path / "out.png"
    assert main(["translate", str(run), str(img), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    got = np.asarray(Image.open(out), dtype=np.float64)  # (8, 8) in 0..255
    want = model_to_levels(model.translate(src), 17)[0, 0].double().numpy() * 255 / 16
    np.testing.assert_array_equal(got, np.rint(want))
    # a colour picture with the same aspect ratio is converted and resized to 8 x 8
    big = tmp_path / "big.png"
    Image.open(img).convert("RGB").resize((32, 32), Image.Resampling.NEAREST).save(big)
    assert main(["translate", str(run), str(big)]) == 0
    assert "resized from 32x32 to 8x8" in capsys.readouterr().out
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "big-translated.png")), got)
    # another aspect ratio: one sentence naming both sizes, exit status 2
    wrong = tmp_path / "wrong.png"
    Image.new("L", (30, 20)).save(wrong)
    assert main(["translate", str(run), str(wrong)]) == 2
    err = capsys.readouterr().err
    assert "30x20" in err and "8x8" in err and "Traceback" not in err
    assert main(["translate", str(run), str(tmp_path / "missing.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = src.clone()
    bad[0, 0, 0, 0] = float("nan")  # NaN sources, and a non-bool ema, are one sentence each
    with pytest.raises(ConfigError, match="NaN"):
        model.translate(bad)
    with pytest.raises(ConfigError, match="NaN"):
        model.sample(1, cond=bad)
    with pytest.raises(ConfigError, match="ema = 'x'"):
        genzoo.load(run, ema="x")


def test_translate_refuses_a_model_that_does_not_translate(tmp_path, fast_train, capsys) -> None:
    cls = MODELS.get("gan")
    assert not hasattr(cls, "translate")
    over = {**fast_train, "hidden": [8], "latent_dim": 2, "ckpt_every": 0}
    run = genzoo.train("gan", "toy2d:8gaussians", steps=2, out=tmp_path / "g", overrides=over)
    img = tmp_path / "x.png"
    Image.new("L", (8, 8)).save(img)
    assert main(["translate", str(run), str(img)]) == 2
    assert "does not translate images" in capsys.readouterr().err
