"""Flows' inverse passes in float32 at extreme scales: an inverse is finite wherever its exact
value is representable, and a sample whose exact inverse is not (a degenerate or under-trained
flow at temperature 1) never comes back, or is drawn, as NaN: it is clipped to the data range
with a warning naming how many samples overflowed."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import Tensor, nn

from genzoo.core.errors import GenzooWarning
from genzoo.core.seeding import randn
from genzoo.data.base import DataInfo
from genzoo.models.flows import Glow, GlowConfig
from genzoo.nn.flow_layers import (
    ActNorm,
    AffineCoupling,
    CouplingConvNet,
    CouplingMLP,
    DiagonalScaling,
    FactorOut,
    Flatten,
    FlowLayer,
    channel_mask,
    half_mask,
    mul_exp,
)
from genzoo.viz import image_grid

# a contraction exp(-95) = 5.5e-42: the forward's float32 output is subnormal but nonzero, while
# exp(+95) alone overflows float32 (max 3.4e38 = exp(88.7))
LOG_S = -95.0


def _rows(shape: tuple[int, ...], n: int = 6) -> Tensor:
    """Values of magnitude 0.5..1.5 with both signs (far from 0, so relative errors are clear)."""
    g = torch.Generator().manual_seed(0)
    mag = 0.5 + torch.rand((n, *shape), generator=g)
    return torch.where(torch.rand((n, *shape), generator=g) < 0.5, -mag, mag)


def _constant_net(net: nn.Module, raw: float) -> nn.Module:
    """Make a coupling net output ``raw`` as its scale channels and 0 as its shift."""
    out = net.out if isinstance(net, CouplingConvNet) else net.net[-1]  # the last layer
    with torch.no_grad():
        out.weight.zero_()
        out.bias.zero_()
        out.bias[: out.bias.shape[0] // 2] = raw
    return net


def _sigmoid_coupling_points() -> FlowLayer:
    # Glow's scale: exp(s) = sigmoid(raw + 2) = exp(LOG_S) up to 1e-41 relative
    return AffineCoupling(
        half_mask(4), _constant_net(CouplingMLP(4, 8, (8,)), LOG_S - 2), "sigmoid"
    )


def _sigmoid_coupling_images() -> FlowLayer:
    net = _constant_net(CouplingConvNet(2, 4, hidden=4, blocks=0), LOG_S - 2)
    return AffineCoupling(channel_mask((2, 3, 3), 1), net, "sigmoid")


def _actnorm() -> FlowLayer:
    layer = ActNorm(2)
    with torch.no_grad():
        layer.log_scale.fill_(LOG_S)
    layer.initialized.fill_(1)
    return layer


def _diagonal() -> FlowLayer:
    layer = DiagonalScaling((4,))
    with torch.no_grad():
        layer.log_scale.fill_(LOG_S)
    return layer


def _factor_out() -> FlowLayer:
    layer = FactorOut((2, 2, 2), Flatten((1, 2, 2)), learned_prior=True)
    assert layer.prior is not None
    with torch.no_grad():
        layer.prior.bias[1] = -LOG_S  # log sigma = 95: z2 = x2 exp(-95)
    return layer


EXTREME = {
    "affine-sigmoid-points": (_sigmoid_coupling_points, (4,)),
    "affine-sigmoid-images": (_sigmoid_coupling_images, (2, 3, 3)),
    "actnorm": (_actnorm, (2, 3, 3)),
    "diagonal-scaling": (_diagonal, (4,)),
    "factor-out-learned-prior": (_factor_out, (2, 2, 2)),
}


@pytest.mark.parametrize("name", sorted(EXTREME))
def test_inverse_of_an_extreme_contraction_is_finite_and_exact(name: str) -> None:
    make, shape = EXTREME[name]
    layer = make().eval()
    x = _rows(shape)
    with torch.no_grad():
        y, logdet = layer(x)
        back = layer.inverse(y)
    contracted = (y.flatten(1).abs() < 1e-40) & (y.flatten(1) != 0)
    assert contracted.any(), "the forward must contract some values to float32 subnormals"
    assert torch.isfinite(y).all() and torch.isfinite(logdet).all()
    assert torch.isfinite(back).all(), "the inverse overflowed where the forward did not"
    # subnormal y keeps about 12 bits of x: relative error <= 1.4e-45 / 5.5e-42 / 0.5 = 5e-4
    assert torch.allclose(back, x, rtol=2e-3, atol=0), (back - x).abs().max()


def test_mul_exp_matches_float64_and_overflows_only_when_the_result_does() -> None:
    x = torch.tensor([1e-30, -3e-35, 2.0, 1e-20, 0.0, 5.0])
    s = torch.tensor([150.0, 160.0, -80.0, 100.0, 120.0, 100.0])
    ref = x.double() * torch.exp(s.double())  # 1e35, -9.2e34, 3.6e-35, 2.7e23, 0, 1.3e44
    got = mul_exp(x, s)
    fits = ref.abs() < torch.finfo(torch.float32).max
    assert torch.allclose(got[fits].double(), ref[fits], rtol=1e-5, atol=0)
    assert torch.isinf(got[~fits]).all()  # 5 e^100 is beyond float32: inf, not NaN
    assert not torch.isfinite(x * torch.exp(s))[:2].any()  # the naive product overflows


def _degenerate_glow() -> nn.Module:
    """A tiny image Glow whose first inverse coupling scales by exp(398): every sample's exact
    inverse is beyond float32 (and beyond mul_exp's 177) somewhere."""
    info = DataInfo("img1x8x8", "images", (1, 8, 8), levels=17)
    cfg = GlowConfig(levels=2, steps=1, channels=4, blocks=0)
    torch.manual_seed(0)
    m = Glow(cfg, info).eval()
    couplings = [mod for mod in m.modules() if isinstance(mod, AffineCoupling)]
    # the inner level's coupling runs first when sampling; the raw scale only where it varies
    net = couplings[-1].net
    with torch.no_grad():
        net.out.weight.normal_(0.0, 1.0)
        net.out.bias[: net.out.bias.shape[0] // 2] = -400.0
    return m


def test_overflowing_samples_are_clipped_with_a_warning_naming_their_count() -> None:
    m = _degenerate_glow()
    n = 8
    z = randn((n, 64), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        raw = m.decode(z)
    n_bad = int((~torch.isfinite(raw).flatten(1).all(1)).sum())
    assert n_bad > 0 and torch.isnan(raw).any()  # the bad state: NaN from inf - inf
    with pytest.warns(GenzooWarning, match=re.escape(f"{n_bad} of {n} samples of 'glow'")):
        x = m.sample(n, generator=torch.Generator().manual_seed(3))
    assert torch.isfinite(x).all() and x.min() >= -1 and x.max() <= 1
    ok = torch.isfinite(raw).flatten(1).all(1)
    assert torch.equal(x[ok], raw[ok].clamp(-1, 1))  # the finite samples are untouched
    # +inf -> top, -inf and NaN -> bottom
    assert torch.equal(x[torch.isposinf(raw)], torch.ones(int(torch.isposinf(raw).sum())))
    bottom = torch.isnan(raw) | torch.isneginf(raw)
    assert torch.equal(x[bottom], -torch.ones(int(bottom.sum())))


def test_image_grid_draws_non_finite_values_at_the_range_ends_with_a_warning() -> None:
    info = DataInfo("img1x2x2", "images", (1, 2, 2), levels=256)
    x = torch.tensor([[[[math.nan, math.inf], [-math.inf, 0.0]]]])
    with pytest.warns(GenzooWarning, match="3 of 4 image values"):
        grid = image_grid(x, info, pad=0)
    ref = image_grid(torch.tensor([[[[-1.0, 1.0], [-1.0, 0.0]]]]), info, pad=0)
    assert (grid == ref).all() and grid[0, 0, 0] == 0 and grid[0, 1, 0] == 255
