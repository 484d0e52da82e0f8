"""Multimodal family: importing this package registers ``clip``, ``captioner``, ``vqa`` and
``llava``."""

from genzoo.models.multimodal.captioner import Captioner, CaptionerConfig
from genzoo.models.multimodal.clip import CLIP, CLIPConfig
from genzoo.models.multimodal.llava import LLaVA, LLaVAConfig
from genzoo.models.multimodal.vqa import VQA, VQAConfig

__all__ = [
    "CLIP",
    "VQA",
    "CLIPConfig",
    "Captioner",
    "CaptionerConfig",
    "LLaVA",
    "LLaVAConfig",
    "VQAConfig",
]
