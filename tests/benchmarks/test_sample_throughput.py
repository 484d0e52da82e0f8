"""benchmarks/sample_throughput.py at CPU sizes: every sampler and variant is measured, NFE are
counted as the samplers define them, graph variants reproduce the eager samples, ratios finite."""

import json
import math

import pytest


def test_tiny_run_end_to_end_on_cpu(bench, tmp_path):
    pytest.importorskip("diffusers")
    st = bench("sample_throughput")
    res = st.main(
        [
            "--tiny",
            "--device",
            "cpu",
            "--cuda-graph",
            "--repeats",
            "1",
            "--steps",
            "2",
            "--ddpm",
            "--ddpm-steps",
            "3",
            "--out",
            str(tmp_path / "s.json"),
            "--json",
            str(tmp_path / "results"),
        ]
    )
    rows = res["rows"]
    got = {(r["impl"], r["sampler"], r["variant"]) for r in rows}
    assert got == {
        *{
            ("genzoo", s, v)
            for s in ("ddim", "heun", "dpmpp-2m", "ancestral")
            for v in ("eager", "cuda-graph")
        },
        ("diffusers", "ddim", "eager"),
        ("diffusers", "ddpm", "eager"),
    }
    nfe = {(r["impl"], r["sampler"]): r["nfe"] for r in rows}
    assert nfe[("genzoo", "ddim")] == 2 and nfe[("diffusers", "ddim")] == 2
    assert nfe[("genzoo", "heun")] == 1  # 1 Heun step to sigma = 0 is one Euler step
    assert nfe[("genzoo", "dpmpp-2m")] == 2
    assert nfe[("genzoo", "ancestral")] == 3 and nfe[("diffusers", "ddpm")] == 3
    for r in rows:
        assert r["img_s"] > 0 and math.isfinite(r["img_s"])
        if r["impl"] == "genzoo":
            assert r["max_diff_vs_eager"] == 0.0  # no graph on a CPU: the very same samples
    params = {r["impl"]: r["params"] for r in rows}
    assert params["genzoo"] == params["diffusers"]
    assert len(res["summary"]) == 2
    for s in res["summary"]:
        assert s["ratio_vs_eager"] > 0 and math.isfinite(s["ratio_vs_best"])
    assert (tmp_path / "s.json").is_file()
    (path,) = (tmp_path / "results").glob("sample_throughput-*.json")
    doc = json.loads(path.read_text())
    assert doc["complete"] and len(doc["rows"]) == len(rows)
    for c in doc["comparisons"]:  # each genzoo row against diffusers' DDIM rows of this run
        assert c["peer"] == "diffusers" and c["peer_sampler"].startswith("ddim")
        assert math.isclose(c["ratio"], c["genzoo"] / c["peer_value"])
    assert len(doc["comparisons"]) == 8  # 8 genzoo rows, one DDIM peer row (eager) each
