"""The one Trainer for every genzoo model.

It loops over the model's parameter groups (one for most models; generator and discriminator for
GANs), calls ``model.loss(batch, group)``, and handles everything around it: device, autocast
precision, EMA, gradient clipping, a step or time budget, a progress bar, metrics to JSONL and
TensorBoard, sample grids, atomic safetensors checkpoints, exact resume, and a NaN/Inf guard.

Reliability: one process at a time trains into a run directory (a lock, see
:mod:`genzoo.train.safety`); a run killed at any moment (even SIGKILL) resumes from its last
checkpoint, bit for bit on CPU; SIGINT/SIGTERM save a checkpoint first; a full or read-only disk
stops training with a :class:`StorageError` and leaves the previous checkpoint intact.
"""

from __future__ import annotations

import copy
import json
import math
import re
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from genzoo.core.config import Config
from genzoo.core.errors import (
    CheckpointError,
    ConfigError,
    TrainingDiverged,
    TrainingInterrupted,
)
from genzoo.core.io import load_state_strict
from genzoo.core.protocol import GenerativeModel
from genzoo.core.seeding import check_seed, make_generator
from genzoo.data.base import Dataset
from genzoo.train import distributed
from genzoo.train.checkpoint import (
    find_checkpoint,
    optimizer_from_flat,
    optimizer_to_flat,
    read_checkpoint,
    rng_state,
    set_rng_state,
    write_checkpoint,
)
from genzoo.train.safety import (
    METRICS_FILE,
    RunLock,
    clean_temp_files,
    repair_metrics,
    storage_error,
)


def parse_duration(text: str | float | int | None) -> float:
    """``"90s"``, ``"5m"``, ``"1h30m"``, ``"2.5m"`` or a number of seconds -> seconds (0 = none)."""
    if text is None or text == "":
        return 0.0
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip().lower()
    try:
        return float(s)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(h|m|min|s|sec)", s)
    if not parts or "".join(a + b for a, b in parts) != s.replace(" ", ""):
        raise ConfigError(f"Budget {text!r} is not a duration; use e.g. '90s', '5m' or '1h'.")
    mult = {"h": 3600, "m": 60, "min": 60, "s": 1, "sec": 1}
    return sum(float(a) * mult[b] for a, b in parts)


@dataclass(frozen=True)
class TrainConfig(Config):
    """Training settings (``key=value`` on the command line).

    NaN/Inf guard: a step whose loss or gradient norm is not finite is a fault (gradients are
    checked even with ``grad_clip = 0``; under fp16 loss scaling, overflowing gradients are left to
    the scaler). ``nan_policy`` chooses what happens, and each fault is written to
    ``metrics.jsonl`` as an ``{"event": ...}`` row and shown as a warning:

    - ``stop`` (default): raise :class:`TrainingDiverged` naming the step; the last checkpoint,
      written before the fault, is kept.
    - ``skip``: drop that step's update (the optimizer state is not touched) and go on.
    - ``rollback``: reload the last good checkpoint (weights, EMA, optimizer, RNG, data order) and
      multiply the learning rate by ``nan_lr_factor`` (persisted in the checkpoints).

    After ``nan_limit`` skips or rollbacks in one process, training stops as under ``stop``.
    """

    steps: int = 0  # total optimizer steps to reach (0: no step limit; then a budget is needed)
    budget: str = ""  # total wall-clock training time, e.g. "5m" (empty: no time limit)
    batch_size: int = 128  # examples per step
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW betas
    warmup: int = 0  # linear learning-rate warm-up steps
    lr_decay: Literal["none", "cosine"] = "none"  # cosine: lr * (1 + cos(pi * step / steps)) / 2
    grad_clip: float = 1.0  # clip the global gradient norm (0: off)
    ema_decay: float = 0.0  # EMA of the weights (0: off); sampling uses the EMA if on
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    compile: bool = False  # torch.compile the model's loss (weights are saved without wrappers)
    channels_last: bool = False  # images: NHWC memory layout for the model and batches (faster
    # convolutions with bf16 on recent GPUs)
    seed: int = 0  # seeds weights, data order and noise; CPU runs are reproducible bit for bit
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    log_every: int = 50  # steps between metric lines
    sample_every: int = 0  # steps between sample grids (0: only at the end)
    ckpt_every: int = 1000  # steps between checkpoints (also at the end)
    ckpt_every_s: float = 300.0  # seconds between checkpoints (0: off)
    keep: int = 2  # checkpoints kept on disk
    n_samples: int = 64  # samples in each grid
    nan_policy: Literal["stop", "skip", "rollback"] = "stop"  # on a NaN/Inf loss or gradient
    nan_lr_factor: float = 0.5  # rollback: the learning rate is multiplied by this each time
    nan_limit: int = 10  # skip/rollback: stop after this many NaN/Inf faults in one process
    progress: bool = True  # show a progress bar
    tensorboard: bool = True  # also write TensorBoard events

    def validate(self) -> None:
        if not parse_duration(self.budget) >= 0:
            raise ConfigError(f"budget = {self.budget!r} must be a duration >= 0, e.g. '5m'.")
        if self.steps < 0:
            raise ConfigError(f"steps = {self.steps} must be >= 0.")
        if self.lr_decay == "cosine" and self.steps == 0:
            raise ConfigError("lr_decay = 'cosine' decays over a step count; give steps > 0.")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size = {self.batch_size} must be >= 1.")
        check_seed(self.seed)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr = {self.lr} must be a finite number > 0.")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay = {self.ema_decay} must be in [0, 1).")
        if not 0 < self.nan_lr_factor <= 1:
            raise ConfigError(f"nan_lr_factor = {self.nan_lr_factor} must be in (0, 1].")
        for key in ("warmup", "ckpt_every", "keep", "nan_limit", "sample_every"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} = {getattr(self, key)} must be >= 0.")
        for key in ("log_every", "n_samples"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} = {getattr(self, key)} must be >= 1.")
        for key in ("grad_clip", "weight_decay", "ckpt_every_s"):
            v = getattr(self, key)
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"{key} = {v} must be a finite number >= 0.")
        if not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas = {list(self.betas)} must both be in [0, 1).")

    @property
    def budget_s(self) -> float:
        return parse_duration(self.budget)


def _grad_norm(params: list[Tensor], device: torch.device) -> Tensor:
    """The global 2-norm of the parameters' gradients (without clipping them)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros((), device=device)
    norms = torch._foreach_norm(grads)
    return torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]))


class EMA:
    """Exponential moving average of a model's parameters and buffers, with a warm-up:
    ``decay_t = min(decay, (1 + t) / (10 + t))``."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        ema_p = list(self.model.parameters())
        src_p = list(model.parameters())
        torch._foreach_lerp_(ema_p, src_p, 1 - d)
        for eb, b in zip(self.model.buffers(), model.buffers(), strict=True):
            eb.copy_(b)


class Trainer:
    """Train ``model`` on ``data`` into ``run_dir`` under ``config``."""

    def __init__(
        self,
        model: GenerativeModel,
        data: Dataset,
        config: TrainConfig,
        run_dir: str | Path,
        test_data: Dataset | None = None,
    ) -> None:
        if config.steps == 0 and config.budget_s == 0:
            raise ConfigError("Give a training length: --steps N or --budget 5m (or both).")
        self.cfg = config
        self.model = model
        self.data = data
        self.test_data = test_data
        self.run_dir = Path(run_dir)
        # torchrun: one process per device; otherwise one process (see train/distributed.py)
        self.dist, self.device = distributed.setup(config.device)
        if config.batch_size < self.dist.world_size:
            raise ConfigError(
                f"batch_size = {config.batch_size} is the global batch; it must be at least the "
                f"number of processes ({self.dist.world_size})."
            )
        self.model.to(self.device)
        self._nhwc = config.channels_last and data.info.kind == "images"
        if self._nhwc:
            self.model.to(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.dtype = self._amp_dtype()
        # closed-form models (PCA, PPCA) have no learnable parameters: no optimizer at all
        groups = {n: ps for n, ps in model.param_groups().items() if ps}
        settings = model.group_settings()
        unknown = set(settings) - set(groups)
        if unknown:
            raise ValueError(f"group_settings names unknown groups {sorted(unknown)}")
        fused = self.device.type == "cuda"
        self.group_lr = {n: float(settings.get(n, {}).get("lr", config.lr)) for n in groups}
        self.repeats = {n: int(settings.get(n, {}).get("repeats", 1)) for n in groups}
        self.optimizers = {
            name: torch.optim.AdamW(
                params,
                lr=self.group_lr[name],
                betas=tuple(settings.get(name, {}).get("betas", config.betas)),
                weight_decay=float(settings.get(name, {}).get("weight_decay", config.weight_decay)),
                fused=fused,
            )
            for name, params in groups.items()
        }
        self.scaler = torch.amp.GradScaler(enabled=self.dtype == torch.float16)
        self.ema = EMA(model, config.ema_decay) if config.ema_decay > 0 else None
        self.step = 0
        self.elapsed = 0.0
        self.lr_scale = 1.0  # lowered by nan_policy = rollback
        self.nan_events = 0
        self.data_gen = make_generator(config.seed + 1)
        self.perm = torch.empty(0, dtype=torch.long)
        self.pos = 0
        self._on_device = self._move_data()
        loss_fn: Any = model.loss
        if self.dist.enabled and self.optimizers:  # DDP averages the ranks' gradients
            loss_fn = distributed.wrap(model, self.device, multi=len(self.optimizers) > 1)
            torch.manual_seed(config.seed + 7919 * self.dist.rank)  # independent noise per rank
        self._loss_fn = torch.compile(loss_fn) if config.compile else loss_fn
        self._writer: Any = None

    # --- set-up helpers ---------------------------------------------------------------------------
    def _amp_dtype(self) -> torch.dtype | None:
        p = self.cfg.precision
        if p == "auto":
            p = "bf16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[p]

    def _move_data(self) -> bool:
        """Small in-memory datasets live on the training device (no host copies per step)."""
        x = self.data.x
        if x is None or type(self.data).get_raw is not Dataset.get_raw:
            return False
        if x.numel() * x.element_size() > 2 * 1024**3:
            return False
        self.data.x = x.to(self.device)
        if self.data.y is not None:
            self.data.y = self.data.y.to(self.device)
        return True

    def _next_indices(self) -> Tensor:
        """Indices of the next batch: shuffled epochs drawn from the data generator."""
        n, b = len(self.data), self.cfg.batch_size
        out = []
        while b > 0:
            if self.pos >= self.perm.numel():
                self.perm = torch.randperm(n, generator=self.data_gen)
                self.pos = 0
            take = self.perm[self.pos : self.pos + b]
            out.append(take)
            self.pos += take.numel()
            b -= take.numel()
        return torch.cat(out)

    def _next_batch(self) -> dict[str, Tensor]:
        idx = distributed.shard(self._next_indices(), self.dist)  # this rank's part
        if self._on_device:
            idx = idx.to(self.device)
        batch = self.data.get(idx, dequantize=self.model.dequantize)
        out = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        if self._nhwc and out["x"].dim() == 4:
            out["x"] = out["x"].contiguous(memory_format=torch.channels_last)
        return out

    def _full_pass(self, chunk: int = 4096) -> Iterator[Tensor]:
        """The whole training set once, in order, in chunks in model space (dequantized with its
        own generator, so the data order of the training steps is unchanged)."""
        g = make_generator(self.cfg.seed + 3)
        for start in range(0, len(self.data), chunk):
            idx = torch.arange(start, min(start + chunk, len(self.data)))
            if self._on_device:
                idx = idx.to(self.device)
            x = self.data.get(idx, dequantize=self.model.dequantize, generator=g)["x"]
            yield x.to(self.device)

    def _lr(self, group: str | None = None) -> float:
        base = (self.group_lr[group] if group is not None else self.cfg.lr) * self.lr_scale
        if self.cfg.lr_decay == "cosine" and self.cfg.steps > 0:  # to 0 at the last step
            base *= 0.5 * (1.0 + math.cos(math.pi * min(self.step / self.cfg.steps, 1.0)))
        if self.cfg.warmup > 0:
            return base * min(1.0, (self.step + 1) / self.cfg.warmup)
        return base

    # --- one step ---
    def train_step(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor, list[str]]:
        """One optimizer step per parameter group; returns detached logs, a finite flag, and the
        groups whose update was dropped (``nan_policy = skip``)."""
        logs: dict[str, Tensor] = {}
        finite = torch.ones((), dtype=torch.bool, device=self.device)
        skipped: list[str] = []
        skip = self.cfg.nan_policy == "skip"
        amp = (
            torch.autocast(self.device.type, dtype=self.dtype)
            if self.dtype is not None
            else nullcontext()
        )
        multi = len(self.optimizers) > 1
        if not self.optimizers:  # nothing to optimise (closed form): log the loss of the batch
            with torch.no_grad(), amp:
                out = self._loss_fn(batch)
            finite &= torch.isfinite(out.loss.detach())
            for k, v in out.logs.items():
                logs[k] = v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v))
        for name, opt in self.optimizers.items():
            lr = self._lr(name)
            for g in opt.param_groups:
                g["lr"] = lr
            for r in range(self.repeats[name]):
                b = batch if r == 0 else self._next_batch()  # n_critic: a fresh batch each time
                opt.zero_grad(set_to_none=True)
                with amp:
                    out = self._loss_fn(b, name) if multi else self._loss_fn(b)
                self.scaler.scale(out.loss).backward()
                params = [p for g in opt.param_groups for p in g["params"]]
                self.scaler.unscale_(opt)  # (a no-op without fp16 loss scaling)
                if self.cfg.grad_clip > 0:
                    norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
                else:  # unclipped gradients are checked too
                    norm = _grad_norm(params, self.device)
                logs[f"grad_norm/{name}" if multi else "grad_norm"] = norm.detach()
                ok = torch.isfinite(out.loss.detach())
                if not self.scaler.is_enabled():  # with fp16 scaling, the scaler skips overflows
                    ok = ok & torch.isfinite(norm)
                if skip and self.dist.enabled:  # torchrun: skip on every rank or on none
                    ok = distributed.max_across((~ok).float().reshape(1), self.dist)[0] == 0
                if skip and not bool(ok):  # drop this update; the optimizer state is untouched
                    opt.zero_grad(set_to_none=True)
                    skipped.append(name)
                    if self.scaler.is_enabled():
                        self.scaler.update()
                    continue
                finite &= ok
                self.scaler.step(opt)
                self.scaler.update()
            for k, v in out.logs.items():
                key = f"{name}/{k}" if multi else k
                logs[key] = v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v))
        if self.ema is not None:
            self.ema.update(self.model, self.step)
        return logs, finite, skipped

    # --- the loop ---
    def fit(self) -> dict[str, float]:
        """Train until ``steps`` or ``budget``; returns the last logged metrics.

        The run directory is locked for the duration (:class:`StorageError` if another process
        trains into it); files a killed process left there are cleaned up first.
        """
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise storage_error("to run directory", self.run_dir, e) from None
        main = self.dist.is_main  # other ranks of a torchrun job write nothing
        with RunLock(self.run_dir) if main else nullcontext():
            if main:
                clean_temp_files(self.run_dir)
                self._repair_metrics()
            return self._fit()

    def _fit(self) -> dict[str, float]:
        cfg = self.cfg
        total = cfg.steps or None
        budget = cfg.budget_s
        if self.model.closed_form:  # PCA, PPCA: fitted once, on all the data; one logged step
            if self.step == 0:
                self.model.fit_data(self._full_pass())
            total, budget = max(self.step, 1), 0.0  # no point spending a budget on them
        if cfg.nan_policy == "rollback" and not (self.run_dir / "checkpoints").is_dir():
            self.save_checkpoint()  # something to roll back to
        self.model.train()
        bar = self._progress(total)
        start = time.perf_counter() - self.elapsed
        last_ckpt_t = time.perf_counter()
        last_ckpt_step = self.step
        acc: dict[str, Tensor] = {}
        n_acc = 0
        bad_step = torch.full((), -1, dtype=torch.long, device=self.device)
        last: dict[str, float] = {}
        t_log = time.perf_counter()
        step_log = self.step
        stop: list[str] = []
        ckpt_due_t = False
        handlers = self._install_signal_handlers(stop)
        try:
            while True:
                self.elapsed = time.perf_counter() - start
                done_steps = total is not None and self.step >= total
                done = done_steps or bool(budget and self.elapsed >= budget)
                if self.dist.enabled:  # ranks stop together (checked every 10 steps)
                    done, ckpt_due_t = self._agree(stop, done, done_steps, last_ckpt_t)
                if stop or done:
                    if self._guard(bad_step):  # rolled back: train the lost steps again
                        acc, n_acc, last_ckpt_step, step_log = {}, 0, self.step, self.step
                        continue
                    if stop:  # SIGINT / SIGTERM: save, then stop with a clear message
                        path = self.save_checkpoint()
                        raise TrainingInterrupted(
                            f"Training stopped by {stop[0]} at step {self.step}; checkpoint saved "
                            f"in {str(path)!r}; continue with --resume {self.run_dir}."
                        )
                    break
                logs, finite, skipped = self.train_step(self._next_batch())
                bad_step = torch.where(
                    (~finite) & (bad_step < 0), torch.full_like(bad_step, self.step + 1), bad_step
                )
                self.step += 1
                if skipped:
                    self._skipped(skipped)
                else:  # a skipped step's NaN logs would spoil the averages
                    for k, v in logs.items():
                        acc[k] = acc.get(k, 0) + v
                    n_acc += 1
                if bar is not None:
                    bar.update(1)
                due_log = self.step % cfg.log_every == 0 or (
                    total is not None and self.step == total
                )
                due_sample = cfg.sample_every and self.step % cfg.sample_every == 0
                due_t = cfg.ckpt_every_s and time.perf_counter() - last_ckpt_t >= cfg.ckpt_every_s
                if self.dist.enabled:
                    due_t = ckpt_due_t  # rank 0's clock, agreed at the last check
                due_ckpt = (cfg.ckpt_every and self.step % cfg.ckpt_every == 0) or due_t
                if (due_log or due_sample or due_ckpt) and self._guard(bad_step):
                    acc, n_acc, last_ckpt_step, step_log = {}, 0, self.step, self.step
                    continue
                if due_log and n_acc:
                    now = time.perf_counter()
                    rate = (self.step - step_log) / max(now - t_log, 1e-9)
                    t_log, step_log = now, self.step
                    acc = distributed.mean_across(acc, self.dist, self.device)
                    last = {k: float(v) / n_acc for k, v in acc.items()}
                    acc, n_acc = {}, 0
                    self._log(last, rate)
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.4g}" for k, v in list(last.items())[:3]})
                if due_sample:
                    self.save_samples()
                if due_ckpt:
                    self.elapsed = time.perf_counter() - start
                    self.save_checkpoint()
                    last_ckpt_t, last_ckpt_step = time.perf_counter(), self.step
        finally:
            if bar is not None:
                bar.close()
            for sig, h in handlers.items():
                signal.signal(sig, h)
        if n_acc:
            last = {k: float(v) / n_acc for k, v in acc.items()}
            self._log(last, 0.0)
        self.elapsed = time.perf_counter() - start
        if self.step != last_ckpt_step or not (self.run_dir / "checkpoints").exists():
            self.save_checkpoint()
        self.save_samples()
        if self._writer is not None:
            self._writer.close()
        return last

    # --- the NaN/Inf guard ---
    def _guard(self, bad_step: Tensor) -> bool:
        """Act on a NaN/Inf seen since the last check: raise (stop), or roll back and return
        True (rollback). Returns False when every step was finite."""
        s = int(distributed.max_across(bad_step, self.dist))  # a fault on any rank
        if s < 0:
            return False
        bad_step.fill_(-1)
        if self.cfg.nan_policy != "rollback" or self.nan_events >= self.cfg.nan_limit:
            self._event({"event": "nan_stop", "bad_step": s})
            raise TrainingDiverged(self._diverged_message(s))
        self.nan_events += 1
        scale = self.lr_scale * self.cfg.nan_lr_factor
        self.load_checkpoint(self.run_dir)
        self.lr_scale = scale
        self._repair_metrics()  # the steps after the checkpoint are trained again
        self._event(
            {"event": "nan_rollback", "bad_step": s, "to_step": self.step, "lr_scale": scale}
        )
        warnings.warn(
            f"NaN/Inf at step {s}: rolled back to the checkpoint of step {self.step} and lowered "
            f"the learning rate to {self._lr():.3g} (x{scale:.3g}); "
            f"fault {self.nan_events} of at most {self.cfg.nan_limit}.",
            RuntimeWarning,
            stacklevel=3,
        )
        return True

    def _skipped(self, groups: list[str]) -> None:
        self.nan_events += 1
        self._event({"event": "nan_skip", "bad_step": self.step, "groups": groups})
        if self.nan_events > self.cfg.nan_limit:
            raise TrainingDiverged(self._diverged_message(self.step))
        warnings.warn(
            f"NaN/Inf at step {self.step}: skipped the update of {', '.join(groups)}; "
            f"fault {self.nan_events} of at most {self.cfg.nan_limit}.",
            RuntimeWarning,
            stacklevel=3,
        )

    def _diverged_message(self, s: int) -> str:
        tried = ""
        if self.cfg.nan_policy != "stop":
            tried = f" after {self.nan_events} {self.cfg.nan_policy} attempts (nan_limit)"
        return (
            f"Training diverged: the loss or gradients became NaN/Inf at step {s}{tried}; the "
            f"last good checkpoint in {str(self.run_dir / 'checkpoints')!r} is kept "
            "(try a lower lr, or nan_policy=skip or rollback)."
        )

    def _repair_metrics(self) -> None:
        if not self.dist.is_main:
            return
        try:
            repair_metrics(self.run_dir, self.step)
        except OSError as e:
            raise storage_error("metrics file", self.run_dir / METRICS_FILE, e) from None

    def _event(self, row: dict[str, Any]) -> None:
        """Append an event row (a NaN/Inf fault and what was done) to metrics.jsonl."""
        self._append_metrics({"step": self.step, **row})

    def _agree(
        self, stop: list[str], done: bool, done_steps: bool, last_ckpt_t: float
    ) -> tuple[bool, bool]:
        """torchrun: every rank must leave the loop (and checkpoint) at the same step. Every 10
        steps one all-reduce shares a stop signal, a spent budget and a due timed checkpoint."""
        if not (done_steps or self.step % 10 == 0):
            return False, False
        due_t = bool(self.cfg.ckpt_every_s) and (
            time.perf_counter() - last_ckpt_t >= self.cfg.ckpt_every_s
        )
        flags = torch.tensor([bool(stop), done, due_t], dtype=torch.float32, device=self.device)
        flags = distributed.max_across(flags, self.dist).tolist()
        if flags[0] and not stop:
            stop.append("a signal to another rank")
        return bool(flags[1]) or done_steps, bool(flags[2])

    def _append_metrics(self, row: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        path = self.run_dir / METRICS_FILE
        try:
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as e:
            raise storage_error("metrics file", path, e) from None

    @staticmethod
    def _install_signal_handlers(stop: list[str]) -> dict[int, Any]:
        """SIGINT/SIGTERM set a flag the loop checks after the current step (main thread only);
        a second signal acts as usual."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        old: dict[int, Any] = {}

        def handler(signum: int, frame: Any) -> None:
            stop.append(signal.Signals(signum).name)
            for sig, h in old.items():
                signal.signal(sig, h)

        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)
        return old

    def _progress(self, total: int | None) -> Any:
        if not self.cfg.progress or not self.dist.is_main:
            return None
        from tqdm.auto import tqdm

        return tqdm(
            total=total,
            initial=self.step,
            desc=f"train {self.model.name}",
            unit="step",
            dynamic_ncols=True,
        )

    def _log(self, metrics: dict[str, float], rate: float) -> None:
        row = {"step": self.step, "time": round(self.elapsed, 3), "lr": self._lr(), **metrics}
        if rate:
            row["steps_per_s"] = round(rate, 3)
        self._append_metrics(row)
        if self.cfg.tensorboard and self.dist.is_main:
            if self._writer is None:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                except ImportError:  # tensorboard not installed: JSONL only
                    self.cfg = self.cfg.replace(tensorboard=False)
                    return
                self._writer = SummaryWriter(str(self.run_dir / "events"))
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self._writer.add_scalar(k, v, self.step)

    # --- samples ---
    def sampling_model(self) -> GenerativeModel:
        return self.ema.model if self.ema is not None else self.model  # type: ignore[return-value]

    def save_samples(self) -> Path | None:
        from genzoo.viz import save_samples_png

        model = self.sampling_model()
        if not model.draws_samples or not self.dist.is_main:  # e.g. CLIP, VQA: nothing to draw
            return None
        was_training = model.training
        model.eval()
        g = make_generator(self.cfg.seed + 2, device=self.device)
        x = model.sample(self.cfg.n_samples, generator=g)
        model.train(was_training)
        path = self.run_dir / "samples" / f"step_{self.step:09d}.png"
        ref = self.data.x[:2000].cpu() if self.data.info.kind == "points" else None
        try:
            save_samples_png(x, self.data.info, path, reference=ref, title=f"step {self.step}")
        except OSError as e:
            raise storage_error("sample grid", path, e) from None
        return path

    # --- checkpoints ---
    def save_checkpoint(self) -> Path:
        files: dict[str, dict[str, Tensor]] = {"model": self.model.state_dict()}
        if self.ema is not None:
            files["ema"] = self.ema.model.state_dict()
        trainer: dict[str, Tensor] = dict(rng_state())
        opt_meta = {}
        for name, opt in self.optimizers.items():
            t, meta = optimizer_to_flat(opt, f"opt.{name}")
            trainer.update(t)
            opt_meta[name] = meta
        trainer["data.generator"] = self.data_gen.get_state()
        trainer["data.perm"] = self.perm
        if self.scaler.is_enabled():
            trainer["scaler.scale"] = self.scaler.get_scale() * torch.ones(())
        files["trainer"] = trainer
        state = {
            "step": self.step,
            "elapsed": self.elapsed,
            "data_pos": self.pos,
            "optimizers": opt_meta,
            "model": self.model.name,
            "lr_scale": self.lr_scale,
        }
        path = self.run_dir / "checkpoints"
        if self.dist.is_main:  # torchrun: rank 0 writes, the others wait until it is on disk
            path = write_checkpoint(path, self.step, files, state, keep=self.cfg.keep)
        distributed.barrier(self.dist)
        return path

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        """Restore model, EMA, optimizers, RNG and data order from the run's latest checkpoint."""
        ckpt = find_checkpoint(path or self.run_dir)
        files, state = read_checkpoint(ckpt)
        for need in ["model", "trainer"] + (["ema"] if self.ema is not None else []):
            if need not in files:
                raise CheckpointError(f"Checkpoint {str(ckpt)!r} lacks {need}.safetensors.")
        load_state_strict(self.model, files["model"], str(ckpt))
        if self.ema is not None:
            load_state_strict(self.ema.model, files["ema"], str(ckpt))
        tr = files["trainer"]
        for name, opt in self.optimizers.items():
            meta = state.get("optimizers", {}).get(name)
            if meta is None:
                raise CheckpointError(f"Checkpoint {str(ckpt)!r} has no optimizer {name!r}.")
            optimizer_from_flat(opt, tr, meta, f"opt.{name}")
        set_rng_state(tr)
        self.data_gen.set_state(tr["data.generator"])
        self.perm = tr["data.perm"].long()
        self.pos = int(state.get("data_pos", 0))
        if "scaler.scale" in tr and self.scaler.is_enabled():
            self.scaler.update(float(tr["scaler.scale"]))
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        self.lr_scale = float(state.get("lr_scale", 1.0))
        if self.dist.enabled:  # the checkpoint holds rank 0's RNG: keep the ranks' noise apart
            torch.manual_seed(self.cfg.seed + 7919 * self.dist.rank + 104729 * self.step)
