"""The one Trainer (the run-level API, ``train``/``load``/``sample``/``evaluate``, is
:mod:`genzoo.runs`)."""

from genzoo.train.trainer import TrainConfig, Trainer

__all__ = ["TrainConfig", "Trainer"]
