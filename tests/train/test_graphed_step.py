"""The CUDA-graph training step (genzoo/train/graphed.py) on the CPU, where no graph can be
captured: it says so in one sentence, refuses what a graph cannot do, and its step (static
inputs, device-tensor learning rate and EMA weight, the same clipping and AdamW) is the Trainer's
step bit for bit: the same losses, gradient norms, weights and EMA weights after every step, with a
learning-rate warm-up and the EMA's decay warm-up both moving."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import GenerativeModel, LossOutput
from genzoo.data import load_dataset
from genzoo.models import MODELS
from genzoo.train.graphed import GraphedStep
from genzoo.train.trainer import TrainConfig, Trainer

UNET = {"channels": 8, "channel_mult": (1, 2), "num_res_blocks": 1, "attn_resolutions": (4,)}


def _trainer(tmp_path, name: str, **over) -> Trainer:
    data = load_dataset("digits", "train")
    torch.manual_seed(0)
    cls = MODELS.get("ddpm")
    model = cls(cls.config_class.from_dict({**UNET, "dropout": 0.1}), data.info)
    settings = {
        "steps": 10,
        "batch_size": 8,
        "lr": 2e-3,
        "warmup": 3,
        "grad_clip": 0.05,  # small enough to clip: the clipping path is exercised
        "ema_decay": 0.9,
        "device": "cpu",
        "progress": False,
        "tensorboard": False,
        **over,
    }
    return Trainer(model, data, TrainConfig.from_dict(settings), tmp_path / name)


def _run(trainer: Trainer, step_fn, steps: int) -> list[tuple[float, float]]:
    torch.manual_seed(1)  # the diffusion noise and dropout: the same draws on both sides (CUDA's
    # generator too: torch.manual_seed seeds every device)
    out = []
    for _ in range(steps):
        logs, finite, skipped = step_fn(trainer.batches.next())
        assert bool(finite) and skipped == []
        trainer.step += 1
        out.append((float(logs["loss"]), float(logs["grad_norm"])))
    return out


def test_cpu_fallback_is_the_trainers_step_bit_for_bit(tmp_path):
    plain = _trainer(tmp_path, "plain")
    graphed_tr = _trainer(tmp_path, "graphed")
    with pytest.warns(UserWarning, match="needs a CUDA device; on cpu the training step runs"):
        step = GraphedStep(graphed_tr, warmup=2)
    assert step.fallback is not None and step.fallback.count(".") == 1  # one sentence
    a = _run(plain, plain.train_step, 4)  # warm-up lr 1/3, 2/3, 1, 1 of 2e-3; EMA decay 0.1..
    b = _run(graphed_tr, step, 4)
    assert a == b  # losses and gradient norms, exactly
    assert a[0][1] > 0.05  # the gradients were clipped (norm above grad_clip)
    for p, q in zip(plain.model.parameters(), graphed_tr.model.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(plain.ema.model.parameters(), graphed_tr.ema.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert step.calls == 4 and step.captures == 0


def test_refuses_what_a_graph_cannot_do(tmp_path):
    tr = _trainer(tmp_path, "skip", nan_policy="skip")
    with pytest.raises(ConfigError, match="cannot drop an update"):
        GraphedStep(tr)
    tr = _trainer(tmp_path, "ok")
    with pytest.warns(UserWarning):
        step = GraphedStep(tr)
    batch = tr.batches.next()
    step(batch)
    short = {k: v[:4] for k, v in batch.items()}
    with pytest.raises(ConfigError, match="fixed batch"):
        step(short)


class _Denoise(GenerativeModel):
    """A deterministic loss (no noise draws): a small conv net with GroupNorm and SiLU learns to
    map each image to its mirror image; graph replays and eager steps must then agree to
    rounding."""

    def __init__(self, info) -> None:
        super().__init__(None, info)
        c = info.shape[0]
        self.net = nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1), nn.GroupNorm(4, 16), nn.SiLU(), nn.Conv2d(16, c, 1)
        )

    def loss(self, batch, group="main"):
        x = batch["x"]
        loss = ((self.net(x) - x.flip(-1)) ** 2).mean()
        return LossOutput(loss, {"loss": loss.detach()})


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="a CUDA graph needs a CUDA device")


def _cuda_trainer(tmp_path, name, model, compile):
    data = load_dataset("digits", "train")
    cfg = TrainConfig.from_dict(
        {
            "steps": 10,
            "batch_size": 8,
            "lr": 2e-3,
            "warmup": 3,
            "grad_clip": 0.05,
            "ema_decay": 0.9,
            "device": "cuda",
            "precision": "fp32",
            "compile": compile,
            "progress": False,
            "tensorboard": False,
        }
    )
    tr = Trainer(model(data.info), data, cfg, tmp_path / name)
    torch.backends.cuda.matmul.allow_tf32 = False  # the Trainer turns TF32 on
    torch.backends.cudnn.allow_tf32 = False
    return tr


@CUDA
@pytest.mark.parametrize("compile", [False, True])
def test_cuda_graph_replays_train_like_the_eager_step(tmp_path, compile):
    """On a GPU (benchmarks/gpu_session.py runs it first): two eager warm-up steps, one capture,
    then replays; the losses, gradient norms and EMA weights follow the Trainer's eager steps
    (warm-up learning rate, clipping and the EMA's decay warm-up all moving) to fp32 rounding."""

    def model(info):
        torch.manual_seed(0)
        return _Denoise(info)

    plain = _cuda_trainer(tmp_path, "plain", model, compile)
    graphed_tr = _cuda_trainer(tmp_path, "graphed", model, compile)
    step = GraphedStep(graphed_tr, warmup=2)
    assert step.fallback is None
    a = _run(plain, plain.train_step, 6)
    b = _run(graphed_tr, step, 6)
    assert step.captures == 1 and step.calls == 6
    for (la, na), (lb, nb) in zip(a, b, strict=True):
        assert lb == pytest.approx(la, rel=1e-4) and nb == pytest.approx(na, rel=1e-4)
    pa = torch.cat([p.flatten() for p in plain.ema.model.parameters()])
    pb = torch.cat([p.flatten() for p in graphed_tr.ema.model.parameters()])
    assert float((pa - pb).norm() / pa.norm()) < 1e-4


@CUDA
def test_cuda_graph_of_the_diffusion_step_draws_new_noise_each_replay(tmp_path):
    """The U-Net diffusion loss draws timesteps and noise on the GPU inside the graph: each replay
    must draw new ones (the same batch gives different losses)."""
    tr = _trainer(tmp_path, "ddpm", device="cuda", precision="bf16")
    step = GraphedStep(tr, warmup=2)
    batch = tr.batches.next()
    losses = []
    for _ in range(8):
        logs, finite, _ = step(batch)
        tr.step += 1
        assert bool(finite)
        losses.append(float(logs["loss"]))
    assert step.captures == 1
    assert len({round(v, 6) for v in losses[2:]}) == 6  # new noise at every replay
