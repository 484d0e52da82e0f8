"""Self-supervised representation learning: importing this package registers ``simclr``,
``moco``, ``byol`` and ``dino`` (see docs/ssl.md). They learn an encoder from augmented views of
unlabelled images and draw no samples; their representation is probed by ``genzoo eval``."""

from genzoo.models.ssl.base import SSLConfig, SSLModel
from genzoo.models.ssl.byol import BYOL, BYOLConfig
from genzoo.models.ssl.dino import DINO, DINOConfig
from genzoo.models.ssl.moco import MoCo, MoCoConfig
from genzoo.models.ssl.simclr import SimCLR, SimCLRConfig

__all__ = [
    "BYOL",
    "DINO",
    "BYOLConfig",
    "DINOConfig",
    "MoCo",
    "MoCoConfig",
    "SSLConfig",
    "SSLModel",
    "SimCLR",
    "SimCLRConfig",
]
