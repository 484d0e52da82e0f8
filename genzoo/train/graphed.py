"""The whole training step in one CUDA graph: forward, backward, clipping, fused AdamW and EMA.

For a network of tens of millions of parameters at a modest batch, a training step launches a few
thousand kernels, and the CPU's time to launch them can exceed the GPU's time to run them.
``torch.compile`` fuses the forward and backward into fewer kernels but leaves the clipping, the
optimizer and the EMA as they are, and still launches every kernel from Python. A CUDA graph
(``torch.cuda.CUDAGraph``) records the kernels of one whole step once and replays them with a
single launch, as PyTorch's "whole network capture" recipe describes: warm-up steps on a side
stream, the gradients set to ``None`` before the capture (so that the backward pass allocates
them from the graph's private memory pool), then capture and replay on static inputs.

:class:`GraphedStep` applies that recipe to a :class:`~genzoo.train.trainer.Trainer`: its
``__call__(batch)`` is one step, like ``Trainer.train_step(batch)``, for models with one parameter
group (no GAN), without fp16 loss scaling (fp32 or bf16), with ``nan_policy`` ``stop`` or
``rollback`` (a skipped update is a branch on the loss, which a graph cannot take), in one process.
What the graph needs and the Trainer's eager step does not:

- the optimizer is a fused AdamW with ``capturable=True`` and its learning rate a tensor on the
  device, written before each replay (a Python float would be frozen into the graph), so
  warm-up and cosine schedules still apply; its state is copied from the Trainer's optimizer;
- the EMA's decay ``min(decay, (1 + t) / (10 + t))`` is likewise a device tensor (the weight of
  ``torch._foreach_lerp_``), written before each replay;
- autocast runs with ``cache_enabled=False``, as the CUDA-graph documentation asks;
- the batch is copied into static tensors; the losses, gradient norm and finite flag it returns
  are copies of the graph's static outputs.

The first ``warmup`` calls run the same step eagerly on a side stream (they are real training
steps; they also initialise cuDNN, the optimizer's state and, with ``compile=True``, compile the
loss); the next call captures the step and replays it, and every later call replays. The capture
itself runs no kernels, so every call is exactly one training step.

Off CUDA a graph is impossible: the step runs eagerly on the same static inputs with the Trainer's
own optimizer, and :attr:`GraphedStep.fallback` holds the one sentence that says so (also issued
as a warning). On the CPU that step is the Trainer's step, bit for bit
(``tests/train/test_graphed_step.py``), which checks the restructured step; the capture itself can
only be checked on a GPU (``benchmarks/train_throughput.py --variants graph``).

This path is opt-in and used by the benchmarks; ``Trainer.fit`` does not use it (its
checkpoints store the Trainer's own optimizer, whose learning rate is a float).
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor

from genzoo.core.errors import ConfigError
from genzoo.train.trainer import Trainer, _grad_norm

__all__ = ["GraphedStep"]


class GraphedStep:
    """One training step of ``trainer``, captured in a CUDA graph after ``warmup`` eager steps
    (module docstring). Like ``Trainer.train_step`` it does not advance ``trainer.step``."""

    def __init__(self, trainer: Trainer, warmup: int = 3) -> None:
        cfg = trainer.cfg
        if len(trainer.optimizers) != 1:
            raise ConfigError(
                f"A CUDA-graph step takes a model with one parameter group; "
                f"{trainer.model.name} has {len(trainer.optimizers)} "
                f"({', '.join(trainer.optimizers) or 'none'})."
            )
        ((self.group, old),) = trainer.optimizers.items()
        if trainer.repeats[self.group] != 1:
            raise ConfigError("A CUDA-graph step takes one update per step (repeats = 1).")
        if trainer.scaler.is_enabled():
            raise ConfigError(
                "A CUDA-graph step needs precision fp32 or bf16: fp16's loss scaling skips "
                "updates on the host."
            )
        if cfg.nan_policy == "skip":
            raise ConfigError(
                "A CUDA-graph step cannot drop an update (nan_policy = 'skip'); use 'stop' or "
                "'rollback'."
            )
        if trainer.dist.enabled:
            raise ConfigError("A CUDA-graph step runs in one process (not under torchrun).")
        if warmup < 1:
            raise ConfigError(f"warmup = {warmup} must be at least 1 eager step before capture.")
        self.trainer = trainer
        self.device = trainer.device
        self.warmup = warmup
        self.graphed = self.device.type == "cuda"
        self.fallback: str | None = None
        self.params = [p for g in old.param_groups for p in g["params"]]
        if self.graphed:
            self._lr_t: Tensor | None = torch.tensor(
                trainer._lr(self.group), dtype=torch.float32, device=self.device
            )
            self.opt = torch.optim.AdamW(
                [
                    {k: v for k, v in g.items() if k not in ("lr", "fused", "capturable")}
                    for g in old.param_groups
                ],
                lr=self._lr_t,
                fused=True,
                capturable=True,
            )
            for p in self.params:  # the Trainer has stepped already: continue from its moments
                if p in old.state:  # (copied by hand: load_state_dict would bring back a float lr
                    # and capturable = False with the old groups)
                    self.opt.state[p] = {
                        k: v.detach().to(self.device, torch.float32).clone()
                        if k == "step"
                        else (v.detach().clone() if torch.is_tensor(v) else v)
                        for k, v in old.state[p].items()
                    }
        else:
            self._lr_t = None
            self.opt = old
            self.fallback = (
                f"CUDA-graph capture needs a CUDA device; on {self.device} the training step "
                "runs without a graph (the same step, eagerly)."
            )
            warnings.warn(self.fallback, stacklevel=2)
        self._ema_w = torch.zeros((), dtype=torch.float32, device=self.device)
        self.calls = 0
        self.captures = 0
        self._graph: Any = None
        self._static: dict[str, Tensor] | None = None
        self._out: tuple[dict[str, Tensor], Tensor] | None = None

    # --- the step, the same eagerly and under capture ---
    def _amp(self) -> Any:
        dtype = self.trainer.dtype
        if dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=dtype, cache_enabled=False)

    def _compute(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
        tr = self.trainer
        with self._amp():
            out = tr._loss_fn(batch)
        out.loss.backward()
        if tr.cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.params, tr.cfg.grad_clip)
        else:
            norm = _grad_norm(self.params, self.device)
        finite = torch.isfinite(out.loss.detach()) & torch.isfinite(norm)
        self.opt.step()
        if tr.ema is not None:
            ema_p = list(tr.ema.model.parameters())
            src_p = list(tr.model.parameters())
            # a 0-d tensor weight per tensor: read on the device (a float would be frozen into the
            # graph); the same lerp as EMA.update, bit for bit on the CPU
            torch._foreach_lerp_(ema_p, src_p, [self._ema_w] * len(ema_p))
            for eb, b in zip(tr.ema.model.buffers(), tr.model.buffers(), strict=True):
                eb.copy_(b)
        logs: dict[str, Tensor] = {}
        for k, v in out.logs.items():
            logs[k] = v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v))
        logs["grad_norm"] = norm.detach()
        return logs, finite

    def _set_scalars(self) -> None:
        """The learning rate and EMA weight of this step, written where the step reads them."""
        tr = self.trainer
        lr = tr._lr(self.group)
        if self._lr_t is not None:
            self._lr_t.fill_(lr)
        else:
            for g in self.opt.param_groups:
                g["lr"] = lr
        if tr.ema is not None:
            d = min(tr.ema.decay, (1 + tr.step) / (10 + tr.step))
            self._ema_w.fill_(1 - d)

    def _copy_in(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        if self._static is None:
            self._static = {k: v.clone() for k, v in batch.items()}  # keeps channels_last
        else:
            if batch.keys() != self._static.keys():
                raise ConfigError(
                    f"A CUDA-graph step needs the same batch keys every step: "
                    f"{sorted(self._static)}, not {sorted(batch)}."
                )
            for k, v in batch.items():
                s = self._static[k]
                if v.shape != s.shape or v.dtype != s.dtype:
                    raise ConfigError(
                        f"A CUDA-graph step needs a fixed batch: {k!r} was {tuple(s.shape)} "
                        f"{s.dtype}, now {tuple(v.shape)} {v.dtype} (drop the last short batch)."
                    )
                s.copy_(v)
        return self._static

    def _eager(self, static: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
        self.opt.zero_grad(set_to_none=True)
        return self._compute(static)

    def _capture(self, static: dict[str, Tensor]) -> None:
        # PyTorch's whole-network capture: grads to None so that the backward pass inside the
        # capture allocates them from the graph's pool; replays rewrite the same memory
        self.opt.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._out = self._compute(static)
        self._graph = graph
        self.captures += 1

    def __call__(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor, list[str]]:
        """One optimizer step on ``batch``: (detached logs, finite flag, skipped groups = [])."""
        self._set_scalars()
        static = self._copy_in(batch)
        self.calls += 1
        if not self.graphed:
            logs, finite = self._eager(static)
            return logs, finite, []
        if self._graph is None and self.calls <= self.warmup:
            side = torch.cuda.Stream(device=self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                logs, finite = self._eager(static)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return logs, finite, []
        if self._graph is None:
            torch.cuda.synchronize(self.device)
            self._capture(static)
        self._graph.replay()
        assert self._out is not None
        logs, finite = self._out
        return {k: v.clone() for k, v in logs.items()}, finite.clone(), []
