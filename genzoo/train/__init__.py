"""The one Trainer, and the run-level API (train, load, evaluate, sample)."""

from genzoo.train.run import evaluate, load, sample, train
from genzoo.train.trainer import TrainConfig, Trainer

__all__ = ["TrainConfig", "Trainer", "evaluate", "load", "sample", "train"]
