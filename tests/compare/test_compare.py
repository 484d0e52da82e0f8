"""genzoo compare: the three files, a self-contained HTML page, re-use of finished runs."""

import json
import re

from genzoo.cli import main


def test_compare_writes_reports_and_reuses_runs(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--data", "toy2d:8gaussians", "--models", "vae,edm", "--steps", "30"]
    args += ["--n", "300", "--out", str(out)]
    assert main(args) == 0
    res = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in res["rows"]] == ["vae", "edm"]
    for r in res["rows"]:
        assert r["status"] == "ok" and r["params"] > 0 and r["fd"] >= 0
        assert r["steps"] == 30 and r["length"] == "30 steps"  # fixed work, not a budget
        assert 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
        assert r["eval_settings"]["n_samples"] == 300  # every number keeps its settings
    vae = res["rows"][0]
    assert vae["nll_kind"] == "bound" and vae["nll_bpd"] is not None
    assert res["rows"][1]["nfe"] == 35  # EDM's Heun 18 steps: 2 * 18 - 1 evaluations
    md = (out / "report.md").read_text()
    assert "| diffusion | edm |" in md and "Floor" in md
    page = (out / "report.html").read_text()
    assert "<table>" in page and page.count("<tr>") == 3  # header and two models
    # report.md's per-model lines (modes covered) are on the page too, and each grid is titled
    assert md.count("modes covered") == 2 and page.count("modes covered") == 2
    assert "<figcaption>vae: FD " in page and "30 steps</figcaption>" in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)  # offline

    # A second run re-uses the finished runs: nothing is retrained.
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/compare.json")}
    capsys.readouterr()
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/compare.json")} == stamps
    # ... but not runs trained for another length
    assert main([*args[:-2], "--steps", "31", "--out", str(out)]) == 2
    assert "was trained for '30 steps'" in capsys.readouterr().err

    # Fixed steps with the run's seed: the same numbers in a fresh folder (CPU, same threads).
    again = tmp_path / "again"
    assert main([*args[:4], "vae", *args[5:-2], "--out", str(again)]) == 0
    vae2 = json.loads((again / "results.json").read_text())["rows"][0]
    assert vae2["fd"] == vae["fd"] and vae2["nll_bpd"] == vae["nll_bpd"]


def test_compare_length_errors_are_one_sentence(tmp_path, capsys):
    for extra, word in [
        (["--budget", "0"], "'0' must be a positive duration"),
        (["--budget", "-5s"], "'-5s'"),
        (["--steps", "0"], "--steps 0 must be at least 1"),
        (["--steps", "5", "--budget", "5s"], "not both"),
        (["--n", "0"], "--n 0 must be at least 6"),  # was a torch.cat traceback after training
        (["--n", "5"], "5 nearest neighbours"),  # was refused by the metric after training
    ]:
        code = main(["compare", "--data", "toy2d:moons", *extra, "--out", str(tmp_path / "c")])
        err = capsys.readouterr().err
        assert code == 2 and word in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()  # nothing written


def test_compare_rejects_unknown_model(tmp_path, capsys):
    code = main(["compare", "--data", "toy2d:moons", "--models", "vea", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "'vea'" in err and "Traceback" not in err


def test_compare_on_audio_is_one_sentence(tmp_path, capsys):
    code = main(["compare", "--data", "tones", "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "no line-up for audio data such as 'tones'" in err and "'images' or 'points'" in err
    assert "genzoo eval RUN --samples N" in err
    assert not (tmp_path / "c").exists()
