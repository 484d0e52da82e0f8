"""Protocols, registry, configs, seeding and safe I/O shared by every family."""

from genzoo.core.config import Config
from genzoo.core.errors import CheckpointError, ConfigError, DataError, GenzooError
from genzoo.core.protocol import Batch, GenerativeModel, LossOutput
from genzoo.core.registry import MODELS, register_model

__all__ = [
    "MODELS",
    "Batch",
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataError",
    "GenerativeModel",
    "GenzooError",
    "LossOutput",
    "register_model",
]
