"""Two gloo processes under torchrun take the same step as one process on the combined batch:
DDP averages the ranks' gradients, and ``batch_size`` is the global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genzoo.core.io import load_tensors
from genzoo.train.distributed import DistInfo, shard

WORKER = Path(__file__).with_name("_dist_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(nproc: int, *args: str, module: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        *(["-m"] if module else []),
        *args,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_shard_splits_a_global_batch_into_contiguous_parts() -> None:
    idx = torch.arange(10)
    parts = [shard(idx, DistInfo(r, 3)) for r in range(3)]
    assert torch.equal(torch.cat(parts), idx)
    assert [p.numel() for p in parts] == [4, 3, 3]
    assert torch.equal(shard(idx, DistInfo()), idx)


@pytest.mark.parametrize("model", ["realnvp"])
def test_two_gloo_ranks_have_the_gradients_of_one_process_on_the_combined_batch(
    model: str, tmp_path: Path
) -> None:
    _torchrun(2, str(WORKER), str(tmp_path / "two"), model, "1")
    _torchrun(1, str(WORKER), str(tmp_path / "one"), model, "1")
    r0 = load_tensors(tmp_path / "two" / "rank0.safetensors")
    r1 = load_tensors(tmp_path / "two" / "rank1.safetensors")
    one = load_tensors(tmp_path / "one" / "rank0.safetensors")
    grads = [k for k in one if k.startswith("grad/")]
    assert grads and set(grads) == {k for k in r0 if k.startswith("grad/")}
    for k in one:
        assert torch.equal(r0[k], r1[k]), k  # the ranks agree exactly (same all-reduced average)
        assert torch.allclose(r0[k], one[k], rtol=1e-5, atol=1e-6), (
            k,
            (r0[k] - one[k]).abs().max(),
        )
    # the shards really differ: each rank's own gradient is not the average
    assert any(not torch.allclose(r0[k], torch.zeros_like(r0[k])) for k in grads)


def test_torchrun_training_writes_one_run_equal_to_a_single_process(tmp_path: Path) -> None:
    """``torchrun -m genzoo.cli train``: rank 0 alone writes the run; after 20 steps its weights
    equal a single process's (the realnvp loss on points has no randomness)."""
    args = ["realnvp", "--data", "toy2d:8gaussians", "--steps", "20"]
    over = ["couplings=4", "hidden=[16,16]", "batch_size=64", "log_every=5", "progress=false"]
    _torchrun(2, "genzoo.cli", "train", *args, "--out", str(tmp_path / "two"), *over, module=True)
    _torchrun(1, "genzoo.cli", "train", *args, "--out", str(tmp_path / "one"), *over, module=True)
    import genzoo

    a, b = genzoo.load(tmp_path / "two"), genzoo.load(tmp_path / "one")
    for (k, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.allclose(pa, pb, rtol=1e-4, atol=1e-5), k
    rows = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    steps = [r for r in rows if '"grad_norm"' in r]
    assert len(steps) == 4, rows  # steps 5, 10, 15, 20: written once, by rank 0


def test_a_two_player_gan_stays_in_sync_across_ranks(tmp_path: Path) -> None:
    """Several optimizer groups through one DDP wrapper: after 3 steps (discriminator and
    generator each) both ranks hold the same weights and gradients, though their noise differs."""
    _torchrun(2, str(WORKER), str(tmp_path), "gan", "3")
    r0 = load_tensors(tmp_path / "rank0.safetensors")
    r1 = load_tensors(tmp_path / "rank1.safetensors")
    assert any(k.startswith("grad/generator") for k in r0)
    assert any(k.startswith("grad/discriminator") for k in r0)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
