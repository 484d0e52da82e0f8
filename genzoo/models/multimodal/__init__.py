"""Multimodal family: importing this package registers ``clip``, ``captioner``, ``vqa`` and
``llava``, and the single- and two-stream vision-language encoders ``visualbert`` and
``vilbert``."""

from genzoo.models.multimodal.captioner import Captioner, CaptionerConfig
from genzoo.models.multimodal.clip import CLIP, CLIPConfig
from genzoo.models.multimodal.llava import LLaVA, LLaVAConfig
from genzoo.models.multimodal.single_stream import SingleStreamConfig, SingleStreamVL
from genzoo.models.multimodal.two_stream import TwoStreamConfig, TwoStreamVL
from genzoo.models.multimodal.vqa import VQA, VQAConfig

__all__ = [
    "CLIP",
    "VQA",
    "CLIPConfig",
    "Captioner",
    "CaptionerConfig",
    "LLaVA",
    "LLaVAConfig",
    "SingleStreamConfig",
    "SingleStreamVL",
    "TwoStreamConfig",
    "TwoStreamVL",
    "VQAConfig",
]
