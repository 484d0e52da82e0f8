"""Multi-GPU and multi-node training through PyTorch's own engine: ``torchrun`` starts one process
per device and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; the Trainer then wraps the model's
loss in :class:`~torch.nn.parallel.DistributedDataParallel` (NCCL on CUDA, gloo on CPU), gives each
rank its slice of every global batch, and lets rank 0 alone write logs, samples and checkpoints.

``batch_size`` stays the *global* batch, so a run on N devices takes the same optimisation steps
as one process on the whole batch (its gradients are the same average; ``tests/train/
test_distributed.py`` checks it with two gloo processes)::

    torchrun --nproc_per_node 8 -m genzoo.cli train edm --data cifar10 --budget 2h batch_size=512
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --rdzv_endpoint HOST:29500 \\
        -m genzoo.cli train edm --data cifar10 --budget 2h batch_size=1024   # likewise node_rank 1
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel as DDP

from genzoo.core.errors import ConfigError
from genzoo.core.seeding import auto_device


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank among ``world_size`` processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"Environment variable {name}={raw!r} must be an integer.") from None


def from_env() -> DistInfo:
    """The torchrun variables (a single process when they are absent)."""
    world = _env_int("WORLD_SIZE", 1)
    info = DistInfo(_env_int("RANK", 0), world, _env_int("LOCAL_RANK", 0))
    if world < 1 or not 0 <= info.rank < world:
        raise ConfigError(f"RANK={info.rank} must lie in [0, WORLD_SIZE={world}).")
    return info


def setup(device: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun describes (once) and pick this rank's device:
    ``cuda:LOCAL_RANK`` with NCCL when CUDA is used, the CPU with gloo otherwise."""
    info = from_env()
    if not info.enabled:
        return info, auto_device(device)
    use_cuda = torch.cuda.is_available() and not device.startswith("cpu")
    dev = torch.device("cuda", info.local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info, dev


class LossModule(nn.Module):
    """``forward(batch, group) = model.loss(batch, group)``: what DDP wraps, so that its gradient
    hooks average every group's gradients across ranks."""

    def __init__(self, model: nn.Module, multi: bool) -> None:
        super().__init__()
        self.model = model
        self.multi = multi

    def forward(self, batch: dict[str, Tensor], group: str = "main") -> Any:
        return self.model.loss(batch, group) if self.multi else self.model.loss(batch)


def wrap(model: nn.Module, device: torch.device, multi: bool) -> nn.Module:
    """DDP around the loss. Several optimizer groups (GANs) leave some parameters without a
    gradient in each backward pass, hence ``find_unused_parameters``."""
    return DDP(
        LossModule(model, multi),
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=multi,
    )


def shard(indices: Tensor, info: DistInfo) -> Tensor:
    """This rank's contiguous slice of a global batch (sizes differ by at most one)."""
    if not info.enabled:
        return indices
    return indices.tensor_split(info.world_size)[info.rank]


def mean_across(values: dict[str, Tensor], info: DistInfo, device: torch.device) -> dict:
    """Average logged scalars over ranks (one all-reduce; called only at logging steps)."""
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    flat = torch.stack([values[k].to(device).float().reshape(()) for k in keys])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat = flat / info.world_size
    return {k: flat[i] for i, k in enumerate(keys)}


def max_across(value: Tensor, info: DistInfo) -> Tensor:
    """The elementwise maximum over ranks (e.g. the first step with a NaN, -1 for none)."""
    if not info.enabled:
        return value
    out = value.clone()
    dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return out


def broadcast_path(path: Path, info: DistInfo) -> Path:
    """Rank 0's choice of a path (e.g. a fresh run directory name) on every rank."""
    if not info.enabled:
        return path
    box = [str(path)]
    dist.broadcast_object_list(box, src=0)  # a str: pickled by PyTorch between our own ranks
    return Path(box[0])


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()
