"""Principal component analysis as a (degenerate) linear-Gaussian generative model.

PCA is fitted in closed form from the sample covariance of the whole training set (Pearson 1901;
Hotelling 1933): the components are its leading eigenvectors. The moments are accumulated in
float64 over chunks with the pairwise update of Chan, Golub & LeVeque ("Updating formulae and a
pairwise algorithm for computing sample variances", 1979), so a dataset never has to fit in memory
at once. :mod:`genzoo.models.linear.ppca` reuses :func:`fit_moments`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError, DataError
from genzoo.core.options import option
from genzoo.core.protocol import (
    Batch,
    ClosedForm,
    GenerativeModel,
    LatentSpace,
    LossOutput,
    Samples,
)
from genzoo.core.registry import register_model
from genzoo.core.seeding import randn
from genzoo.data.base import DataInfo


@dataclass(frozen=True)
class Moments:
    """The first two moments of a dataset, and the eigendecomposition of its covariance."""

    n: int  # number of examples
    mean: Tensor  # (D,) float64
    eigenvalues: Tensor  # (D,) float64, descending: eigenvalues of the ML covariance (1/N)
    eigenvectors: Tensor  # (D, D) float64, column j belongs to eigenvalue j


def fit_moments(batches: Iterable[Tensor]) -> Moments:
    """Mean and ML covariance ``S = (1/N) sum_n (x_n - mean)(x_n - mean)^T`` of all ``batches``
    (each ``(B, *shape)``, flattened to ``(B, D)``), accumulated in float64, and the
    eigendecomposition of ``S`` with eigenvalues in descending order."""
    n = 0
    mean: Tensor | None = None
    scatter: Tensor | None = None  # sum of (x - mean)(x - mean)^T, (D, D)
    for x in batches:
        xb = x.reshape(x.shape[0], -1).to(torch.float64)  # (B, *shape) -> (B, D)
        nb = xb.shape[0]
        if nb == 0:
            continue
        mb = xb.mean(0)
        db = xb - mb
        sb = db.T @ db  # (D, D)
        if mean is None or scatter is None:
            n, mean, scatter = nb, mb, sb
            continue
        delta = mb - mean  # Chan et al.: combine two partial (count, mean, scatter) triples
        total = n + nb
        scatter = scatter + sb + torch.outer(delta, delta) * (n * nb / total)
        mean = mean + delta * (nb / total)
        n = total
    if mean is None or scatter is None:
        raise DataError("Cannot fit a model in closed form to an empty training set.")
    cov = scatter / n  # the ML covariance
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    evals, evecs = evals.flip(0).clamp_min(0.0), evecs.flip(1)  # descending
    return Moments(n, mean, evals, evecs)


@dataclass(frozen=True)
class PCAConfig(Config):
    """Configuration of :class:`PCA`."""

    latent_dim: int = bounded(16, ge=1)  # K: number of principal components kept (at most the data
    # dimension)


class LinearModel(GenerativeModel, ClosedForm, Samples):
    """What PCA and PPCA share: closed-form fitting through the Trainer, flat <-> shaped data,
    sampling (one option, ``noise``; images clipped to the data range).

    They have no learnable parameters; their state is buffers set by :meth:`fit_data`, which the
    Trainer calls once with the whole training set before its first step (:class:`ClosedForm`).
    Each training step then only logs the loss of its batch.
    """

    family: ClassVar[str] = "linear"
    default_noise: ClassVar[bool] = False
    """The default of the sampling option ``noise``."""
    info: DataInfo

    def __init__(self, config: Config, info: DataInfo) -> None:
        super().__init__(config, info)
        self.shape = tuple(int(s) for s in info.shape)
        k, d = int(config.latent_dim), info.dim  # type: ignore[attr-defined]
        if k > self.max_latent_dim(d):
            raise ConfigError(
                f"latent_dim = {k} must be at most {self.max_latent_dim(d)} for {self.name!r} "
                f"on {info.name!r}, whose examples have {d} dimensions."
            )
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("n_fit", torch.zeros(()))  # examples the fit saw (0: not fitted)

    @staticmethod
    def max_latent_dim(d: int) -> int:
        return d

    def fit(self, x: Tensor) -> LinearModel:
        """Fit in closed form to ``x (N, *shape)`` in model space; returns ``self``."""
        self.fit_data([x])
        return self

    def fit_data(self, batches: Iterable[Tensor]) -> None:
        m = fit_moments(batches)
        if m.mean.numel() != self.info.dim:
            raise DataError(
                f"{self.name!r} was built for {self.info.dim} dimensions but the data has "
                f"{m.mean.numel()}."
            )
        with torch.no_grad():
            self.mean.copy_(m.mean)
            self.n_fit.fill_(float(m.n))
            self.set_from_moments(m)

    def set_from_moments(self, m: Moments) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _flat(self, x: Tensor) -> Tensor:
        """``(B, *shape) -> (B, D)`` centred, in float64 (exact enough for closed forms)."""
        return x.reshape(x.shape[0], -1).to(torch.float64) - self.mean.to(torch.float64)

    def _shaped(self, x: Tensor) -> Tensor:
        """``(B, D) -> (B, *shape)`` float32, with the mean added back."""
        out = x + self.mean.to(x.dtype)
        return out.float().view(x.shape[0], *self.shape)  # (B, D) -> (B, *shape)

    def _clip(self, x: Tensor) -> Tensor:
        if self.info.kind == "images":
            lo, hi = self.info.value_range
            x = x.clamp(lo, hi)
        return x

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` draws of :meth:`draw` (option ``noise``, default :attr:`default_noise`), images
        clipped to the data range."""
        if cond is not None:
            raise ConfigError(f"{self.name!r} is unconditional; sample it without cond.")
        unknown = [key for key in options if key != "noise"]
        if unknown:
            raise ConfigError(
                f"Unknown sampling option {unknown[0]!r} for {self.name!r}; valid options are "
                "'noise'."
            )
        noise = option(options, "noise", bool(self.default_noise))
        return self._clip(self.draw(n, noise, generator))

    def draw(
        self, n: int, noise: bool, generator: torch.Generator | None
    ) -> Tensor:  # pragma: no cover - abstract
        """``n`` draws ``(n, *shape)`` in model space, with the model's noise or without."""
        raise NotImplementedError


@register_model("pca")
class PCA(LinearModel, LatentSpace):
    """Principal component analysis: the K leading eigenvectors of the data covariance.

    Pearson, "On lines and planes of closest fit to systems of points in space" (1901); Hotelling,
    "Analysis of a complex of statistical variables into principal components" (1933). The
    components ``components (K, D)`` (rows, orthonormal, like scikit-learn's ``components_``)
    minimise the mean squared reconstruction error among all rank-K projections; the training loss
    is that error (squared distance per example, in model units), evaluated, never optimised.

    As a generative model PCA is the degenerate Gaussian ``N(mean, V diag(lambda) V^T)`` on the
    principal subspace (no density in D dimensions: probabilistic PCA, ``ppca``, is its proper
    density). ``encode_latent`` gives the projection coefficients ``z = V (x - mean)``;
    ``decode_latent`` maps them back, so ``decode_latent(encode_latent(x))`` is the rank-K
    reconstruction.
    """

    latent_prior: ClassVar[Literal["gaussian", "euclidean"]] = "euclidean"
    config_class: ClassVar[type[Config]] = PCAConfig
    config: PCAConfig

    def __init__(self, config: PCAConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        k, d = config.latent_dim, info.dim
        self.register_buffer("components", torch.eye(d)[:k].clone())  # (K, D) orthonormal rows
        self.register_buffer("explained_variance", torch.zeros(k))  # (K,) eigenvalues, 1/N
        self.register_buffer("total_variance", torch.zeros(()))  # trace of the covariance

    def set_from_moments(self, m: Moments) -> None:
        k = self.config.latent_dim
        self.components.copy_(m.eigenvectors[:, :k].T)  # (D, K) -> (K, D)
        self.explained_variance.copy_(m.eigenvalues[:k])
        self.total_variance.fill_(float(m.eigenvalues.sum()))

    def encode_latent(self, x: Tensor) -> Tensor:
        """``(B, *shape) -> z (B, K)``: coordinates of ``x - mean`` along the components."""
        return (self._flat(x) @ self.components.to(torch.float64).T).float()  # (B, D) -> (B, K)

    def decode_latent(self, z: Tensor) -> Tensor:
        """``z (B, K) -> (B, *shape)``: ``mean + V^T z``."""
        return self._shaped(z.to(torch.float64) @ self.components.to(torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        """The rank-K reconstruction ``(B, *shape) -> (B, *shape)``."""
        return self.decode_latent(self.encode_latent(x))

    def reconstruction_error(self, x: Tensor) -> Tensor:
        """Squared distance ``|x - reconstruction|^2`` per example: ``(B, *shape) -> (B,)``."""
        d = self._flat(x)  # (B, D)
        v = self.components.to(torch.float64)  # (K, D)
        resid = d - (d @ v.T) @ v  # the part of x - mean outside the principal subspace
        return resid.pow(2).sum(1).float()

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Mean squared reconstruction error per example; logs ``rec`` (per example),
        ``mse`` (per dimension) and ``explained`` (fraction of the variance kept by the fit)."""
        rec = self.reconstruction_error(batch["x"])
        loss = rec.mean()  # the one reduction over the batch
        total = float(self.total_variance)
        explained = float(self.explained_variance.sum()) / total if total > 0 else 0.0
        logs: dict[str, Tensor | float] = {
            "rec": loss.detach(),
            "mse": loss.detach() / self.info.dim,
            "explained": explained,
        }
        return LossOutput(loss, logs)

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """``{"loss", "mse"}``: squared reconstruction error of ``batch["x"]`` per example and per
        dimension."""
        rec = self.reconstruction_error(batch["x"])
        return {"loss": rec, "mse": rec / self.info.dim}

    def draw(self, n: int, noise: bool, generator: torch.Generator | None) -> Tensor:
        """``mean + V^T z``, ``z ~ N(0, diag(lambda))``: the Gaussian of the data restricted to
        the principal subspace; ``noise`` (default off) adds isotropic noise with the mean
        discarded variance (a PPCA-like draw off the subspace)."""
        k = self.config.latent_dim
        eps = randn((n, k), generator=generator, device=self.device)
        z = eps * self.explained_variance.sqrt()  # (n, K), z_k ~ N(0, lambda_k)
        x = self.decode_latent(z)
        d = self.info.dim
        if noise and d > k:
            rest = (self.total_variance - self.explained_variance.sum()).clamp_min(0.0) / (d - k)
            x = x + math.sqrt(float(rest)) * randn(x.shape, generator=generator, device=x.device)
        return x
