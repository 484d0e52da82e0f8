"""The side-by-side comparison of the families and its reports."""

from genzoo.compare.run import QUICK_MODELS, compare

__all__ = ["QUICK_MODELS", "compare"]
