"""`genzoo sample` passes what the Python API takes: model options as key=value, --class K,
class guidance; text runs write (and say) .txt. Uses the small saved runs of tests/fixtures."""

from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import one_error, run_cli

from genzoo.core.seeding import make_generator
from genzoo.data.base import model_to_levels
from genzoo.runs import load

RUNS = Path(__file__).parents[1] / "fixtures" / "old_runs"


def test_temperature_option_reaches_the_flow(capsys, tmp_path):
    """temperature=0 maps every draw to f^-1(0): all samples equal; the default spreads them."""
    out0, out1 = tmp_path / "t0.npy", tmp_path / "t1.npy"
    code, text, _ = run_cli(
        capsys, "sample", RUNS / "realnvp", "--n", 6, "--out", out0, "temperature=0"
    )
    assert code == 0 and str(out0) in text
    assert run_cli(capsys, "sample", RUNS / "realnvp", "--n", 6, "--out", out1)[0] == 0
    cold, warm = np.load(out0), np.load(out1)
    assert np.allclose(cold, cold[:1], atol=1e-6)
    assert warm.std(0).min() > 1e-3


def test_options_after_the_flags_and_top_k_for_gpt(capsys, tmp_path):
    """The documented `temperature=... top_k=...` line: top_k=1 is greedy decoding, so every
    sample of the unconditional GPT is the same image; options may follow the flags."""
    out = tmp_path / "g.npy"
    argv = ["sample", RUNS / "gpt-digits", "--n", 3, "--out", out, "temperature=0.8", "top_k=1"]
    assert run_cli(capsys, *argv)[0] == 0
    x = np.load(out)
    assert (x == x[:1]).all()


def test_unknown_option_is_one_sentence_with_the_valid_ones(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "sample", RUNS / "realnvp", "--out", tmp_path / "x.png", "temprature=1"
    )
    one_error(code, err, "'temprature'", "'temperature'")
    code, _, err = run_cli(
        capsys, "sample", RUNS / "pixelcnn", "--out", tmp_path / "x.png", "beam=2"
    )
    one_error(code, err, "'beam'", "'top_k'", "'temperature'")
    argv = ["sample", RUNS / "edm-dit", "--out", tmp_path / "x.png", "temperature=1"]
    one_error(*run_cli(capsys, *argv)[::2], "'temperature'", "'guidance'", "'heun'", "'s_churn'")
    assert not (tmp_path / "x.png").exists()


def test_class_and_guidance_match_the_python_api(capsys, tmp_path):
    """--class 3 --guidance 2 on a class-conditional EDM gives exactly model.sample(cond=3s,
    guidance=2) with the same seed, and differs from --class 4."""
    out3, out4 = tmp_path / "c3.npy", tmp_path / "c4.npy"
    common = ["--n", 4, "--steps", 3, "--seed", 5]
    assert (
        run_cli(
            capsys,
            "sample",
            RUNS / "edm-dit",
            *common,
            "--class",
            3,
            "--guidance",
            2,
            "--out",
            out3,
        )[0]
        == 0
    )
    assert (
        run_cli(
            capsys,
            "sample",
            RUNS / "edm-dit",
            *common,
            "--class",
            4,
            "--guidance",
            2,
            "--out",
            out4,
        )[0]
        == 0
    )
    model = load(RUNS / "edm-dit")
    want = model.sample(
        4, cond=torch.full((4,), 3), guidance=2.0, steps=3, generator=make_generator(5)
    )
    np.testing.assert_allclose(np.load(out3), want.numpy(), atol=1e-5)
    assert not np.allclose(np.load(out3), np.load(out4))


@pytest.mark.parametrize(
    ("run", "args", "needles"),
    [
        ("edm-dit", ["--class", "10"], ["--class 10", "0..9"]),
        ("realnvp", ["--class", "1"], ["--class 1", "no classes"]),
        ("dcgan", ["--class", "1"], ["'dcgan'", "unconditional"]),
        ("ddpm-unet", ["--guidance", "2"], ["--guidance", "--class", "--prompt"]),
        ("pixelcnn", ["--class", "1", "--guidance", "2"], ["'pixelcnn'", "guidance"]),
        ("realnvp", ["--prompt", "a red circle"], ["--prompt", "text-to-image"]),
        ("edm-dit", ["--class", "1", "--guidance", "nan"], ["guidance = nan", ">= 0"]),
        ("edm-dit", ["--class", "1", "--guidance", "-2"], ["guidance = -2.0", ">= 0"]),
    ],
)
def test_class_and_guidance_refusals(capsys, tmp_path, run, args, needles):
    out = tmp_path / "x.png"
    code, _, err = run_cli(capsys, "sample", RUNS / run, "--n", 2, "--out", out, *args)
    one_error(code, err, *needles)
    assert not out.exists()


def test_text_run_writes_and_names_a_txt_file(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, text, _ = run_cli(capsys, "sample", RUNS / "gpt-text", "--n", 2, "length=8")
    assert code == 0 and "samples.txt" in text and "png" not in text
    assert (tmp_path / "samples.txt").read_text().count("----") == 1  # two texts
    code, text, _ = run_cli(
        capsys, "sample", RUNS / "gpt-text", "--n", 2, "--out", "x.txt", "length=8"
    )
    assert code == 0 and "x.txt" in text and (tmp_path / "x.txt").is_file()
    code, _, err = run_cli(capsys, "sample", RUNS / "gpt-text", "--out", "x.png")
    one_error(code, err, "'x.png'", ".txt")
    assert not (tmp_path / "x.png").exists() and not list(tmp_path.glob("*.png"))


def test_a_folder_out_writes_one_png_per_sample_at_the_datas_levels(capsys, tmp_path):
    """`--out folder/` writes sample_0000.png, ... in order, at the data's resolution; each file
    holds its own sample's level k of the 17 of digits, shown as its bin centre (k + 0.5) / 17."""
    npy, folder = tmp_path / "x.npy", tmp_path / "imgs"
    assert run_cli(capsys, "sample", RUNS / "dcgan", "--n", 5, "--out", npy)[0] == 0
    assert run_cli(capsys, "sample", RUNS / "dcgan", "--n", 5, "--out", f"{folder}/")[0] == 0
    from PIL import Image

    files = sorted(folder.glob("*.png"))
    assert [f.name for f in files] == [f"sample_{i:04d}.png" for i in range(5)]
    x = torch.from_numpy(np.load(npy))  # (5, 1, 8, 8) in [-1, 1]
    levels = model_to_levels(x, 17)  # (5, 1, 8, 8) integers 0..16
    shown = ((levels.double() + 0.5) / 17 * 255).round().numpy().astype(np.uint8)
    for f, expected in zip(files, shown, strict=True):
        img = np.asarray(Image.open(f))
        assert img.shape == (8, 8) and np.array_equal(img, expected[0])
