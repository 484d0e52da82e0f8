"""Multimodal family: importing this package registers ``clip``, ``captioner`` and ``vqa``."""

from genzoo.models.multimodal.captioner import Captioner, CaptionerConfig
from genzoo.models.multimodal.clip import CLIP, CLIPConfig
from genzoo.models.multimodal.vqa import VQA, VQAConfig

__all__ = ["CLIP", "VQA", "CLIPConfig", "Captioner", "CaptionerConfig", "VQAConfig"]
