"""benchmarks/text_to_image.py at a few steps: one row per model and guidance scale in the JSON
and in the printed table (the same numbers), the real images at FD 0 from themselves, accuracies
and CLIP scores in range, and the guidance plot and prompt grids saved."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("t2i")
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "text_to_image.py"
    cmd = [sys.executable, str(script), "--out", str(out / "runs"), "--pictures", str(out / "img")]
    cmd += ["--diffusion-steps", "2", "--clip-steps", "2", "--vqvae-steps", "2", "--ar-steps", "2"]
    cmd += ["--n-single", "6", "--n-pair", "2", "--guidance", "0", "3", "--sample-steps", "2"]
    cmd += ["--judge-steps", "20", "--judge-n", "200"]
    env = {**os.environ, "GENZOO_CACHE": str(out / "cache")}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return out, json.loads((out / "runs" / "results.json").read_text()), proc.stdout


def test_rows_and_table_agree(results):
    _, res, stdout = results
    assert res["n_prompts"] == {"single": 6, "total": 8}
    assert res["real_images"]["fd"] == pytest.approx(0.0, abs=1e-3)
    rows = [("t2i-diffusion", r) for r in res["diffusion"].items()]
    rows += [("t2i-vq", r) for r in res["t2i_vq"].items()]
    assert [w for _, (w, _) in rows] == ["0.0", "3.0"] * 2
    for model, (w, r) in rows:
        for k in ("single_all", "single_colour", "single_shape", "pair_count", "pair_words"):
            assert 0.0 <= r[k] <= 1.0
        assert r["single_all"] <= min(r["single_colour"], r["single_shape"], r["single_count"])
        assert 0.0 <= r["clip_score"] <= 100.0 and r["fd"] > 0
        line = f"| {model} | w = {float(w):g} | {100 * r['single_all']:.1f}% |"
        assert line in stdout
        assert stdout.split(line)[1].split("\n")[0].endswith(f"| {r['clip_score']:.1f} |")


def test_pictures_are_written(results):
    out, _, _ = results
    for name in ("t2i_guidance.png", "t2i_diffusion.png", "t2i_vq.png"):
        assert (out / "img" / name).stat().st_size > 10_000
