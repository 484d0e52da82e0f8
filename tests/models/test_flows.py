"""Normalizing flows: every layer and every whole flow is invertible and its log-determinant is the
autograd Jacobian's; log_prob is a normalised density that matches the samples; trained flows reach
the true entropy of toy data."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import AffineTransform, Normal, SigmoidTransform, TransformedDistribution

import genzoo
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import LatentSpace, Samples, likelihood_kind
from genzoo.core.registry import MODELS
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo
from genzoo.metrics.likelihood import bits_per_dim
from genzoo.models.flows import NICE, FlowModel, Glow, RealNVP
from genzoo.nn.flow_layers import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    CouplingConvNet,
    CouplingMLP,
    DiagonalScaling,
    FactorOut,
    Flatten,
    FlowLayer,
    FlowSequential,
    InvertibleConv1x1,
    LogitTransform,
    Permute,
    Squeeze,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    half_mask,
)

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def points(d: int) -> DataInfo:
    return DataInfo(f"pts{d}", "points", (d,))


def images(c: int, h: int, w: int, levels: int = 17) -> DataInfo:
    return DataInfo(f"img{c}x{h}x{w}", "images", (c, h, w), levels=levels)


@torch.no_grad()
def randomize(module: nn.Module, scale: float, seed: int = 0) -> None:
    """Perturb every parameter, so zero-initialised nets and identity inits cannot hide bugs."""
    g = gen(seed)
    for p in module.parameters():
        p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def autograd_logdet(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``log |det J|`` of ``f`` at each example of ``x`` (B, ...), from the full autograd Jacobian
    of the flattened map (float64)."""
    out = []
    for i in range(x.shape[0]):
        xi = x[i : i + 1]

        def flat(v: Tensor, xi: Tensor = xi) -> Tensor:
            return f(v.view_as(xi)).reshape(-1)  # (D,) -> (D,)

        jac = torch.autograd.functional.jacobian(flat, xi.reshape(-1), vectorize=True)  # (D, D)
        assert jac.shape[0] == jac.shape[1]
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)


def check_bijection(layer: FlowLayer, x: Tensor, atol: float = 1e-4) -> None:
    """inverse(forward(x)) == x and logdet == log |det J| (autograd), both within ``atol``."""
    with torch.no_grad():
        y, logdet = layer(x)
        back = layer.inverse(y)
    assert logdet.shape == (x.shape[0],)
    assert y.numel() == x.numel()
    assert torch.allclose(back, x, atol=atol, rtol=0), (back - x).abs().max()
    ref = autograd_logdet(lambda v: layer(v)[0], x)
    assert torch.allclose(logdet, ref, atol=atol, rtol=0), (logdet, ref)


# --------------------------------------------------------------------------------------------------
# layers


def _mlp(d: int, k: int) -> nn.Module:
    return CouplingMLP(d, k * d, (16, 16))


def _conv(c: int, k: int) -> nn.Module:
    return CouplingConvNet(c, k * c, hidden=8, blocks=1)


LAYERS: dict[str, tuple[Callable[[], FlowLayer], tuple[int, ...]]] = {
    "additive-points-d4": (lambda: AdditiveCoupling(alternating_mask(4, 1), _mlp(4, 1)), (4,)),
    "additive-checker-2x4x4": (
        lambda: AdditiveCoupling(checkerboard_mask((2, 4, 4), 0), _conv(2, 1)),
        (2, 4, 4),
    ),
    "affine-tanh-points-d2": (lambda: AffineCoupling(half_mask(2), _mlp(2, 2), "tanh"), (2,)),
    "affine-sigmoid-points-d4": (
        lambda: AffineCoupling(alternating_mask(4, 0), _mlp(4, 2), "sigmoid"),
        (4,),
    ),
    "affine-checker-1x8x8": (
        lambda: AffineCoupling(checkerboard_mask((1, 8, 8), 1), _conv(1, 2), "tanh"),
        (1, 8, 8),
    ),
    "affine-channel-2x4x4": (
        lambda: AffineCoupling(channel_mask((2, 4, 4), 1), _conv(2, 2), "sigmoid"),
        (2, 4, 4),
    ),
    "diagonal-scaling-1x4x4": (lambda: DiagonalScaling((1, 4, 4)), (1, 4, 4)),
    "actnorm-points-d4": (lambda: ActNorm(4), (4,)),
    "actnorm-2x4x4": (lambda: ActNorm(2), (2, 4, 4)),
    "invconv-points-d4": (lambda: InvertibleConv1x1(4, generator=gen(1)), (4,)),
    "invconv-2x4x4": (lambda: InvertibleConv1x1(2, generator=gen(2)), (2, 4, 4)),
    "permute-points-d4": (lambda: Permute(torch.tensor([2, 0, 3, 1])), (4,)),
    "squeeze-2x4x4": (lambda: Squeeze(), (2, 4, 4)),
    "factor-out-learned-prior-2x4x4": (
        lambda: FactorOut(
            (2, 4, 4),
            FlowSequential(
                [AffineCoupling(checkerboard_mask((1, 4, 4)), _conv(1, 2)), Flatten((1, 4, 4))]
            ),
            learned_prior=True,
        ),
        (2, 4, 4),
    ),
    "logit-1x4x4": (lambda: LogitTransform(0.05), (1, 4, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_inverts_and_logdet_matches_autograd_jacobian(name: str) -> None:
    make, shape = LAYERS[name]
    torch.manual_seed(0)
    layer = make().to(F64)
    x = torch.rand((3, *shape), generator=gen(3), dtype=F64) * 1.8 - 0.9  # inside (-1, 1)
    layer.train()
    layer(x)  # data-dependent ActNorm initialisation (a no-op for other layers)
    randomize(layer, 0.2)
    layer.eval()
    check_bijection(layer, x)


def test_layers_are_not_trivial_after_randomisation() -> None:
    """The Jacobian test above has teeth: the randomised layers change volume and move points."""
    for name in ("affine-tanh-points-d2", "affine-channel-2x4x4", "actnorm-2x4x4", "invconv-2x4x4"):
        make, shape = LAYERS[name]
        torch.manual_seed(0)
        layer = make().to(F64)
        x = torch.rand((3, *shape), generator=gen(3), dtype=F64) - 0.5
        layer.train()
        layer(x)
        randomize(layer, 0.2)
        with torch.no_grad():
            y, logdet = layer(x)
        assert logdet.abs().min() > 1e-3, name
        assert (y.reshape(3, -1) - x.reshape(3, -1)).abs().max() > 1e-2, name


def test_conditional_coupling_uses_cond_and_inverts() -> None:
    torch.manual_seed(0)
    net = CouplingConvNet(2, 4, hidden=8, blocks=1, cond_dim=3)
    layer = AffineCoupling(channel_mask((2, 4, 4)), net).to(F64)
    randomize(layer, 0.2)
    x = torch.randn(2, 2, 4, 4, dtype=F64)
    c1, c2 = torch.randn(2, 3, dtype=F64), torch.randn(2, 3, dtype=F64)
    with torch.no_grad():
        y1, ld1 = layer(x, c1)
        y2, _ = layer(x, c2)
        assert torch.allclose(layer.inverse(y1, c1), x, atol=1e-10)
    assert not torch.allclose(y1, y2)
    ref = autograd_logdet(lambda v: layer(v, c1[:1])[0], x[:1])
    assert torch.allclose(ld1[:1], ref, atol=1e-8)


def test_masks() -> None:
    assert alternating_mask(5, 0).tolist() == [1, 0, 1, 0, 1]
    assert half_mask(5, 1).tolist() == [0, 0, 0, 1, 1]
    cb = checkerboard_mask((2, 3, 3), 0)
    assert cb.shape == (2, 3, 3) and cb[0, 0, 0] == 1 and cb[1, 0, 1] == 0 and cb[0, 1, 1] == 1
    assert torch.equal(checkerboard_mask((1, 4, 4), 1), 1 - checkerboard_mask((1, 4, 4), 0))
    cm = channel_mask((4, 2, 2), 0)
    assert cm[:2].eq(1).all() and cm[2:].eq(0).all()


def test_squeeze_moves_each_2x2_patch_into_channels() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y, _ = Squeeze()(x)
    assert y.shape == (1, 4, 2, 2)
    # the top-left patch [[0, 1], [4, 5]] becomes the channels at position (0, 0)
    assert y[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]
    with pytest.raises(ValueError, match="even"):
        Squeeze()(torch.zeros(1, 1, 3, 4))


def test_actnorm_data_dependent_init_standardises_once() -> None:
    x = 3.0 + 2.0 * torch.randn(64, 3, 5, 5, generator=gen(0), dtype=F64)
    x[:, 1] *= 10.0
    an = ActNorm(3).to(F64)
    an.eval()
    y, ld = an(x)
    assert torch.equal(y, x) and torch.all(ld == 0)  # eval mode: no initialisation
    an.train()
    y, _ = an(x)
    yc = y.transpose(0, 1).reshape(3, -1)  # (C, B * H * W)
    assert torch.allclose(yc.mean(1), torch.zeros(3, dtype=F64), atol=1e-10)
    assert torch.allclose(yc.std(1, unbiased=False), torch.ones(3, dtype=F64), atol=1e-5)
    before = an.bias.detach().clone()
    an(x + 100.0)  # the second batch does not re-initialise
    assert torch.equal(an.bias.detach(), before)
    fresh = ActNorm(3).to(F64)
    fresh.load_state_dict(an.state_dict())
    fresh.train()
    fresh(x + 100.0)  # a loaded, initialised layer is not re-initialised either
    assert torch.equal(fresh.bias.detach(), before)


def test_invconv_lu_weight_is_a_rotation_at_init_and_logdet_is_log_det_w() -> None:
    layer = InvertibleConv1x1(5, generator=gen(0)).to(F64)
    w = layer.weight()
    assert torch.allclose(w @ w.T, torch.eye(5, dtype=F64), atol=1e-6)  # float32 init
    randomize(layer, 0.3)
    w = layer.weight()
    x = torch.randn(2, 5, 3, 3, dtype=F64)
    _, ld = layer(x)
    ref = 9 * torch.linalg.slogdet(w)[1]  # h * w * log |det W|
    assert torch.allclose(ld, ref.expand(2), atol=1e-10)


def test_logit_layer_matches_torch_distributions() -> None:
    """log N(logit(p)) + logdet is the density of x on [-1, 1] that torch.distributions builds."""
    a = 0.05
    layer = LogitTransform(a).to(F64)
    x = torch.rand(7, 1, 2, 2, generator=gen(0), dtype=F64) * 2 - 1
    y, ld = layer(x)
    lp = Normal(0.0, 1.0).log_prob(y).flatten(1).sum(1) + ld
    # x = 2 (sigmoid(y) - a) / (1 - 2a) - 1 with y ~ N(0, 1)
    dist = TransformedDistribution(
        Normal(torch.zeros((), dtype=F64), torch.ones((), dtype=F64)),
        [SigmoidTransform(), AffineTransform(-2 * a / (1 - 2 * a) - 1, 2 / (1 - 2 * a))],
    )
    ref = dist.log_prob(x).flatten(1).sum(1)
    assert torch.allclose(lp, ref, atol=1e-10)


# --------------------------------------------------------------------------------------------------
# whole flows

SMALL: dict[str, dict] = {
    "nice": {"couplings": 4, "hidden": (16, 16), "channels": 8, "blocks": 1},
    "realnvp": {
        "couplings": 4,
        "hidden": (16, 16),
        "checker_couplings": 2,
        "channel_couplings": 2,
        "final_couplings": 2,
        "channels": 8,
        "blocks": 1,
        "actnorm": True,
    },
    "glow": {"steps": 2, "hidden": (16, 16), "channels": 8, "blocks": 1},
}
SHAPES = [(2,), (4,), (1, 4, 4), (2, 4, 4), (1, 8, 8), (1, 6, 6), (3, 3, 5)]


def make_flow(name: str, shape: tuple[int, ...], **over) -> FlowModel:
    info = points(shape[0]) if len(shape) == 1 else images(*shape)
    cls = MODELS.get(name)
    return cls(cls.config_class.from_dict({**SMALL[name], **over}), info)


def _data(shape: tuple[int, ...], n: int, seed: int) -> Tensor:
    if len(shape) == 1:
        return torch.randn((n, *shape), generator=gen(seed), dtype=F64)
    return torch.rand((n, *shape), generator=gen(seed), dtype=F64) * 1.9 - 0.95  # in [-1, 1]


def randomized_flow(name: str, shape: tuple[int, ...], scale: float = 0.1, **over) -> FlowModel:
    torch.manual_seed(0)
    m = make_flow(name, shape, **over).to(F64)
    m.train()
    m.log_prob(_data(shape, 32, 1))  # data-dependent ActNorm initialisation
    randomize(m, scale)
    return m.eval()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", ["nice", "realnvp", "glow"])
def test_flow_inverts_and_logdet_matches_autograd_jacobian(name: str, shape: tuple) -> None:
    m = randomized_flow(name, shape)
    x = _data(shape, 2, 5)
    with torch.no_grad():
        z, logdet = m(x)
        assert z.shape == (2, math.prod(shape))
        assert torch.allclose(m.decode(z), x, atol=1e-4, rtol=0)
        lp = m.log_prob(x)
    ref = autograd_logdet(lambda v: m(v)[0], x)
    assert torch.allclose(logdet, ref, atol=1e-4, rtol=0), (logdet, ref)
    assert torch.allclose(lp, Normal(0.0, 1.0).log_prob(z).sum(1) + ref, atol=1e-4)
    assert logdet.abs().min() > 1e-2  # randomised: far from volume preserving


@pytest.mark.parametrize(
    ("name", "over"),
    [
        ("glow", {"coupling": "additive", "learned_prior": False}),
        ("glow", {"scale_fn": "tanh", "levels": 3}),
        ("nice", {"arch": "mlp"}),
        ("realnvp", {"scale_fn": "sigmoid", "actnorm": False}),
    ],
    ids=str,
)
def test_flow_variants_are_exact(name: str, over: dict) -> None:
    m = randomized_flow(name, (2, 4, 4), **over)
    x = _data((2, 4, 4), 2, 6)
    with torch.no_grad():
        z, logdet = m(x)
        assert torch.allclose(m.decode(z), x, atol=1e-4)
    assert torch.allclose(logdet, autograd_logdet(lambda v: m(v)[0], x), atol=1e-4)


@pytest.mark.parametrize("name", ["realnvp", "glow"])
def test_multiscale_shapes_on_digits_and_mnist(name: str) -> None:
    """8x8 squeezes to 4x4 then 2x2; 28x28 to 14x14 then 7x7 (no squeeze of odd sizes)."""
    for shape, sizes in [((1, 8, 8), [8, 4, 2]), ((1, 28, 28), [28, 14, 7])]:
        m = make_flow(name, shape)
        seen: list[int] = []

        def record(_mod: nn.Module, args: tuple, seen: list[int] = seen) -> None:
            seen.append(args[0].shape[-1])

        squeezes = [mod for mod in m.modules() if isinstance(mod, Squeeze)]
        hooks = [mod.register_forward_pre_hook(record) for mod in squeezes]
        with torch.no_grad():
            z, _ = m(torch.zeros(1, *shape))
        for h in hooks:
            h.remove()
        assert seen == sizes[:-1], (name, shape, seen)
        assert z.shape == (1, math.prod(shape))
        flats = [mod.shape for mod in m.modules() if isinstance(mod, Flatten)]
        assert flats[-1][1:] == (sizes[-1], sizes[-1]), flats


@pytest.mark.parametrize("shape", [(2,), (4,), (1, 4, 4), (2, 4, 4)], ids=str)
@pytest.mark.parametrize("name", ["nice", "realnvp", "glow"])
def test_identity_like_flow_has_the_analytic_base_density(name: str, shape: tuple) -> None:
    """At initialisation (zero coupling outputs, no ActNorm init, rotations for the 1x1 convs)
    log_prob is the standard normal density for points and the logit-normal density for images."""
    over = {"scale_fn": "tanh"} if name == "glow" else {}
    m = make_flow(name, shape, **over).to(F64).eval()
    x = _data(shape, 5, 2)
    with torch.no_grad():
        lp = m.log_prob(x)
    base = Normal(torch.zeros((), dtype=F64), torch.ones((), dtype=F64))
    if len(shape) == 1:
        ref = base.log_prob(x).sum(1)
    else:
        a = m.config.logit_alpha
        dist = TransformedDistribution(
            base, [SigmoidTransform(), AffineTransform(-2 * a / (1 - 2 * a) - 1, 2 / (1 - 2 * a))]
        )
        ref = dist.log_prob(x).flatten(1).sum(1)
    assert torch.allclose(lp, ref, atol=1e-8), (lp, ref)


@pytest.mark.parametrize("name", ["nice", "realnvp", "glow"])
def test_points_density_integrates_to_one_and_matches_samples(name: str) -> None:
    """On a 2-D grid exp(log_prob) integrates to 1, and the fraction of samples in boxes matches
    the integral of the density over them (binomial error bars)."""
    m = randomized_flow(name, (2,), scale=0.15)
    lim, n = 7.0, 351
    g = torch.linspace(-lim, lim, n, dtype=F64)
    grid = torch.cartesian_prod(g, g)  # (n^2, 2)
    cell = (g[1] - g[0]) ** 2
    with torch.no_grad():
        p = m.log_prob(grid).exp()
        x = m.sample(20_000, generator=gen(4)).to(F64)
    outside = float((x.abs() >= lim).any(1).double().mean())  # sample mass off the grid
    assert abs(float(p.sum() * cell) + outside - 1.0) < 0.005
    # the randomised flow is far from its standard normal base
    assert (p.log() - Normal(0.0, 1.0).log_prob(grid).sum(1)).abs().max() > 1.0
    for lo0, hi0, lo1, hi1 in [(-lim, 0.0, -lim, 0.0), (0.0, lim, -1.0, 1.0), (-1.0, 1.0, 0, lim)]:
        inside = (grid[:, 0] >= lo0) & (grid[:, 0] < hi0) & (grid[:, 1] >= lo1) & (grid[:, 1] < hi1)
        mass = float(p[inside].sum() * cell)
        frac = float(
            ((x[:, 0] >= lo0) & (x[:, 0] < hi0) & (x[:, 1] >= lo1) & (x[:, 1] < hi1))
            .double()
            .mean()
        )
        se = math.sqrt(mass * (1 - mass) / x.shape[0])
        assert abs(frac - mass) < 4 * se + 0.01, (name, frac, mass)


@pytest.mark.parametrize("name", ["nice", "realnvp", "glow"])
def test_image_samples_encode_back_to_their_latents(name: str) -> None:
    m = randomized_flow(name, (1, 8, 8), scale=0.05)
    z = 0.7 * torch.randn(4, 64, generator=gen(0), dtype=F64)
    with torch.no_grad():
        x = m.decode(z)
        assert torch.allclose(m.encode(x), z, atol=1e-4)
        # sampling uses the same map: temperature 0 gives decode(0)
        s0 = m.sample(2, temperature=0.0)
        assert torch.allclose(s0, m.decode(torch.zeros(2, 64, dtype=F64)).clamp(-1, 1))
        s = m.sample(3, generator=gen(1))
        assert s.shape == (3, 1, 8, 8) and s.min() >= -1 and s.max() <= 1
        assert torch.equal(s, m.sample(3, generator=gen(1)))


# --------------------------------------------------------------------------------------------------
# API


def test_registry_configs_and_classvars() -> None:
    for name, cls in [("nice", NICE), ("realnvp", RealNVP), ("glow", Glow)]:
        assert MODELS.get(name) is cls
        assert (cls.family, likelihood_kind(cls), cls.dequantize) == ("flows", "exact", True)
        assert issubclass(cls, Samples) and issubclass(cls, LatentSpace)
        assert cls.latent_prior == "gaussian"
    with pytest.raises(ConfigError, match="valid keys"):
        Glow.config_class.from_dict({"stepz": 3})
    with pytest.raises(ConfigError):
        RealNVP.config_class.from_dict({"logit_alpha": 0.6})


def test_loss_eval_metrics_and_errors() -> None:
    m = make_flow("glow", (1, 4, 4))
    x = torch.rand(6, 1, 4, 4) * 2 - 1
    m.train()
    out = m.loss({"x": x})
    lp = m.log_prob(x)
    assert torch.allclose(out.loss, -lp.mean() / 16)
    bpd = bits_per_dim(-lp.mean().detach(), 16, 17)
    assert float(out.logs["bpd"]) == pytest.approx(float(bpd), rel=1e-6)
    assert torch.allclose(m.eval_metrics({"x": x})["log_prob"], lp.detach())
    with pytest.raises(ConfigError, match="temperature"):
        m.sample(2, temp=0.5)
    with pytest.raises(ConfigError, match="unconditional"):
        m.sample(2, cond=torch.zeros(2))
    with pytest.raises(ConfigError, match="2 dimensions"):
        make_flow("realnvp", (1,))


# --------------------------------------------------------------------------------------------------
# training


def test_realnvp_beats_the_best_single_gaussian_on_8gaussians_quickly(tmp_path, fast_train):
    """A short run: the test NLL falls 1 nat below that of the best-fit Gaussian (whose NLL is its
    entropy, 0.5 log det(2 pi e Sigma) = 3.54 nats; the data's entropy is 0.31 nats)."""
    test = load_dataset("toy2d:8gaussians", "test")
    toy = test.toy
    gauss_nll = 0.5 * float(torch.logdet(2 * math.pi * math.e * toy.covariance()))
    over = {"couplings": 8, "hidden": [32, 32], "batch_size": 256, "lr": 3e-3, "ckpt_every": 0}
    run = genzoo.train(
        "realnvp",
        "toy2d:8gaussians",
        steps=150,
        out=tmp_path / "r",
        overrides={**fast_train, **over},
    )
    m = genzoo.load(run)
    with torch.no_grad():
        nll = -m.log_prob(test.x).mean().item()
    assert nll < gauss_nll - 1.0, (nll, gauss_nll, toy.entropy())


def test_glow_on_digits_learns_and_evaluates_in_bits_per_dim(tmp_path, fast_train):
    """A few steps on dequantized 8x8 digits take the test bits/dim far below the uniform
    density's log2(17) = 4.09, and evaluate() converts log_prob with genzoo's one convention."""
    over = {"steps": 2, "channels": 16, "batch_size": 64, "ckpt_every": 0}
    run = genzoo.train(
        "glow", "digits", steps=120, out=tmp_path / "g", overrides={**fast_train, **over}
    )
    res = genzoo.evaluate(run)
    assert res["log_prob_bpd"] == pytest.approx(float(bits_per_dim(-res["log_prob"], 64, 17)))
    assert res["log_prob_bpd"] < 3.0, res


# trained to the entropy of the data: (model, data) -> (steps, overrides). Measured with these
# settings (1 CPU thread, machine shared with other jobs, 2026-11-23), NLL - entropy in nats:
# realnvp 8gaussians +0.060 (945 s), realnvp checkerboard +0.069 (719 s), glow 8gaussians +0.077
# (1,196 s), glow checkerboard +0.048 (593 s). (5,000 steps on the checkerboard: +0.097 to +0.108.)
# maf 8gaussians +0.066 (3,338 s), iaf 8gaussians +0.065 (3,864 s), on a machine at load 9-19,
# 2026-12-06 (benchmarks/RESULTS.md, issue 22: 16 layers of MADE 64-64-64, RealNVP's depth and
# widths).
TRAINED: dict[tuple[str, str], tuple[int, dict]] = {
    ("maf", "toy2d:8gaussians"): (5000, {"flows": 16, "hidden": [64, 64, 64]}),
    ("iaf", "toy2d:8gaussians"): (5000, {"flows": 16, "hidden": [64, 64, 64]}),
    ("realnvp", "toy2d:8gaussians"): (5000, {"couplings": 16, "hidden": [64, 64, 64]}),
    ("realnvp", "toy2d:checkerboard"): (10000, {"couplings": 24, "hidden": [64, 64]}),
    ("glow", "toy2d:8gaussians"): (5000, {"steps": 24, "hidden": [64, 64]}),
    ("glow", "toy2d:checkerboard"): (10000, {"steps": 24, "hidden": [64, 64]}),
}


@pytest.mark.slow
@pytest.mark.parametrize(("name", "data"), sorted(TRAINED), ids=lambda v: str(v))
def test_trained_flow_reaches_the_entropy_of_toy_data(name, data, tmp_path, fast_train):
    """Test NLL (EMA weights) within 0.1 nats of the true entropy, and not below it by more than
    the Monte-Carlo error of 5,000 test points (cross-entropy >= entropy)."""
    steps, over = TRAINED[(name, data)]
    train_over = {
        "batch_size": 1024,
        "lr": 2e-3,
        "lr_decay": "cosine",
        "ema_decay": 0.999,
        "ckpt_every": 0,
    }
    t0 = time.perf_counter()
    run = genzoo.train(
        name, data, steps=steps, out=tmp_path / "r", overrides={**fast_train, **train_over, **over}
    )
    seconds = time.perf_counter() - t0
    m = genzoo.load(run)
    test = load_dataset(data, "test")
    with torch.no_grad():
        lp = m.log_prob(test.x).double()
    nll, entropy = -lp.mean().item(), test.toy.entropy()
    se = lp.std().item() / math.sqrt(lp.numel())
    print(f"{name} {data}: NLL {nll:.4f} vs entropy {entropy:.4f} ({steps} steps, {seconds:.0f} s)")
    assert nll - entropy < 0.1, (nll, entropy)
    assert nll - entropy > -4 * se, (nll, entropy, se)
