"""Runs saved by genzoo before the model contract (tests/fixtures/old_runs, written by commit
acc286e; see its README) still load, sample the very same numbers, evaluate and resume."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import genzoo
from genzoo.core.protocol import GenerativeModel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "old_runs"
OPTIONS: dict[str, dict] = json.loads((FIXTURES / "sample_options.json").read_text())
SUB_RUNS = ("ldm", "vqvae-prior")  # their config.yaml names other runs by an OLD_RUNS path
RESUMABLE = ("ddpm-unet", "gpt-text", "dcgan")  # the fixtures that keep their trainer state
WRITER_THREADS = 2  # torch's intra-op threads when the fixtures were written


@pytest.fixture(scope="module")
def old_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the fixtures with ``OLD_RUNS`` replaced by the copy's folder."""
    root = tmp_path_factory.mktemp("old") / "old_runs"
    shutil.copytree(FIXTURES, root)
    for key in SUB_RUNS:
        cfg = root / key / "config.yaml"
        cfg.write_text(cfg.read_text().replace("OLD_RUNS", str(root)))
    return root


@pytest.fixture(scope="module")
def expected() -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURES / "expected_samples.safetensors"))


def test_the_fixtures_cover_every_run() -> None:
    runs = {p.name for p in FIXTURES.iterdir() if (p / "config.yaml").is_file()}
    assert runs == set(OPTIONS) and len(runs) == 14
    assert set(load_file(str(FIXTURES / "expected_samples.safetensors"))) == runs


@pytest.mark.parametrize("key", sorted(OPTIONS))
def test_old_run_loads_and_samples_identically(
    old_runs: Path, expected: dict[str, torch.Tensor], key: str
) -> None:
    run = old_runs / key
    loaded = genzoo.open_run(run)
    assert isinstance(loaded.model, GenerativeModel) and not loaded.model.training
    assert loaded.step == 2 and loaded.config["model"] == loaded.model.name
    torch.set_num_threads(WRITER_THREADS)  # restored by the autouse fixture of tests/conftest
    x = genzoo.sample(run, 6, seed=3, **OPTIONS[key])
    want = expected[key]
    got = x.float() if x.is_floating_point() else x
    assert got.shape == want.shape and got.dtype == want.dtype
    if got.is_floating_point():
        # Bit-identical here; the tolerance only covers the summation order of float kernels,
        # which depends on the thread count and the CPU (at one thread vae-gauss, vqvae, dcgan,
        # ldm and vqvae-prior differ by 7e-9 .. 4e-7). A changed random draw moves samples by O(1).
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    else:  # token ids: exactly the same draws
        assert torch.equal(got, want)


@pytest.mark.parametrize("key", sorted(OPTIONS))
def test_old_run_evaluates(old_runs: Path, key: str) -> None:
    res = genzoo.evaluate(old_runs / key, n=16)
    assert res["step"] == 2 and res["n"] == 16
    numbers = {k: v for k, v in res.items() if isinstance(v, float)}
    assert numbers and all(math.isfinite(v) for v in numbers.values()), res
    for k in ("log_prob", "elbo"):  # likelihoods and bounds are also given in bits/dim
        assert (f"{k}_bpd" in res) == (k in res), res


@pytest.mark.parametrize("key", RESUMABLE)
def test_old_run_resumes_from_its_step(old_runs: Path, tmp_path: Path, key: str) -> None:
    run = tmp_path / key
    shutil.copytree(old_runs / key, run)
    before = genzoo.load(run, device="cpu").state_dict()
    genzoo.train(resume=run, steps=3, overrides={"progress": False, "tensorboard": False})
    after = genzoo.open_run(run, device="cpu")
    assert after.step == 3
    changed = [k for k, v in after.model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed  # one more optimizer step moved the weights
