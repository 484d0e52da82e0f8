"""Linear family: importing this package registers its models (``pca``, ``ppca``)."""

from genzoo.models.linear.pca import PCA, PCAConfig
from genzoo.models.linear.ppca import PPCA, PPCAConfig

__all__ = ["PCA", "PPCA", "PCAConfig", "PPCAConfig"]
