"""Metrics: likelihood units and 2-D mode statistics (more in later issues)."""

from genzoo.metrics.likelihood import bits_per_dim
from genzoo.metrics.toy2d import mode_stats

__all__ = ["bits_per_dim", "mode_stats"]
