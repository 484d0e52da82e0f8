"""`genzoo --version` and `genzoo info RUN` (genzoo.runs.info)."""

import json
import re
from pathlib import Path

import pytest
from safetensors import safe_open

from genzoo.cli import main

ROOT = Path(__file__).parents[2]
RUNS = ROOT / "tests" / "fixtures" / "old_runs"


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    want = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1]
    assert capsys.readouterr().out.strip() == f"genzoo {want}"


def test_info_reports_the_run(capsys):
    """Parameters counted as the checkpoint's safetensors file counts them; the step of its
    state.json; capabilities as the contract defines them; only the settings changed."""
    run = RUNS / "edm-dit"
    assert main(["info", str(run), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    ckpt = run / "checkpoints" / "step_000000002"
    with safe_open(ckpt / "model.safetensors", "pt") as f:
        numel = sum(_numel(f, k) for k in f.keys())
    assert info["parameters"] == numel
    assert info["step"] == json.loads((ckpt / "state.json").read_text())["step"] == 2
    assert info["checkpoints"] == [2]
    assert (info["model"], info["family"], info["data"]) == ("edm", "diffusion", "digits")
    assert info["capabilities"] == ["Samples", "LikelihoodBound"]
    assert (
        info["model_config"]["class_conditional"] is True
        and "sigma_data" not in info["model_config"]
    )
    last = json.loads((run / "metrics.jsonl").read_text().strip().splitlines()[-1])
    assert info["last_metrics"] == last
    assert main(["info", str(RUNS / "realnvp")]) == 0
    text = capsys.readouterr().out
    assert "realnvp (flows)" in text and "ExactLikelihood" in text and "LatentSpace" in text


def _numel(f, key):
    n = 1
    for d in f.get_slice(key).get_shape():
        n *= d
    return n


def test_info_of_a_missing_run_is_one_sentence(capsys, tmp_path):
    assert main(["info", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
