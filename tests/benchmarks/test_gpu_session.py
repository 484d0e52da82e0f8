"""benchmarks/gpu_session.py, the prepared commands of a short GPU lease: the parts fit the lease
(under 9 minutes per mode), every part's command line is accepted by its benchmark as written
(a typo would cost device time), the smoke variant of each really is CPU-sized, and a part that
overruns its timeout is stopped while what it printed is kept."""

from __future__ import annotations

import sys
import time

import pytest


def _parts(gs):
    return gs.speed_parts(".nanogpt/model.py"), gs.quality_parts("/tmp/qab")


def test_each_mode_fits_one_device_command(bench):
    gs = bench("gpu_session")
    speed, quality = _parts(gs)
    assert sum(p.timeout_s for p in speed) < gs.SPEED_LIMIT_S <= 540  # under 9 minutes
    assert sum(p.timeout_s for p in quality) < gs.QUALITY_LIMIT_S < 600  # one 10-minute call
    names = [p.name for p in speed]
    assert names[:5] == ["graph-check", "gpt2", "unet128", "unet512", "sample"]  # priority


@pytest.mark.parametrize("smoke", [False, True])
def test_every_command_line_is_accepted_by_its_benchmark(bench, smoke):
    gs = bench("gpu_session")
    for part in [p for ps in _parts(gs) for p in ps]:
        cmd = gs.command(part, gs.Path("results"), smoke)
        if part.script == "pytest":  # the graph check: its test file exists and selects tests
            assert cmd[1:3] == ["-m", "pytest"] and (gs.ROOT / cmd[3]).is_file()
            assert "def test_cuda_graph" in (gs.ROOT / cmd[3]).read_text()
            continue
        module = bench(part.script.removesuffix(".py"))
        args = module.parse_args(cmd[2:])  # exits (SystemExit) on a bad flag or variant
        assert args.json == "results"
        if smoke:
            assert args.tiny and args.device == "cpu"
            assert getattr(args, "batch", 0) <= 32 and getattr(args, "n", 0) <= 64
        else:
            assert not args.tiny and args.device == "auto"


def test_a_part_past_its_timeout_is_stopped_and_its_output_kept(bench, tmp_path):
    gs = bench("gpu_session")
    part = gs.Part("slow", 1, "x.py", ())
    cmd = [sys.executable, "-c", "import time; print('row 1', flush=True); time.sleep(60)"]
    t0 = time.perf_counter()
    with open(tmp_path / "log", "w") as log:
        res = gs.run_part(part, cmd, {}, 1.5, log)
    assert res["timed_out"] and res["exit"] != 0
    assert time.perf_counter() - t0 < 20
    assert "row 1" in (tmp_path / "log").read_text()


def test_unknown_part_is_named_with_the_choices(bench, capsys):
    gs = bench("gpu_session")
    with pytest.raises(
        SystemExit, match="Unknown part 'unet' of mode speed; choose from graph-check"
    ):
        gs.main(["speed", "--parts", "unet", "--dry-run"])


def test_quality_plot_and_grids_travel_back_and_nothing_else(bench, tmp_path):
    gs = bench("gpu_session")
    src = tmp_path / "qab"
    (src / "genzoo-240s" / "checkpoints").mkdir(parents=True)  # a run: stays behind
    for name in ("fd_vs_budget.png", "grid-genzoo-240s.png", "grid-diffusers-240s.png"):
        (src / name).write_bytes(b"png")
    (src / "results.json").write_text("{}")
    got = gs.collect_quality_files(src, tmp_path / "out" / "qab")
    assert sorted(got) == ["fd_vs_budget.png", "grid-diffusers-240s.png", "grid-genzoo-240s.png"]
    assert sorted(f.name for f in (tmp_path / "out" / "qab").iterdir()) == sorted(got)
