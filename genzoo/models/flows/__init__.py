"""Normalizing flows: importing this package registers ``nice``, ``realnvp``, ``glow``, ``maf``
and ``iaf``."""

from genzoo.models.flows.base import FlowModel
from genzoo.models.flows.glow import Glow, GlowConfig
from genzoo.models.flows.maf import IAF, MAF, MAFConfig
from genzoo.models.flows.nice import NICE, NICEConfig
from genzoo.models.flows.realnvp import RealNVP, RealNVPConfig

__all__ = [
    "IAF",
    "MAF",
    "NICE",
    "FlowModel",
    "Glow",
    "GlowConfig",
    "MAFConfig",
    "NICEConfig",
    "RealNVP",
    "RealNVPConfig",
]
