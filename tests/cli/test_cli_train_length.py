"""Training length and --resume: closed-form models need no length; what --resume would ignore
or could not train is one sentence, and nothing is written."""

import pytest
from cli_helpers import one_error, run_cli

from genzoo.cli import main
from genzoo.data import load_dataset
from genzoo.runs import open_run

QUIET = ["progress=false", "tensorboard=false"]


@pytest.fixture(scope="module")
def moons_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("resume") / "ddpm"
    argv = ["train", "ddpm", "--data", "toy2d:moons", "--steps", "2", "--out", str(run), *QUIET]
    assert main(argv) == 0
    return run


def snapshot(run):
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_closed_form_model_trains_without_a_length(capsys, tmp_path):
    """`genzoo train ppca --data digits` (docs/autoencoders.md) fits on the whole training set."""
    out = tmp_path / "ppca"
    code, text, _ = run_cli(capsys, "train", "ppca", "--data", "digits", "--out", out, *QUIET)
    assert code == 0 and str(out) in text
    run = open_run(out)
    assert run.step == 1 and int(run.model.n_fit) == len(load_dataset("digits", "train"))


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["vae"], ["'ddpm'", "'vae'"]),
        (["--data", "digits"], ["'toy2d:moons'", "'digits'"]),
        (["--out", "elsewhere"], ["'elsewhere'", "own directory"]),
        (["--name", "other"], ["'other'", "--name"]),
        (["--budget", "10s"], ["Nothing was trained", "step 2", "--budget 10s", "--steps 4"]),
        (["--steps", "2"], ["Nothing was trained", "--steps is 2"]),
        (["--steps", "0"], ["--steps 0", "at least 1"]),  # zero is never "not given"
        (["--budget", "0"], ["'0'", "positive"]),
    ],
)
def test_resume_refuses_what_it_would_ignore_or_not_train(capsys, moons_run, args, needles):
    before = snapshot(moons_run)
    code, _, err = run_cli(capsys, "train", "--resume", moons_run, *args)
    one_error(code, err, *needles)
    assert snapshot(moons_run) == before  # nothing written: not even "run saved"


def test_resume_accepts_the_runs_own_model_data_and_out(capsys, tmp_path, moons_run):
    run = tmp_path / "copy"
    assert (
        main(["train", "ddpm", "--data", "toy2d:moons", "--steps", "1", "--out", str(run), *QUIET])
        == 0
    )
    argv = ["train", "ddpm", "--data", "toy2d:moons", "--out", run, "--resume", run, "--steps", 3]
    code, text, _ = run_cli(capsys, *argv)
    assert code == 0 and str(run) in text
    assert open_run(run).step == 3


def test_budget_reached_on_resume_says_so(capsys, tmp_path):
    run = tmp_path / "b"
    assert (
        main(
            [
                "train",
                "ddpm",
                "--data",
                "toy2d:moons",
                "--budget",
                "0.3s",
                "--out",
                str(run),
                *QUIET,
            ]
        )
        == 0
    )
    before = snapshot(run)
    code, _, err = run_cli(capsys, "train", "--resume", run, "--budget", "0.01s")
    one_error(code, err, "Nothing was trained", "0.01s", "a total over the run", "--budget")
    assert snapshot(run) == before
