"""The Trainer's batches: shuffled epochs of the training set, drawn from one data generator.

:class:`BatchSource` owns the data order (a generator seeded with ``seed + 1``, the current
permutation and the position in it), which the checkpoints save so that a resumed run sees the
same batches as one that was never stopped. It leaves the dataset it is given as it is: a small
in-memory set is copied to the training device once (a shallow copy of the dataset object holds
the device tensors), so no host copies are made per step.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torch import Tensor

from genzoo.core.seeding import make_generator
from genzoo.data.base import Dataset
from genzoo.train import distributed
from genzoo.train.distributed import DistInfo

ON_DEVICE_MAX_BYTES = 2 * 1024**3
"""In-memory datasets up to this size live on the training device."""


class BatchSource:
    """Batches of ``batch_size`` examples (this rank's share of them under torchrun) in model
    space on ``device``; ``dequantize`` as the model asks, NHWC images with ``channels_last``."""

    def __init__(
        self,
        data: Dataset,
        *,
        batch_size: int,
        seed: int,
        device: torch.device,
        dist: DistInfo,
        dequantize: bool,
        channels_last: bool,
    ) -> None:
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.dist = dist
        self.dequantize = dequantize
        self.channels_last = channels_last
        self.generator = make_generator(seed + 1)
        self.perm = torch.empty(0, dtype=torch.long)
        self.pos = 0
        self.data, self.on_device = _on_device(data, device)

    def __len__(self) -> int:
        return len(self.data)

    def next_indices(self) -> Tensor:
        """Indices ``(batch_size,)`` of the next global batch: shuffled epochs, an epoch's end
        continued by the next one's start."""
        n, b = len(self.data), self.batch_size
        out = []
        while b > 0:
            if self.pos >= self.perm.numel():
                self.perm = torch.randperm(n, generator=self.generator)
                self.pos = 0
            take = self.perm[self.pos : self.pos + b]
            out.append(take)
            self.pos += take.numel()
            b -= take.numel()
        return torch.cat(out)

    def next(self) -> dict[str, Tensor]:
        """The next batch, this rank's part of it, on the device."""
        idx = distributed.shard(self.next_indices(), self.dist)
        if self.on_device:
            idx = idx.to(self.device)
        batch = self.data.get(idx, dequantize=self.dequantize)
        out = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        if self.channels_last and out["x"].dim() == 4:
            out["x"] = out["x"].contiguous(memory_format=torch.channels_last)
        return out

    def full_pass(self, chunk: int = 4096) -> Iterator[Tensor]:
        """The whole training set once, in order, in chunks ``(<= chunk, *shape)`` in model
        space (dequantized with its own generator, so the data order of the steps is unchanged)."""
        g = make_generator(self.seed + 3)
        for start in range(0, len(self.data), chunk):
            idx = torch.arange(start, min(start + chunk, len(self.data)))
            if self.on_device:
                idx = idx.to(self.device)
            x = self.data.get(idx, dequantize=self.dequantize, generator=g)["x"]
            yield x.to(self.device)

    # --- checkpoints ---
    def state(self) -> tuple[dict[str, Tensor], int]:
        """The data order as checkpoint tensors and the position in the permutation."""
        return {"data.generator": self.generator.get_state(), "data.perm": self.perm}, self.pos

    def load_state(self, tensors: dict[str, Tensor], pos: int) -> None:
        self.generator.set_state(tensors["data.generator"])
        self.perm = tensors["data.perm"].long()
        self.pos = pos


def _on_device(data: Dataset, device: torch.device) -> tuple[Dataset, bool]:
    """``data`` itself, or a shallow copy of it whose ``x`` and ``y`` are on ``device`` (small
    in-memory datasets that read their examples with the base ``get_raw``)."""
    x = data.x
    if x is None or type(data).get_raw is not Dataset.get_raw:
        return data, False
    if x.numel() * x.element_size() > ON_DEVICE_MAX_BYTES:
        return data, False
    moved = copy.copy(data)
    moved.x = x.to(device)
    if data.y is not None:
        moved.y = data.y.to(device)
    return moved, True
