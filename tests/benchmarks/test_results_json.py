"""The JSON record of a benchmark run (benchmarks/benchutil.py, issue 23): it round-trips, names
the command, device, torch version and commit, is valid after every row (a run cut short keeps
what it measured), and pairs each genzoo figure with its peer's figure from the same run."""

from __future__ import annotations

import json
import math

import pytest
import torch


def test_record_round_trips_and_names_the_command_and_device(bench, tmp_path):
    bu = bench("benchutil")
    cpu = torch.device("cpu")
    argv = ["--configs", "unet x", "--json", str(tmp_path / "results")]
    rec = bu.JsonRows(tmp_path / "results", "train_throughput", cpu, argv)
    first = bu.read_json_rows(rec.path)  # written at once: valid before the first row
    assert first["rows"] == [] and first["complete"] is False
    rows = [{"impl": "genzoo", "throughput": 1.5, "params": 3}, {"impl": "peer", "x": None}]
    for r in rows:
        rec.add(r)
        assert bu.read_json_rows(rec.path)["rows"][-1] == r  # rewritten after every row
    cmp = bu.comparison("training throughput", "img/s", 3.0, "peer", 2.0, config="unet")
    path = rec.finish([cmp], notes=["a note"])
    doc = bu.read_json_rows(path)
    assert path.parent == tmp_path / "results" and path.name.startswith("train_throughput-")
    # the command, less where the record went (no machine's folder in a committed file)
    assert doc["command"] == "python benchmarks/train_throughput.py --configs 'unet x'"
    assert doc["device"].startswith("CPU (") and "cpu" in path.name
    assert doc["torch"] == torch.__version__ and doc["complete"] is True
    assert doc["rows"] == rows and doc["notes"] == ["a note"]
    assert doc["comparisons"] == [json.loads(json.dumps(cmp))]
    assert cmp["ratio"] == 1.5 and cmp["config"] == "unet"
    assert doc["git_commit"] != "" and doc["date"].endswith("+00:00")
    assert not list(path.parent.glob("*.tmp"))  # written atomically


def test_commit_outside_a_git_checkout_comes_from_the_environment(bench, tmp_path, monkeypatch):
    bu = bench("benchutil")
    monkeypatch.setattr(bu, "ROOT", tmp_path)  # a copied working tree: no .git
    monkeypatch.setenv("GENZOO_GIT_COMMIT", "abc123")
    assert bu.git_commit() == "abc123"
    monkeypatch.delenv("GENZOO_GIT_COMMIT")
    assert bu.git_commit() == "unknown"


def test_where_records_go(bench, tmp_path):
    bu = bench("benchutil")
    assert bu.json_dir("auto", torch.device("cpu")) is None  # CPU runs are smoke runs
    assert bu.json_dir("auto", torch.device("cuda")) == bu.RESULTS_DIR
    assert bu.json_dir("none", torch.device("cuda")) is None
    assert bu.json_dir(str(tmp_path), torch.device("cpu")) == tmp_path
    with pytest.raises(ValueError, match="lacks"):
        (tmp_path / "x.json").write_text("{}")
        bu.read_json_rows(tmp_path / "x.json")


def test_variant_names(bench):
    tt = bench("train_throughput")
    assert tt.parse_variant("eager") == ("eager", False, False, False)
    assert tt.parse_variant("graph+compile") == ("compile+graph", True, False, True)
    assert tt.parse_variant("channels_last+graph+compile")[0] == "compile+channels_last+graph"
    with pytest.raises(ValueError, match=r"'cudagraph'.*compile, channels_last, graph"):
        tt.parse_variant("compile+cudagraph")


def test_train_throughput_writes_graph_rows_and_peer_figures(bench, tmp_path):
    pytest.importorskip("diffusers")
    tt = bench("train_throughput")
    res = tt.main(
        [
            *("--tiny", "--device", "cpu", "--configs", "dit", "--variants", "eager,graph"),
            *("--steps", "1", "--warmup", "1", "--json", str(tmp_path)),
        ]
    )
    got = [(r["impl"], r["variant"]) for r in res["rows"]]
    assert got == [("genzoo", "eager"), ("diffusers", "eager"), ("genzoo", "graph")]
    assert any("needs a CUDA device" in n for n in res["notes"])  # the CPU fallback, said once
    (path,) = tmp_path.glob("train_throughput-*.json")
    doc = json.loads(path.read_text())
    assert doc["rows"] == json.loads(json.dumps(res["rows"]))
    assert "--variants eager,graph" in doc["command"]
    by = {(c["variant"], c["against"]): c for c in doc["comparisons"]}
    assert set(by) == {("eager", "same variant"), ("graph", "peer eager")}
    rows = {r["variant"] + r["impl"]: r for r in res["rows"]}
    c = by[("graph", "peer eager")]
    assert c["peer"] == "diffusers" and c["peer_variant"] == "eager"
    assert c["genzoo"] == rows["graphgenzoo"]["throughput"]
    assert c["peer_value"] == rows["eagerdiffusers"]["throughput"]
    assert math.isclose(c["ratio"], c["genzoo"] / c["peer_value"])
