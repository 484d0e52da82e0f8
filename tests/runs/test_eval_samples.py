"""``eval`` scores a model's samples where a yardstick exists: by default for models without a
likelihood (GANs), on request (``--samples N``) for the others."""

from __future__ import annotations

import json
import math

import pytest
import torch

from genzoo.cli import main
from genzoo.metrics.evaluate import recognition
from genzoo.runs import evaluate, train


def test_recognition_counts_confident_samples_and_the_classes_they_fill():
    p = torch.tensor(
        [
            [0.95, 0.05, 0.0],  # recognised as 0
            [0.90, 0.10, 0.0],  # exactly at the threshold: recognised
            [0.10, 0.89, 0.01],  # not sure enough
            [0.0, 0.02, 0.98],  # recognised as 2
        ]
    )
    r = recognition(p.clamp_min(1e-12).log())
    assert r["recognized"] == pytest.approx(0.75)
    assert r["classes_covered"] == 2.0 and r["n_classes"] == 3.0
    # a class needs at least 2% of the recognised samples: one stray in 100 does not count
    logits = torch.full((100, 3), -20.0)
    logits[:99, 0] = 20.0
    logits[99, 1] = 20.0
    assert recognition(logits)["classes_covered"] == 1.0
    assert recognition(torch.zeros(5, 4)) == {
        "recognized": 0.0,
        "classes_covered": 0.0,
        "n_classes": 4.0,
    }


def test_eval_of_a_gan_scores_its_samples_and_a_likelihood_model_on_request(
    tmp_path, fast_train, capsys
):
    gan = train("wgan-gp", "toy2d:8gaussians", steps=2, out=tmp_path / "g", overrides=fast_train)
    res = evaluate(gan, n=64)
    assert res["sample_n"] == 500 and math.isfinite(res["sample_fd"]) and res["sample_fd"] > 0
    assert 0 <= res["modes_covered"] <= 8 and 0 <= res["hq_rate"] <= 1
    assert res == json.loads((gan / "eval.json").read_text())
    vae = train("vae", "toy2d:8gaussians", steps=2, out=tmp_path / "v", overrides=fast_train)
    assert "sample_fd" not in evaluate(vae, n=64)  # its bound is the number; no draw by default
    assert main(["eval", str(vae), "--n", "64", "--samples", "200"]) == 0
    out = capsys.readouterr().out
    assert "sample_fd" in out and "modes_covered" in out and "Fréchet distance" in out
    assert main(["eval", str(vae), "--samples", "-1"]) == 2
    assert "--samples -1" in capsys.readouterr().err
