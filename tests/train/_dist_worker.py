"""Run by tests/train/test_distributed.py under torchrun: one training step through the Trainer
(DDP when WORLD_SIZE > 1), then this rank's gradients and parameters are saved for comparison."""

from __future__ import annotations

import os
import sys

import torch

from genzoo.core.io import save_tensors
from genzoo.data import load_dataset
from genzoo.runs.load import build_model
from genzoo.train.trainer import TrainConfig, Trainer


def main(out: str, model: str, steps: int) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = load_dataset("toy2d:8gaussians", "train")
    small = {"realnvp": {"couplings": 4, "hidden": [16, 16]}, "gan": {"hidden": [16, 16]}}
    net = build_model(model, data.info, small[model])
    cfg = TrainConfig.from_dict(
        {"batch_size": 64, "steps": steps, "progress": False, "tensorboard": False, "lr": 1e-2}
    )
    trainer = Trainer(net, data, cfg, os.path.join(out, "run"))
    for _ in range(steps):
        trainer.train_step(trainer.batches.next())
        trainer.step += 1
    rank = int(os.environ.get("RANK", "0"))
    tensors = {f"param/{n}": p.detach().clone() for n, p in net.named_parameters()}
    tensors.update(
        {f"grad/{n}": p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    )
    save_tensors(os.path.join(out, f"rank{rank}.safetensors"), tensors)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
