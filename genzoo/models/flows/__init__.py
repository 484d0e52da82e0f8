"""Normalizing flows: importing this package registers ``nice``, ``realnvp`` and ``glow``."""

from genzoo.models.flows.base import FlowModel
from genzoo.models.flows.glow import Glow, GlowConfig
from genzoo.models.flows.nice import NICE, NICEConfig
from genzoo.models.flows.realnvp import RealNVP, RealNVPConfig

__all__ = ["NICE", "FlowModel", "Glow", "GlowConfig", "NICEConfig", "RealNVP", "RealNVPConfig"]
