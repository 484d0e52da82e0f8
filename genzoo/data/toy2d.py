"""2-D toy distributions, with exact log-densities where they have a closed form.

The shapes follow the toy benchmarks of the normalizing-flow and GAN literature:

- ``moons``, ``circles``, ``swissroll``, ``pinwheel``, ``rings``, ``checkerboard``,
  ``8gaussians`` as in FFJORD (Grathwohl et al. 2019, arXiv:1810.01367, ``lib/toy_data.py``);
  ``pinwheel`` from Johnson et al. 2016 (arXiv:1603.06277);
- ``8gaussians`` (a ring of Gaussians) for mode counting as in Unrolled GAN (Metz et al. 2017,
  arXiv:1611.02163) and ``25gaussians`` (a 5 x 5 grid) as in VEEGAN / PacGAN (Srivastava et al.
  2017, arXiv:1705.07761; Lin et al. 2018, arXiv:1712.04086).

Constants are chosen so that the modes of the mixtures are clearly separated (15 to 20 standard
deviations apart), which makes mode coverage and the high-quality-sample rate (a sample within
3 standard deviations of a mode) meaningful. ``circles`` and ``rings`` put their noise on the
radius only (a folded normal), instead of FFJORD's isotropic noise, so that their density is exact:
``p(x) = sum_k w_k f_k(|x|) / (2 pi |x|)``.

Every distribution draws all its randomness from the ``torch.Generator`` it is given, so the same
seed gives the same samples bit for bit. Points are ``(N, 2)`` float tensors.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from genzoo.core.errors import DataError, choices
from genzoo.core.seeding import rand, randn

BOUNDS: tuple[float, float] = (-4.0, 4.0)  # a box that holds (almost) all the mass of every toy


def _randint(
    high: int, n: int, generator: torch.Generator | None, device: torch.device | str
) -> Tensor:
    """Integers in ``[0, high)`` drawn on the generator's device (like :func:`randn`)."""
    gdev = generator.device if generator is not None else torch.device(device)
    return torch.randint(high, (n,), generator=generator, device=gdev).to(device)


def _gaussian_entropy_2d(std: float) -> float:
    """Entropy of an isotropic 2-D Gaussian, ``log(2 pi e std^2)`` nats."""
    return math.log(2 * math.pi * math.e * std**2)


class Toy2D:
    """A 2-D distribution: ``sample`` always, ``log_prob`` and ``entropy`` where exact."""

    name: ClassVar[str] = ""
    has_log_prob: ClassVar[bool] = False  # True where log_prob is an exact density
    bounds: tuple[float, float] = BOUNDS
    modes: Tensor | None = None  # (K, 2) mode centres for mode-counting metrics, else None
    mode_std: float | None = None  # the isotropic std of each mode, else None

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        *,
        device: torch.device | str = "cpu",
    ) -> Tensor:
        """``n`` points, ``(n, 2)`` float32, drawn with ``generator`` on ``device``."""
        return self.draw(n, generator, device)

    def draw(self, n: int, generator: torch.Generator | None, device: torch.device | str) -> Tensor:
        """What subclasses implement: ``n`` points ``(n, 2)`` float32."""
        raise NotImplementedError

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density in nats of points ``x`` (n, 2) -> (n,), in the dtype of ``x``."""
        raise NotImplementedError(f"toy2d:{self.name} has no closed-form density")

    def entropy(self) -> float | None:
        """Differential entropy in nats, or ``None`` where it is not known."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class GaussianMixture2D(Toy2D):
    """Equal-weight mixture of isotropic Gaussians ``N(mu_k, std^2 I)``."""

    has_log_prob = True

    def __init__(self, modes: Tensor, std: float) -> None:
        self.modes = modes.to(torch.float64)
        self.mode_std = float(std)

    def draw(self, n: int, generator: torch.Generator | None, device: torch.device | str) -> Tensor:
        assert self.modes is not None and self.mode_std is not None
        k = _randint(len(self.modes), n, generator, device)
        noise = randn((n, 2), generator=generator, device=device)
        return self.modes.to(device=device, dtype=torch.float32)[k] + self.mode_std * noise

    def log_prob(self, x: Tensor) -> Tensor:
        assert self.modes is not None and self.mode_std is not None
        mu = self.modes.to(device=x.device, dtype=x.dtype)  # (K, 2)
        d2 = ((x[:, None, :] - mu[None]) ** 2).sum(-1)  # (n, K)
        var = self.mode_std**2
        log_n = -0.5 * d2 / var - math.log(2 * math.pi * var)  # log N(x; mu_k, var I) in 2-D
        return torch.logsumexp(log_n, dim=1) - math.log(len(mu))

    def mean(self) -> Tensor:
        """Analytic mean (2,) float64."""
        assert self.modes is not None
        return self.modes.mean(0)

    def covariance(self) -> Tensor:
        """Analytic covariance (2, 2) float64: ``std^2 I`` plus the covariance of the modes."""
        assert self.modes is not None and self.mode_std is not None
        c = self.modes - self.modes.mean(0)
        return c.T @ c / len(c) + self.mode_std**2 * torch.eye(2, dtype=torch.float64)

    def entropy(self) -> float:
        """``log K + H(N(0, std^2 I))``: exact up to the overlap of the modes.

        With modes at least 12 std apart the overlap changes the entropy by less than 1e-12 nats;
        for overlapping modes a fixed-seed Monte-Carlo estimate (1e6 samples) is returned instead.
        """
        assert self.modes is not None and self.mode_std is not None
        k = len(self.modes)
        min_dist = torch.pdist(self.modes).min().item() if k > 1 else math.inf
        if min_dist >= 12 * self.mode_std:
            return math.log(k) + _gaussian_entropy_2d(self.mode_std)
        g = torch.Generator().manual_seed(0)
        x = self.sample(1_000_000, g).double()
        return float(-self.log_prob(x).mean())


class EightGaussians(GaussianMixture2D):
    """8 Gaussians on a circle of radius 2, std 0.1 (Unrolled GAN / FFJORD ring of modes)."""

    name = "8gaussians"

    def __init__(self, radius: float = 2.0, std: float = 0.1) -> None:
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        modes = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # (8, 2)
        super().__init__(modes, std)


class TwentyFiveGaussians(GaussianMixture2D):
    """25 Gaussians on the grid {-2, -1, 0, 1, 2}^2, std 0.05 (VEEGAN / PacGAN "2D grid")."""

    name = "25gaussians"

    def __init__(self, spacing: float = 1.0, std: float = 0.05) -> None:
        g = torch.arange(-2, 3, dtype=torch.float64) * spacing
        modes = torch.cartesian_prod(g, g)  # (25, 2)
        super().__init__(modes, std)


class Checkerboard(Toy2D):
    """Uniform on the 8 black squares of a 4 x 4 board on [-2, 2]^2 (FFJORD checkerboard).

    Square ``(i, j) = (floor(x), floor(y))`` is black when ``i + j`` is even; the density is 1/8
    there and 0 elsewhere, so the entropy is ``log 8``.
    """

    name = "checkerboard"
    has_log_prob = True

    def __init__(self) -> None:
        cells = [(i, j) for i in range(-2, 2) for j in range(-2, 2) if (i + j) % 2 == 0]
        self.black = torch.tensor(cells, dtype=torch.float32)  # (8, 2) lower-left corners

    def draw(self, n: int, generator: torch.Generator | None, device: torch.device | str) -> Tensor:
        k = _randint(len(self.black), n, generator, device)
        u = rand((n, 2), generator=generator, device=device)
        return self.black.to(device)[k] + u

    def log_prob(self, x: Tensor) -> Tensor:
        f = torch.floor(x)
        inside = (f >= -2).all(1) & (f <= 1).all(1) & ((f.sum(1) % 2) == 0)
        lp = torch.full(x.shape[:1], -math.inf, dtype=x.dtype, device=x.device)
        return lp.masked_fill(inside, -math.log(8.0))

    def entropy(self) -> float:
        return math.log(8.0)


class PolarRings(Toy2D):
    """Equal-weight concentric rings: angle uniform, radius ``|N(R_k, std^2)|`` (folded normal).

    Exact density ``p(x) = (1/K) sum_k [N(r; R_k, s) + N(r; -R_k, s)] / (2 pi r)`` with
    ``r = |x|`` (the Jacobian of polar coordinates is ``r``).
    """

    has_log_prob = True

    def __init__(self, radii: tuple[float, ...], std: float) -> None:
        self.radii = torch.tensor(radii, dtype=torch.float64)
        self.std = float(std)

    def draw(self, n: int, generator: torch.Generator | None, device: torch.device | str) -> Tensor:
        k = _randint(len(self.radii), n, generator, device)
        theta = 2 * math.pi * rand((n,), generator=generator, device=device)
        eps = randn((n,), generator=generator, device=device)
        r = (self.radii.to(device=device, dtype=torch.float32)[k] + self.std * eps).abs()
        return torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=1)

    def _log_radial(self, r: Tensor) -> Tensor:
        """log of the radial density ``p_r(r)`` (r >= 0), shape of ``r``."""
        big_r = self.radii.to(device=r.device, dtype=r.dtype)
        s = self.std
        z = torch.cat([(r[..., None] - big_r) / s, (r[..., None] + big_r) / s], dim=-1)
        log_n = -0.5 * z**2 - math.log(s * math.sqrt(2 * math.pi))
        return torch.logsumexp(log_n, dim=-1) - math.log(len(self.radii))

    def log_prob(self, x: Tensor) -> Tensor:
        r = x.norm(dim=1)
        return self._log_radial(r) - torch.log(2 * math.pi * r)

    def entropy(self) -> float:
        """``-int p_r(r) log(p_r(r) / (2 pi r)) dr`` by the trapezoid rule in float64."""
        r_max = float(self.radii.max()) + 12 * self.std
        r = torch.linspace(1e-9, r_max, 400_001, dtype=torch.float64)
        lp_r = self._log_radial(r)
        integrand = -lp_r.exp() * (lp_r - torch.log(2 * math.pi * r))
        return float(torch.trapezoid(integrand, r))


class Circles(PolarRings):
    """Two concentric circles of radii 1.5 and 3 (sklearn ``make_circles(factor=0.5)`` x 3)."""

    name = "circles"

    def __init__(self) -> None:
        super().__init__((1.5, 3.0), std=0.2)


class Rings(PolarRings):
    """Four concentric rings of radii 0.75, 1.5, 2.25, 3 (FFJORD ``rings``), radial std 0.08."""

    name = "rings"

    def __init__(self) -> None:
        super().__init__((0.75, 1.5, 2.25, 3.0), std=0.08)


class Moons(Toy2D):
    """Two interleaving half circles (sklearn ``make_moons(noise=0.1)`` x 2 - (1, 0.2), FFJORD)."""

    name = "moons"

    def draw(self, n: int, generator: torch.Generator | None, device: torch.device | str) -> Tensor:
        which = _randint(2, n, generator, device).float()  # 0: upper moon, 1: lower moon
        t = math.pi * rand((n,), generator=generator, device=device)
        noise = randn((n, 2), generator=generator, device=device)
        upper = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
        lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
        w = which[:, None]
        x = (1 - w) * upper + w * lower + 0.1 * noise
        return 2 * x - torch.tensor([1.0, 0.2], device=device)


class SwissRoll(Toy2D):
    """The 2-D swiss roll (sklearn ``make_swiss_roll(noise=1)``, coordinates (x, z) / 5, FFJORD)."""

    name = "swissroll"

    def draw(self, n: int, generator: torch.Generator | None, device: torch.device | str) -> Tensor:
        t = 1.5 * math.pi * (1 + 2 * rand((n,), generator=generator, device=device))
        noise = randn((n, 2), generator=generator, device=device)
        x = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) + noise
        return x / 5


class Pinwheel(Toy2D):
    """Five curved arms (Johnson et al. 2016, arXiv:1603.06277; x 2 as in FFJORD)."""

    name = "pinwheel"

    def __init__(
        self,
        n_arms: int = 5,
        radial_std: float = 0.3,
        tangential_std: float = 0.1,
        rate: float = 0.25,
    ) -> None:
        self.n_arms = n_arms
        self.radial_std = radial_std
        self.tangential_std = tangential_std
        self.rate = rate

    def draw(self, n: int, generator: torch.Generator | None, device: torch.device | str) -> Tensor:
        arm = _randint(self.n_arms, n, generator, device).float()
        f = randn((n, 2), generator=generator, device=device)
        f = f * torch.tensor([self.radial_std, self.tangential_std], device=device)
        f[:, 0] += 1.0
        angle = arm * (2 * math.pi / self.n_arms) + self.rate * torch.exp(f[:, 0])
        c, s = torch.cos(angle), torch.sin(angle)
        # row vector f times [[c, -s], [s, c]], as in the reference implementation
        x = torch.stack([f[:, 0] * c + f[:, 1] * s, -f[:, 0] * s + f[:, 1] * c], dim=1)
        return 2 * x


TOY2D: dict[str, type[Toy2D]] = {
    cls.name: cls
    for cls in (
        Moons,
        Circles,
        EightGaussians,
        TwentyFiveGaussians,
        Checkerboard,
        SwissRoll,
        Pinwheel,
        Rings,
    )
}


def get_toy(name: str) -> Toy2D:
    """The toy distribution called ``name`` (without the ``toy2d:`` prefix)."""
    if name not in TOY2D:
        raise DataError(f"Unknown toy2d distribution {name!r}; choose {choices(TOY2D)}.")
    return TOY2D[name]()
