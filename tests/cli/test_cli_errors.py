"""Bad input: one clear sentence naming the bad value, non-zero exit, no traceback."""

import pickle
import subprocess
import sys

import pytest

from genzoo import train
from genzoo.cli import main
from genzoo.train.checkpoint import find_checkpoint


def run_cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_clear_error(code, err, *needles):
    assert code == 2
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("genzoo: error: ")
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_unknown_model(capsys):
    code, _, err = run_cli(capsys, "train", "vea", "--data", "digits", "--steps", "1")
    assert_one_clear_error(code, err, "'vea'", "'vae'", "'ddpm'")


def test_unknown_dataset(capsys):
    code, _, err = run_cli(capsys, "train", "vae", "--data", "digts", "--steps", "1")
    assert_one_clear_error(code, err, "'digts'", "digits")


def test_unknown_config_key(capsys):
    code, _, err = run_cli(capsys, "train", "vae", "--data", "digits", "--steps", "1", "latnt=3")
    assert_one_clear_error(code, err, "'latnt'", "'latent_dim'", "'batch_size'")


def test_bad_config_value(capsys):
    code, _, err = run_cli(capsys, "train", "vae", "--data", "digits", "--steps", "1", "beta=big")
    assert_one_clear_error(code, err, "beta", "'big'")


def test_bad_budget(capsys):
    code, _, err = run_cli(capsys, "train", "vae", "--data", "digits", "--budget", "soon")
    assert_one_clear_error(code, err, "'soon'")


def test_missing_data_root(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "train", "vae", "--data", "mnist", "--steps", "1", "--data-root", str(tmp_path)
    )
    assert_one_clear_error(code, err, "mnist", str(tmp_path))


def test_corrupt_checkpoint(capsys, tmp_path):
    run = train("ddpm", "toy2d:moons", steps=2, out=tmp_path / "r", overrides={"progress": False})
    (find_checkpoint(run) / "model.safetensors").write_bytes(b"\x00" * 40)
    code, _, err = run_cli(capsys, "sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png"))
    assert_one_clear_error(code, err, "corrupt")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("command", ["sample", "eval", "resume"])
def test_pickle_handed_as_checkpoint_is_refused_and_not_run(capsys, tmp_path, command):
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle.dumps(_Payload(str(marker))))
    args = {
        "sample": ["sample", str(evil), "--out", str(tmp_path / "x.png")],
        "eval": ["eval", str(evil)],
        "resume": ["train", "--resume", str(evil), "--steps", "1"],
    }[command]
    code, _, err = run_cli(capsys, *args)
    assert_one_clear_error(code, err, "pickle", str(evil))
    assert not marker.exists()


def test_pickle_inside_a_run_is_refused(capsys, tmp_path):
    marker = tmp_path / "payload-ran"
    run = train("ddpm", "toy2d:moons", steps=2, out=tmp_path / "r", overrides={"progress": False})
    (find_checkpoint(run) / "model.safetensors").write_bytes(pickle.dumps(_Payload(str(marker))))
    code, _, err = run_cli(capsys, "sample", str(run), "--out", str(tmp_path / "x.png"))
    assert_one_clear_error(code, err, "pickle")
    assert not marker.exists()


def test_python_dash_m_works_and_exits_nonzero_on_error():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "genzoo",
            "train",
            "nosuchmodel",
            "--data",
            "digits",
            "--steps",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "'nosuchmodel'" in r.stderr


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--budget", "-5s"], ["'-5s'"]),
        (["--budget", "0"], ["'0'", "positive"]),
        (["--steps", "0"], ["--steps 0", "at least 1"]),
        (["--steps", "5", "device=cuda"], ["'cuda'", "device=cpu"]),
        (["--steps", "5", "device=gpu"], ["'gpu'", "'cuda'"]),
    ],
)
def test_bad_length_or_device_is_one_sentence_and_writes_nothing(capsys, tmp_path, args, needles):
    """Values argparse would take for options, a training length of zero (once read as "not
    given"), and a device this machine does not have: one sentence, exit 2, no run directory."""
    if "device=cuda" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "ddpm", "--data", "digits", "--out", str(out), *args)
    assert_one_clear_error(code, err, *needles)
    assert not out.exists()


def test_help_and_argument_errors_do_not_import_torch():
    """The command line parses (and refuses) before it imports the library: `genzoo --help` and
    a missing model answer without torch (their speed is in benchmarks/RESULTS.md, "CLI")."""
    code = (
        "import sys\n"
        "from genzoo.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert main(['train']) == 2\n"
        "assert main(['train', 'vae']) == 2\n"
        "print('torch' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip().splitlines()[-1] == "False", res.stdout


def test_out_of_memory_is_one_sentence_and_other_errors_still_surface(capsys, monkeypatch):
    """The CPU allocator's RuntimeError, CUDA's OutOfMemoryError and MemoryError become one
    sentence with the size asked for; any other RuntimeError is not swallowed."""
    import genzoo.cli as cli

    cpu = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
        "memory: you tried to allocate 64000000000 bytes. Error code 12"
    )
    cuda = type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory")
    for error, needle in ((cpu, "59.6 GiB"), (cuda, "batch_size"), (MemoryError(), "--n")):

        def boom(args, error=error):
            raise error

        monkeypatch.setattr(cli, "_run", boom)
        code, _, err = run_cli(capsys, "list", "models")
        assert_one_clear_error(code, err, "Out of memory", needle)

    def other(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "_run", other)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["list", "models"])


def test_samples_that_cannot_fit_in_memory_are_refused_before_drawing(capsys, tmp_path):
    over = {"progress": False, "tensorboard": False}
    run = train("vae", "digits", steps=1, out=tmp_path / "v", overrides=over)
    code, _, err = run_cli(capsys, "sample", str(run), "--n", "10000000000", "--out", "x.npy")
    assert_one_clear_error(code, err, "--n 10000000000", "GiB", "memory")
