"""The one Trainer for every genzoo model.

It loops over the model's parameter groups (one for most models; generator and discriminator for
GANs), calls ``model.loss(batch, group)``, and handles everything around it: device, autocast
precision, EMA, gradient clipping, a step or time budget, a progress bar, metrics to JSONL and
TensorBoard, sample grids, atomic safetensors checkpoints, exact resume, and a NaN/Inf guard.

Reliability: one process at a time trains into a run directory (a lock, see
:mod:`genzoo.train.safety`); a run killed at any moment (even SIGKILL) resumes from its last
checkpoint, bit for bit on CPU; SIGINT/SIGTERM save a checkpoint first; a full or read-only disk
stops training with a :class:`StorageError` and leaves the previous checkpoint intact.

The loop (:meth:`Trainer._fit`) only sequences its collaborators: :mod:`~genzoo.train.batches`
(the data order), :mod:`~genzoo.train.cadence` (when to log, draw samples, checkpoint and stop,
agreed across torchrun ranks), :mod:`~genzoo.train.nan_guard` (stop, skip or roll back on a
NaN/Inf) and :mod:`~genzoo.train.metrics_log` (averaged logs to JSONL and TensorBoard).
"""

from __future__ import annotations

import copy
import math
import re
import sys
import time
from contextlib import closing, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import (
    CheckpointError,
    ConfigError,
    TrainingDiverged,
    TrainingInterrupted,
)
from genzoo.core.io import load_state_strict
from genzoo.core.protocol import ClosedForm, GenerativeModel, Samples
from genzoo.core.seeding import check_seed, make_generator
from genzoo.core.threads import default_threads
from genzoo.data.base import Dataset
from genzoo.train import distributed
from genzoo.train.batches import BatchSource
from genzoo.train.cadence import Cadence
from genzoo.train.checkpoint import (
    find_checkpoint,
    optimizer_from_flat,
    optimizer_to_flat,
    read_checkpoint,
    rng_state,
    set_rng_state,
    write_checkpoint,
)
from genzoo.train.metrics_log import MetricsLog, progress_bar
from genzoo.train.nan_guard import NaNGuard
from genzoo.train.safety import RunLock, clean_temp_files, storage_error
from genzoo.viz import save_samples_png

__all__ = ["EMA", "TrainConfig", "Trainer", "TrainingDiverged", "end_reserve", "parse_duration"]


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

    steps: int = bounded(0, ge=0)  # total optimizer steps to reach (0: no limit; needs a budget)
    budget: str = ""  # total wall-clock training time, e.g. "5m" (empty: no time limit)
    batch_size: int = bounded(128, ge=1)  # examples per step
    lr: float = bounded(1e-3, gt=0)  # AdamW learning rate
    weight_decay: float = bounded(0.0, ge=0)  # AdamW weight decay
    betas: tuple[float, float] = bounded((0.9, 0.999), ge=0, lt=1)  # AdamW betas
    warmup: int = bounded(0, ge=0)  # linear learning-rate warm-up steps
    lr_decay: Literal["none", "cosine"] = "none"  # cosine: lr * (1 + cos(pi * step / steps)) / 2
    grad_clip: float = bounded(1.0, ge=0)  # clip the global gradient norm (0: off)
    ema_decay: float = bounded(0.0, ge=0, lt=1)  # EMA of the weights (0: off); samples use it
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    compile: bool = False  # torch.compile the model's loss (weights are saved without wrappers)
    channels_last: bool = False  # images: NHWC memory layout for the model and batches (faster
    # convolutions with bf16 on recent GPUs)
    seed: int = 0  # seeds weights, data order and noise; CPU runs are reproducible bit for bit
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    log_every: int = bounded(50, ge=1)  # steps between metric lines
    sample_every: int = bounded(0, ge=0)  # steps between sample grids (0: only at the end)
    ckpt_every: int = bounded(1000, ge=0)  # steps between checkpoints (also at the end)
    ckpt_every_s: float = bounded(300.0, ge=0)  # seconds between checkpoints (0: off)
    keep: int = bounded(2, ge=0)  # checkpoints kept on disk
    n_samples: int = bounded(64, ge=1)  # samples in each grid
    nan_policy: Literal["stop", "skip", "rollback"] = "stop"  # on a NaN/Inf loss or gradient
    nan_lr_factor: float = bounded(0.5, gt=0, le=1)  # rollback: lr multiplied by this each time
    nan_limit: int = bounded(10, ge=0)  # skip/rollback: stop after this many faults in a process
    progress: bool = True  # show a progress bar
    tensorboard: bool = True  # also write TensorBoard events

    def validate(self) -> None:
        if not parse_duration(self.budget) >= 0:
            raise ConfigError(f"budget = {self.budget!r} must be a duration >= 0, e.g. '5m'.")
        if self.lr_decay == "cosine" and self.steps == 0:
            raise ConfigError("lr_decay = 'cosine' decays over a step count; give steps > 0.")
        check_seed(self.seed)

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


def end_reserve(
    trial_s: float, trial_n: int, n_samples: int, ckpt_bytes: int, budget: float
) -> tuple[float, int]:
    """``(seconds, samples)``: what a time budget keeps for the work after the last step, and the
    samples of the end-of-run grid. The grid's time is scaled from a grid of ``trial_n`` that
    took ``trial_s`` (sampling time grows at most linearly with the batch), the checkpoint's is
    0.5 s plus ``ckpt_bytes`` at 100 MB/s (a slow disk). The reserve is at most half the budget:
    when ``n_samples`` would not fit in it, the grid shrinks to what does (at least 1)."""
    per = trial_s / max(trial_n, 1)
    ckpt = 0.5 + ckpt_bytes / 100e6
    room = budget / 2 - ckpt
    n = n_samples if per * n_samples <= room else max(1, min(n_samples, int(room / per)))
    return min(per * n + ckpt, budget / 2), n


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
    """Train ``model`` on ``data`` into ``run_dir`` under ``config``.

    The Trainer leaves ``data`` and ``config`` as they are given; what it derives from them (a
    copy of the data on the device, a closed-form model's one step, TensorBoard being off) is
    its own state. Its collaborators: :class:`~genzoo.train.batches.BatchSource` (the data
    order), :class:`~genzoo.train.cadence.Cadence` (when to log, sample, checkpoint and stop),
    :class:`~genzoo.train.nan_guard.NaNGuard` and :class:`~genzoo.train.metrics_log.MetricsLog`.
    """

    def __init__(
        self,
        model: GenerativeModel,
        data: Dataset,
        config: TrainConfig,
        run_dir: str | Path,
        test_data: Dataset | None = None,
    ) -> None:
        if config.steps == 0 and config.budget_s == 0 and not isinstance(model, ClosedForm):
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
        nhwc = config.channels_last and data.info.kind == "images"
        if nhwc:
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
        self.budget_spent = 0.0  # the largest time budget (s) that has ended this run's training
        self.threads = 0  # intra-op CPU threads of the last fit (0: not on the CPU)
        self.lr_scale = 1.0  # lowered by nan_policy = rollback
        self.batches = BatchSource(
            data,
            batch_size=config.batch_size,
            seed=config.seed,
            device=self.device,
            dist=self.dist,
            dequantize=model.dequantize,
            channels_last=nhwc,
        )
        self.log = MetricsLog(self.run_dir, self.dist, self.device, tensorboard=config.tensorboard)
        self.guard = NaNGuard(
            policy=config.nan_policy,
            limit=config.nan_limit,
            lr_factor=config.nan_lr_factor,
            ckpt_dir=self.run_dir / "checkpoints",
            log=self.log,
            dist=self.dist,
            device=self.device,
        )
        loss_fn: Any = model.loss
        if self.dist.enabled and self.optimizers:  # DDP averages the ranks' gradients
            loss_fn = distributed.wrap(model, self.device, multi=len(self.optimizers) > 1)
            torch.manual_seed(config.seed + 7919 * self.dist.rank)  # independent noise per rank
        self._loss_fn = torch.compile(loss_fn) if config.compile else loss_fn
        self._cadence: Cadence | None = None  # the schedule of the fit in progress
        self._end_n: int | None = None  # a budget run's end-of-run grid size (None: n_samples)

    # --- set-up helpers ---------------------------------------------------------------------------
    def _amp_dtype(self) -> torch.dtype | None:
        p = self.cfg.precision
        if p == "auto":
            p = "bf16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[p]

    def _lr(self, group: str | None = None) -> float:
        base = (self.group_lr[group] if group is not None else self.cfg.lr) * self.lr_scale
        if self.cfg.lr_decay == "cosine" and self.cfg.steps > 0:  # to 0 at the last step
            base *= 0.5 * (1.0 + math.cos(math.pi * min(self.step / self.cfg.steps, 1.0)))
        if self.cfg.warmup > 0:
            return base * min(1.0, (self.step + 1) / self.cfg.warmup)
        return base

    # --- one step ---
    def _next_batch(self) -> dict[str, Tensor]:
        """The next training batch (``self.batches.next()``; kept for tests that step by hand)."""
        return self.batches.next()

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
                b = batch if r == 0 else self.batches.next()  # n_critic: a fresh batch each time
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
        before = torch.get_num_threads()
        if self.device.type == "cpu":  # the idle cores (genzoo.core.threads; GENZOO_THREADS)
            self.threads = default_threads()
            torch.set_num_threads(self.threads)
        try:
            with RunLock(self.run_dir) if main else nullcontext():
                if main:
                    clean_temp_files(self.run_dir)
                    self.log.repair(self.step)
                return self._fit()
        finally:
            torch.set_num_threads(before)

    def _fit(self) -> dict[str, float]:
        cadence = self._begin()
        show = self.cfg.progress and self.dist.is_main
        if cadence.budget and not isinstance(self.model, ClosedForm):
            self._reserve_end(cadence, show)
        threads = f", {self.threads} CPU thread{'s' * (self.threads > 1)}" if self.threads else ""
        bar = progress_bar(show, cadence.total, self.step, f"train {self.model.name}{threads}")
        post: dict[str, str] = {}
        shown_t = 0.0
        with cadence.catch_signals(), closing(bar):
            while True:
                self.elapsed = cadence.elapsed()
                if cadence.finished(self.step, self.elapsed):
                    if self.guard.check(self.step, self._roll_back):
                        continue  # rolled back: train the lost steps again
                    if cadence.stop:  # SIGINT / SIGTERM: save, then stop with a message
                        self._interrupted(cadence.stop[0])
                    break
                logs, finite, skipped = self.train_step(self.batches.next())
                self.guard.note(finite, self.step + 1)
                self.step += 1
                if skipped:
                    self.guard.skipped(self.step, skipped)
                else:  # a skipped step's NaN logs would spoil the averages
                    self.log.add(logs)
                bar.update(1)
                due = cadence.due(self.step)
                if due and self.guard.check(self.step, self._roll_back):
                    continue  # nothing is logged, drawn or saved from a diverged model
                refresh = False
                if due.log and (last := self.log.flush(self.step, self.elapsed, self._lr())):
                    post, refresh = {k: f"{v:.4g}" for k, v in list(last.items())[:3]}, True
                elif show and self.step & (self.step - 1) == 0:  # steps 1, 2, 4, 8, ...: a
                    # slow run shows its loss before the first log line (the logs' running mean)
                    post = {k: f"{v:.4g}" for k, v in list(self.log.running().items())[:3]}
                    refresh = True
                left = cadence.left(cadence.elapsed())
                if show and left is not None and time.perf_counter() - shown_t > 0.5:
                    shown_t, refresh = time.perf_counter(), True  # a budget run: time left
                if show and refresh:
                    bar.set_postfix(post if left is None else {**post, "left": f"{left:.0f}s"})
                if due.sample:
                    self.save_samples()
                if due.ckpt:
                    self.elapsed = cadence.elapsed()
                    self.save_checkpoint()
                    cadence.checkpointed(self.step)
        return self._end(cadence)

    def _begin(self) -> Cadence:
        """Before the first step of a ``fit``: a closed-form fit, something to roll back to, and
        the schedule (a closed-form model takes one logged step and no budget)."""
        cfg = self.cfg
        total, budget = cfg.steps or None, cfg.budget_s
        if isinstance(self.model, ClosedForm):  # PCA, PPCA: fitted once, on all the data
            if self.step == 0:
                self.model.fit_data(self.batches.full_pass())
            total, budget = max(self.step, 1), 0.0
        if cfg.nan_policy == "rollback" and not (self.run_dir / "checkpoints").is_dir():
            self.save_checkpoint()
        self.model.train()
        self._cadence = Cadence(
            total=total,
            budget=budget,
            log_every=cfg.log_every,
            sample_every=cfg.sample_every,
            ckpt_every=cfg.ckpt_every,
            ckpt_every_s=cfg.ckpt_every_s,
            step=self.step,
            elapsed=self.elapsed,
            dist=self.dist,
            device=self.device,
        )
        self.log.start(self.step)
        return self._cadence

    def _reserve_end(self, cadence: Cadence, show: bool) -> None:
        """A budget bounds the whole run: time a small grid of the model's preview sampler now,
        keep what the end-of-run checkpoint and grid will take out of the budget
        (:func:`end_reserve`), and say so up front."""
        model = self.sampling_model()
        if not isinstance(model, Samples) or not self.dist.is_main:
            return
        n_trial = min(8, self.cfg.n_samples)
        t0 = time.perf_counter()
        self._draw(n_trial)
        trial_s = time.perf_counter() - t0
        params = sum(p.numel() * p.element_size() for p in self.model.parameters())
        ckpt_bytes = params * (2 + len(self.optimizers) + (self.ema is not None))  # + Adam's 2
        cadence.reserve, self._end_n = end_reserve(
            trial_s, n_trial, self.cfg.n_samples, ckpt_bytes, cadence.budget
        )
        n_end = self._end_n
        if n_end == self.cfg.n_samples:
            self._end_n = None  # the usual grid
        if show:
            opts = ", ".join(f"{k}={v}" for k, v in model.preview_options.items())
            short = f" (of {self.cfg.n_samples}: the budget is short)" * (
                n_end < self.cfg.n_samples
            )
            print(
                f"budget {cadence.budget:g} s: training stops at "
                f"{cadence.budget - cadence.reserve:.1f} s, keeping {cadence.reserve:.1f} s for "
                f"the last checkpoint and a {n_end}-sample grid{short}"
                + (f" ({opts})" if opts else ""),
                file=sys.stderr,
                flush=True,
            )

    def _end(self, cadence: Cadence) -> dict[str, float]:
        """After the last step: the last log line, checkpoint and sample grid."""
        self.log.flush_rest(self.step, self.elapsed, self._lr())
        self.elapsed = cadence.elapsed()
        if cadence.budget and not (cadence.total and self.step >= cadence.total):
            # the budget ended the run (its reserve belongs to the work below): a resume with
            # the same budget has nothing left to train, and says so
            self.budget_spent = max(self.budget_spent, cadence.budget)
        if self.step != cadence.last_ckpt_step or not (self.run_dir / "checkpoints").exists():
            self.save_checkpoint()
        if self._end_n is None:
            self.save_samples()
        else:  # a budget run whose grid had to shrink to fit
            self.save_samples(self._end_n)
        self._end_n = None
        self.log.close()
        self._cadence = None
        return self.log.last

    def _roll_back(self, lr_factor: float) -> tuple[int, float, float]:
        """The NaN guard's rollback: the last checkpoint, with the learning rate lowered."""
        scale = self.lr_scale * lr_factor
        self.load_checkpoint(self.run_dir)
        self.lr_scale = scale
        self.log.repair(self.step)  # the steps after the checkpoint are trained again
        self.log.begin(self.step)
        if self._cadence is not None:
            self._cadence.rolled_back(self.step)
        return self.step, scale, self._lr()

    def _interrupted(self, signal_name: str) -> None:
        path = self.save_checkpoint()
        raise TrainingInterrupted(
            f"Training stopped by {signal_name} at step {self.step}; checkpoint saved "
            f"in {str(path)!r}; continue with --resume {self.run_dir}."
        )

    # --- samples ---
    def sampling_model(self) -> GenerativeModel:
        return self.ema.model if self.ema is not None else self.model  # type: ignore[return-value]

    def _draw(self, n: int) -> Tensor:
        """``n`` samples of the sampling model in eval mode with its ``preview_options`` (the
        training RNG is left as it was)."""
        model = self.sampling_model()
        assert isinstance(model, Samples)
        was_training = model.training
        model.eval()
        g = make_generator(self.cfg.seed + 2, device=self.device)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            x = model.sample(n, generator=g, **model.preview_options)
        model.train(was_training)
        return x

    def save_samples(self, n: int | None = None) -> Path | None:
        """A grid of ``n`` (default ``n_samples``) samples (EMA weights if on) for models that
        draw samples, with the model's ``preview_options``; rank 0 only."""
        model = self.sampling_model()
        if not isinstance(model, Samples) or not self.dist.is_main:  # e.g. CLIP: nothing to draw
            return None
        x = self._draw(n or self.cfg.n_samples)
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
        data_tensors, data_pos = self.batches.state()
        trainer.update(data_tensors)
        if self.scaler.is_enabled():
            trainer["scaler.scale"] = self.scaler.get_scale() * torch.ones(())
        files["trainer"] = trainer
        state = {
            "step": self.step,
            "elapsed": self.elapsed,
            "data_pos": data_pos,
            "optimizers": opt_meta,
            "model": self.model.name,
            "lr_scale": self.lr_scale,
        }
        if self.budget_spent:  # only runs that a budget ended (the state of others is unchanged)
            state["budget_spent"] = self.budget_spent
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
        self.batches.load_state(tr, int(state.get("data_pos", 0)))
        if "scaler.scale" in tr and self.scaler.is_enabled():
            self.scaler.update(float(tr["scaler.scale"]))
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        self.budget_spent = float(state.get("budget_spent", 0.0))
        self.lr_scale = float(state.get("lr_scale", 1.0))
        if self.dist.enabled:  # the checkpoint holds rank 0's RNG: keep the ranks' noise apart
            torch.manual_seed(self.cfg.seed + 7919 * self.dist.rank + 104729 * self.step)
