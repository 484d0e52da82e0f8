"""``genzoo <args>`` in a process that kills itself with SIGKILL at a chosen point (for tests).

``GENZOO_TEST_KILL=<where>:<step>`` picks the point:

- ``step``: inside optimizer step ``step``, after the backward pass, before the parameter update;
- ``ckpt-file``: writing checkpoint ``step``, half of ``trainer.safetensors`` on disk;
- ``ckpt-swap``: checkpoint ``step`` renamed into place, ``checkpoints/latest`` not yet updated;
- ``prune``: deleting an old checkpoint after checkpoint ``step``, one file of it gone;
- ``metrics``: half of the metrics line of step ``step`` written.

Without the variable it is plain ``genzoo``. Runs on one thread, like the tests.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import torch


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    torch.set_num_threads(1)
    from genzoo.cli import main as cli_main
    from genzoo.core import io as io_mod
    from genzoo.train import checkpoint as ckpt_mod
    from genzoo.train.trainer import Trainer

    spec = os.environ.get("GENZOO_TEST_KILL")
    if spec:
        where, k = spec.split(":")
        k = int(k)
        name = f"step_{k:09d}"
        if where == "step":
            real_step = Trainer.train_step
            real_opt_step = torch.optim.AdamW.step
            now = {"step": 0}

            def train_step(self, batch):
                now["step"] = self.step + 1
                return real_step(self, batch)

            def opt_step(self, *a, **kw):
                if now["step"] == k:
                    _die()
                return real_opt_step(self, *a, **kw)

            Trainer.train_step = train_step
            torch.optim.AdamW.step = opt_step
        elif where == "ckpt-file":
            real_save = io_mod.save_file

            def save_file(tensors, path, metadata=None):
                real_save(tensors, path, metadata=metadata)
                p = Path(path)
                if name in p.parent.name and p.name.startswith(".trainer.safetensors"):
                    data = p.read_bytes()
                    p.write_bytes(data[: len(data) // 2])
                    _die()

            io_mod.save_file = save_file
        elif where == "ckpt-swap":
            real_text = ckpt_mod.atomic_write_text

            def atomic_write_text(path, text):
                if Path(path).name == "latest" and text.strip() == name:
                    _die()
                real_text(path, text)

            ckpt_mod.atomic_write_text = atomic_write_text
        elif where == "prune":
            import shutil

            latest = {"name": ""}
            real_text = ckpt_mod.atomic_write_text

            def note_latest(path, text):
                real_text(path, text)
                if Path(path).name == "latest":
                    latest["name"] = text.strip()

            def rmtree(path, ignore_errors=False):
                p = Path(path)
                if latest["name"] == name and p.name.startswith("step_") and p.name != name:
                    next(p.iterdir()).unlink()
                    _die()
                shutil.rmtree(path, ignore_errors=ignore_errors)

            ckpt_mod.atomic_write_text = note_latest
            ckpt_mod.shutil = SimpleNamespace(rmtree=rmtree)
        elif where == "metrics":
            from genzoo.train.metrics_log import MetricsLog

            real_append = MetricsLog.append

            def append(self, row):
                if row.get("step") == k and "event" not in row:
                    line = (__import__("json").dumps(row) + "\n").encode()
                    with open(self.run_dir / "metrics.jsonl", "ab") as f:
                        f.write(line[: len(line) // 2])
                    _die()
                real_append(self, row)

            MetricsLog.append = append
        else:
            raise SystemExit(f"unknown kill point {where!r}")
    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
