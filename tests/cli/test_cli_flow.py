"""The user's path through the CLI: train, eval, sample (png and npy), resume."""

import json
import math

import numpy as np
from PIL import Image

from genzoo.cli import main


def test_vae_train_eval_sample(tmp_path, capsys):
    run = tmp_path / "vae"
    args = ["train", "vae", "--data", "digits", "--steps", "300", "--out", str(run)]
    assert main([*args, "progress=false", "lr=2e-3", "tensorboard=false"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 359  # the whole digits test split
    assert res["iwae64"] >= res["elbo"]  # a tighter bound (Burda et al., Thm. 1)
    d, levels = 64, 17
    for k in ("elbo", "iwae64"):  # bits/dim on [0, L) from nats on [-1, 1]^D
        expect = (-res[k] + d * math.log(levels / 2)) / (d * math.log(2))
        assert math.isclose(res[f"{k}_bpd"], expect, rel_tol=1e-9)
    assert 0 < res["iwae64_bpd"] < math.log2(levels)  # better than uniform over 17 levels
    assert (run / "eval.json").is_file()

    assert main(["eval", str(run)]) == 0
    text = capsys.readouterr().out
    assert "bits/dim" in text and "nats/example" in text

    npy, png = tmp_path / "s.npy", tmp_path / "s.png"
    assert main(["sample", str(run), "--n", "10", "--out", str(npy)]) == 0
    x = np.load(npy)
    assert x.shape == (10, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert main(["sample", str(run), "--n", "16", "--out", str(png)]) == 0
    assert Image.open(png).size[0] > 8 * 4


def test_points_sample_png_is_a_scatter_plot(tmp_path, capsys):
    run = tmp_path / "ddpm"
    args = ["train", "ddpm", "--data", "toy2d:moons", "--steps", "20", "--out", str(run)]
    assert main([*args, "progress=false", "timesteps=50"]) == 0
    assert (run / "metrics.jsonl").is_file() and (run / "config.yaml").is_file()
    assert list((run / "samples").glob("*.png"))
    out = tmp_path / "p.npy"
    assert main(["sample", str(run), "--n", "7", "--out", str(out), "--sampler", "ddim"]) == 0
    assert np.load(out).shape == (7, 2)
    assert main(["train", "--resume", str(run), "--steps", "30"]) == 0
    lines = (run / "metrics.jsonl").read_text().strip().splitlines()
    assert json.loads(lines[-1])["step"] == 30
    capsys.readouterr()
    assert main(["list", "models"]) == 0
    assert "ddpm" in capsys.readouterr().out
