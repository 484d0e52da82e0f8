"""Every command that reads a file (``sample``, ``eval``, ``inpaint``, ``train --resume``,
``compare``) against every kind of hostile file: refused with one clear sentence, and the payload
never runs (its side effect, a marker file, never appears)."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch

import genzoo
from genzoo.cli import main
from genzoo.train.checkpoint import find_checkpoint

TINY = {"progress": False, "tensorboard": False, "latent_dim": 2, "hidden": [8]}
TINY.update(batch_size=16, n_samples=4, ckpt_every_s=0)


class _Payload:
    """Unpickling this creates the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("good")
    return genzoo.train("vae", "toy2d:moons", steps=2, out=root / "run", overrides=TINY)


# kind -> (what is handed over, a phrase the error must hold)
KINDS = {
    "pickle-file": "pickle",  # evil.pt, a plain pickle
    "torch-zip": "pickle",  # evil.pth written by torch.save (a zip holding a pickle)
    "disguised": "pickle",  # a pickle named evil.safetensors
    "run-weights": "pickle",  # a run whose model.safetensors is a pickle
    "run-trainer": "pickle",  # ... whose trainer.safetensors (optimizer state) is a pickle
    "run-protocol0": "corrupt",  # ... whose model.safetensors is a text pickle (no magic bytes)
    "run-yaml": "not valid YAML",  # ... whose config.yaml holds a python/object tag
}
COMMANDS = ["sample", "eval", "inpaint", "resume", "compare"]


def _hostile(kind: str, good: Path, where: Path, marker: Path) -> Path:
    payload = _Payload(str(marker))
    if kind == "pickle-file":
        (where / "evil.pt").write_bytes(pickle.dumps(payload))
        return where / "evil.pt"
    if kind == "torch-zip":
        torch.save(payload, where / "evil.pth")
        return where / "evil.pth"
    if kind == "disguised":
        (where / "evil.safetensors").write_bytes(pickle.dumps(payload))
        return where / "evil.safetensors"
    run = where / "run"
    shutil.copytree(good, run)
    ckpt = find_checkpoint(run)
    if kind == "run-weights":
        (ckpt / "model.safetensors").write_bytes(pickle.dumps(payload))
    elif kind == "run-trainer":
        (ckpt / "trainer.safetensors").write_bytes(pickle.dumps(payload, protocol=2))
    elif kind == "run-protocol0":
        (ckpt / "model.safetensors").write_bytes(pickle.dumps(payload, protocol=0))
    elif kind == "run-yaml":
        text = (run / "config.yaml").read_text()
        tag = f"!!python/object/apply:builtins.open [{str(marker)!r}, w]"
        (run / "config.yaml").write_text(text + f"hostile: {tag}\n")
    return run


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("command", COMMANDS)
def test_hostile_file_is_refused_and_never_run(tmp_path, capsys, good_run, command, kind):
    marker = tmp_path / "payload-ran"
    where = tmp_path / "in"
    where.mkdir()
    if command == "compare":  # compare re-uses (resumes) the runs in its --out folder
        if not kind.startswith("run-"):
            target = _hostile(kind, good_run, where, marker)
            argv = ["compare", "--data", "toy2d:moons", "--models", "vae", "--out", target]
            needle = "is a file"
        else:
            runs = where / "cmp" / "runs"
            runs.mkdir(parents=True)
            shutil.move(_hostile(kind, good_run, where, marker), runs / "vae-seed0")
            argv = ["compare", "--data", "toy2d:moons", "--models", "vae", "--out", where / "cmp"]
            argv += ["--budget", "1s", "--n", "50"]
            needle = KINDS[kind]
    else:
        target = _hostile(kind, good_run, where, marker)
        argv = {
            "sample": ["sample", target, "--n", "4", "--out", tmp_path / "s.png"],
            "eval": ["eval", target, "--n", "4"],
            "inpaint": ["inpaint", target, "--out", tmp_path / "i.png"],
            "resume": ["train", "--resume", target, "--steps", "4"],
        }[command]
        needle = KINDS[kind]
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    if command == "compare":  # (after compare's progress bar)
        err = "genzoo: error: " + err.split("genzoo: error: ", 1)[-1].split("compare: ")[0]
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("genzoo: error: "), err
    assert needle in lines[0], lines[0]
    assert not marker.exists()
