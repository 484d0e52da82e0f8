"""benchmarks/quality_at_budget.py at CPU sizes: the peer and genzoo train on the same data for
the same budget, every sampler is measured by the same classifier, ablations are recorded."""

import json
import math
import warnings

import pytest
import torch

from genzoo.data import load_dataset


def test_padding_to_the_peer_resolution_is_undone_by_the_crop(bench):
    q = bench("quality_at_budget")
    assert [q.padded_size(h) for h in (7, 8, 28, 32)] == [8, 8, 32, 32]
    x = load_dataset("mnist5k", "test").get(torch.arange(5))["x"]  # (5, 1, 28, 28)
    padded = q.pad_images(x, 32)
    assert padded.shape == (5, 1, 32, 32)
    assert torch.equal(q.crop_images(padded, 28, 28), x)
    assert (padded[..., :2, :] == -1).all() and (padded[..., :, -2:] == -1).all()


def test_peer_unet_is_the_6_5m_parameter_configuration(bench):
    pytest.importorskip("diffusers")
    q = bench("quality_at_budget")
    net = q.peer_unet(load_dataset("mnist5k").info, tiny=False)
    assert abs(q.n_params(net) - 6.5e6) <= 0.05 * 6.5e6
    assert net.config.block_out_channels == (64, 128, 128) and net.config.sample_size == 32


def test_merging_results_replaces_only_what_was_measured_again(bench):
    q = bench("quality_at_budget")

    def row(budget, fd):
        return {
            "impl": "genzoo",
            "variant": "recipe",
            "budget": budget,
            "unit": "s",
            "sampler": "heun",
            "sampler_steps": 18,
            "fd": fd,
        }

    merged = q._merge([row(60, 5.0), row(240, 3.0)], [row(240, 2.0), row(900, 1.0)])
    assert sorted((r["budget"], r["fd"]) for r in merged) == [(60, 5.0), (240, 2.0), (900, 1.0)]


def test_tiny_run_end_to_end_on_cpu(bench, tmp_path, monkeypatch):
    pytest.importorskip("diffusers")
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path / "cache"))
    q = bench("quality_at_budget")
    out = tmp_path / "qab"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few samples for the FD: expected at this size
        res = q.main(
            [
                "--tiny",
                "--steps",
                "4,8",
                "--n",
                "32",
                "--ablate",
                "--ablations",
                "no-ema,ddpm-eps",
                "--out",
                str(out),
                "--json",
                str(tmp_path / "results"),
            ]
        )
    rows = res["new_rows"]
    main = [r for r in rows if r["variant"] in ("recipe", "example")]
    got = {(r["impl"], r["budget"], r["sampler"], r["nfe"]) for r in main}
    assert got == {
        *{("diffusers", b, "ddim", 4) for b in (4.0, 8.0)},
        *{("diffusers", b, "ddpm", 8) for b in (4.0, 8.0)},
        *{("genzoo", b, "heun", 5) for b in (4.0, 8.0)},  # Heun 3 steps: 2 * 3 - 1 NFE
        *{("genzoo", b, "dpmpp-2m", 4) for b in (4.0, 8.0)},
        *{("genzoo", b, "ddim", 4) for b in (4.0, 8.0)},
    }
    for r in rows:
        assert r["steps_trained"] == r["budget"]  # exactly the budget, on both sides
        assert math.isfinite(r["fd"]) and r["fd"] > 0
        assert 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
        assert 0 <= r["classes"] <= 10 and r["n"] == 32
    assert len({r["data_hash"] for r in rows}) == 1  # the peer and genzoo saw the same images
    abl = {r["variant"]: r for r in rows if r["variant"] not in ("recipe", "example")}
    assert set(abl) == {"no-ema", "ddpm-eps"}
    assert abl["ddpm-eps"]["sampler"] == "ddim"  # compared with the recipe's own DDIM row
    for r in abl.values():
        assert math.isfinite(r["fd_change"])
    assert res["floor"]["fd"] < min(r["fd"] for r in main)  # real data beats 8-step models
    for name in (
        "results.json",
        "fd_vs_budget.png",
        "grid-genzoo-8steps.png",
        "grid-diffusers-8steps.png",
    ):
        assert (out / name).is_file()
    assert (out / "fd_vs_budget.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (path,) = (tmp_path / "results").glob("quality_at_budget-*.json")
    doc = json.loads(path.read_text())
    assert doc["complete"] and doc["data"] == "digits" and len(doc["rows"]) == len(rows)
    # each recipe row beside each peer sampler at the same budget: 3 x 2 per budget
    assert len(doc["comparisons"]) == 12
    for c in doc["comparisons"]:
        assert c["figure"] == "FD" and c["higher_is_better"] is False
        assert math.isclose(c["ratio"], c["genzoo"] / c["peer_value"])
