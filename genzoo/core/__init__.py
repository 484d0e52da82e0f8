"""Protocols, registry, configs, seeding and safe I/O shared by every family.

The names below are imported on first use (PEP 562), so that ``genzoo.core.errors`` (all the
command line needs before it has parsed its arguments) comes without torch."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Config": "genzoo.core.config",
    "CheckpointError": "genzoo.core.errors",
    "ConfigError": "genzoo.core.errors",
    "DataError": "genzoo.core.errors",
    "GenzooError": "genzoo.core.errors",
    "Batch": "genzoo.core.protocol",
    "GenerativeModel": "genzoo.core.protocol",
    "LossOutput": "genzoo.core.protocol",
    "MODELS": "genzoo.core.registry",
    "register_model": "genzoo.core.registry",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'genzoo.core' has no attribute {name!r}")
