"""Inpainting through the sampling template: RePaint (arXiv:2201.09865) and the replacement method
on the ideal denoiser of a tiny image set, the old CLI pipeline's draws, and ``genzoo inpaint``."""

import pytest
import torch

import genzoo
from genzoo.cli import main
from genzoo.core.errors import ConfigError
from genzoo.data import load_dataset
from genzoo.diffusion import IdealDenoiser
from genzoo.diffusion.guidance import InpaintingDenoiser
from genzoo.diffusion.samplers import run_sampler
from genzoo.models.diffusion.edm import EDM, EDMConfig
from genzoo.runs.inpaint import inpaint, region_mask

TRAIN = load_dataset("digits", "train")
DATA = TRAIN.get(torch.arange(64))["x"]  # (64, 1, 8, 8) bin centres


def _ideal_edm() -> EDM:
    """An EDM whose denoiser is the ideal one of 64 training digits (Karras et al. Eq. 57)."""
    m = EDM(EDMConfig.from_dict({"channels": 4, "sigma_max": 20.0}), TRAIN.info).eval()
    ideal = IdealDenoiser(DATA)
    m.denoise = lambda x, s, c=None: ideal(x, s)
    return m


def _missing_right(out: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image: every hidden pixel within 0.01 of the truth."""
    return ((out - truth) * (1 - mask)).flatten(1).abs().max(1).values < 1e-2


def test_repaint_keeps_known_pixels_and_completes_the_matching_training_image():
    """Known = the upper halves of 32 training digits: RePaint keeps them exactly and fills the
    lower half with the lower half of the training image that has that upper half (the nearest
    one, here itself) for at least 80% of them (measured 91%), far more often than replacement
    (31%); its squared error on the hidden pixels is a tenth of a uniform-noise fill's, and the
    lower halves it draws are training images' lower halves."""
    m = _ideal_edm()
    known = DATA[:32]
    mask = region_mask(tuple(known.shape), "lower")
    g = torch.Generator().manual_seed(0)
    opts = {"steps": 50, "jump_length": 5, "resample": 10}
    out = m.inpaint(known, mask, sampler="repaint", generator=g, **opts)
    assert torch.equal(out * mask, known * mask)  # the known pixels, exactly
    right = _missing_right(out, known, mask).double().mean()
    plain = m.inpaint(known, mask, sampler="heun", steps=50, generator=g)
    right_plain = _missing_right(plain, known, mask).double().mean()
    assert right >= 0.8 and right > right_plain + 0.3, (right, right_plain)
    noise = torch.rand(known.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    err = ((out - known) * (1 - mask)).pow(2).sum()
    err_noise = ((noise - known) * (1 - mask)).pow(2).sum()
    assert err < err_noise / 10, (err, err_noise)
    lower = (slice(None), slice(None), slice(4, 8))
    near = torch.cdist(out[lower].flatten(1), DATA[lower].flatten(1)).min(1).values
    assert (near < 0.05).double().mean() >= 0.9, near  # a training image's lower half


def test_replacement_inpainting_draws_as_the_old_cli_pipeline():
    """The template's replacement path is the old ``genzoo inpaint``: noise drawn first from the
    seeded generator, then any sampler on :class:`InpaintingDenoiser` of the clamped denoiser,
    class labels for a class-conditional model, the output clamped."""
    torch.manual_seed(0)
    m = EDM(EDMConfig.from_dict({"channels": 8, "class_conditional": True}), TRAIN.info).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    batch = load_dataset("digits", "test").get(torch.arange(5))
    x0, y = batch["x"], batch["y"]
    mask = region_mask(tuple(x0.shape), "center")
    out = m.inpaint(
        x0, mask, cond=y, sampler="euler", steps=4, generator=torch.Generator().manual_seed(7)
    )
    g = torch.Generator().manual_seed(7)
    sig = m.sampling_sigmas(4)
    x = torch.randn(x0.shape, generator=g) * m.prior_std(float(sig[0]))
    den = InpaintingDenoiser(m.sampling_denoiser, x0, mask)
    ref = run_sampler("euler", den, x, sig, cond=y, generator=g).clamp(-1, 1)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    assert not torch.equal(out * (1 - mask), x0 * (1 - mask))


def test_region_masks_hide_the_named_part():
    shape = (2, 1, 8, 8)
    hidden = {r: int((region_mask(shape, r)[0, 0] == 0).sum()) for r in ("lower", "left", "center")}
    assert hidden == {"lower": 32, "left": 32, "center": 16}
    assert (region_mask(shape, "upper")[0, 0, :4] == 0).all()
    assert (region_mask(shape, "right")[0, 0, :, 4:] == 0).all()
    with pytest.raises(ConfigError, match="'lower'"):
        region_mask(shape, "middle")


def test_cli_inpaint_runs_repaint_on_a_trained_run(tmp_path, capsys, fast_train):
    """``genzoo inpaint RUN --sampler repaint`` reaches RePaint: the known pixels of the
    completions are the test images' exactly; an unknown sampler is one sentence (exit 2)."""
    over = {**fast_train, "channels": 8, "batch_size": 8, "n_samples": 4}
    run = genzoo.train("edm", "digits", steps=2, out=tmp_path / "edm", overrides=over)
    res = inpaint(run, n=3, sampler="repaint", steps=3, jump_length=2, resample=2)
    assert res.completion.shape == (3, 1, 8, 8)
    torch.testing.assert_close(res.completion * res.mask, res.original * res.mask)
    again = inpaint(run, n=3, sampler="repaint", steps=3, jump_length=2, resample=2)
    assert torch.equal(res.completion, again.completion)  # seeded
    out = tmp_path / "i.png"
    argv = ["inpaint", str(run), "--n", "2", "--steps", "2", "--out", str(out)]
    assert main([*argv, "--sampler", "repaint"]) == 0 and out.stat().st_size > 0
    capsys.readouterr()
    assert main([*argv, "--sampler", "nope"]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "'repaint'" in err and err.count("\n") == 1
    # --steps 0 would read as "the default" below; an --out no writer knows fails only after
    # the sampling: both are one sentence before anything is drawn
    for bad, needle in ((["--steps", "0"], "--steps 0"), (["--out", str(out) + ".xyz"], ".png")):
        assert main([*argv, *bad]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "i.png.xyz").exists()
    assert main(["sample", str(run), "--steps", "0", "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert "--steps 0" in err and err.count("\n") == 1 and not (tmp_path / "s.png").exists()


def test_model_inpaint_checks_its_images_and_mask() -> None:
    """``model.inpaint`` took images of another size or a mask that does not broadcast to a
    ``RuntimeError`` of ``expand_as``, and NaN pixels or a mask of 2 to NaN or mixed images
    without a word: each is one sentence naming the shape or the values."""
    m = EDM(EDMConfig(), load_dataset("digits", "test").info)
    x = torch.zeros(2, 1, 8, 8)
    mask = region_mask((1, 1, 8, 8), "lower")
    cases = [
        (
            torch.zeros(2, 1, 6, 6),
            mask,
            r"shape \(2, 1, 6, 6\); this model inpaints \(n, 1, 8, 8\)",
        ),
        (torch.zeros(1, 8, 8), mask, r"must be a tensor \(n, 1, 8, 8\) of images; got \(1, 8, 8\)"),
        (x, torch.ones(1, 1, 5, 5), r"mask of shape \(1, 1, 5, 5\) does not broadcast"),
        (torch.full_like(x, float("nan")), mask, "must be finite and mask in"),
        (x, mask * 2, "must be finite and mask in"),
    ]
    for images, m_, needle in cases:
        with pytest.raises(ConfigError, match=needle) as err:
            m.inpaint(images, m_, steps=2)
        assert "\n" not in str(err.value)
    g = torch.Generator().manual_seed(0)
    out = m.inpaint(x, mask, steps=2, generator=g)
    assert out.shape == x.shape and bool(torch.isfinite(out).all())
    assert not out.requires_grad  # drawn without autograd, as sample is
