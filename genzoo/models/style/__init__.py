"""Neural style transfer: Gatys' optimisation (:func:`gatys`) and the ``adain`` model."""

from genzoo.models.style.adain import AdaIN, AdaINConfig
from genzoo.models.style.gatys import GatysResult, gatys

__all__ = ["AdaIN", "AdaINConfig", "GatysResult", "gatys"]
