"""genzoo: every family of deep generative model, one library, one way to train, sample, evaluate.

import genzoo
run = genzoo.train("ddpm", "digits", steps=3000)
x = genzoo.load(run).sample(64)

The API is imported on first use (PEP 562), so that ``genzoo --help`` and argument errors answer
without importing torch.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "evaluate", "interpolate", "load", "open_run", "sample", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("genzoo.runs"), name)
    raise AttributeError(f"module 'genzoo' has no attribute {name!r}")


class _Package(types.ModuleType):
    """``genzoo.train`` is the API function :func:`genzoo.runs.train`, also once the Trainer's
    subpackage of the same name is imported (the import system binds a subpackage to its
    parent's attribute; here that binding is left out)."""

    @property
    def train(self) -> Any:
        return importlib.import_module("genzoo.runs").train

    @train.setter
    def train(self, value: Any) -> None:
        if not isinstance(value, types.ModuleType):
            raise AttributeError("genzoo.train is the API function genzoo.runs.train")


sys.modules[__name__].__class__ = _Package
