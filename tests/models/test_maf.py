"""MADE, MAF and IAF: MADE's Jacobian is strictly triangular under its ordering; the layers and
whole flows invert and their log-determinants are autograd's slogdet; IAF is MAF run backwards;
the density integrates to one."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import Normal

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import LatentSpace, Samples, likelihood_kind
from genzoo.core.registry import MODELS
from genzoo.data.base import DataInfo
from genzoo.models.flows import IAF, MAF
from genzoo.nn.made import MADE, AffineAutoregressive, Inverted

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def randomize(module: nn.Module, scale: float, seed: int = 0) -> None:
    """Perturb every parameter (zero-initialised last layers would hide bugs)."""
    g = gen(seed)
    for p in module.parameters():
        p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def jacobian(f, x: Tensor) -> Tensor:
    """Autograd Jacobian of ``f`` at one example ``x`` ``(D,)``: ``(out, D)``."""
    return torch.autograd.functional.jacobian(lambda v: f(v[None]).reshape(-1), x)


def make(name: str, shape: tuple[int, ...], **over) -> MAF:
    info = (
        DataInfo(f"pts{shape[0]}", "points", shape)
        if len(shape) == 1
        else DataInfo("img", "images", shape, levels=17)
    )
    cls = MODELS.get(name)
    torch.manual_seed(0)
    cfg = {"flows": 3, "hidden": (24, 24), **over}
    return cls(cls.config_class.from_dict(cfg), info).to(F64)


def randomized(name: str, shape: tuple[int, ...], scale: float = 0.15, **over) -> MAF:
    m = make(name, shape, **over).train()
    x = data(shape, 16, 9)
    with torch.no_grad():
        m.log_prob(x)  # ActNorm's data-dependent initialisation
    randomize(m, scale)
    return m.eval()


def data(shape: tuple[int, ...], n: int, seed: int) -> Tensor:
    if len(shape) == 1:
        return torch.randn((n, *shape), generator=gen(seed), dtype=F64)
    return torch.rand((n, *shape), generator=gen(seed), dtype=F64) * 1.9 - 0.95


# --------------------------------------------------------------------------------------------------
# MADE


@pytest.mark.parametrize("order", ["identity", "reversed", "random"])
@pytest.mark.parametrize("hidden", [(7,), (16, 9)], ids=str)
def test_made_jacobian_is_strictly_triangular_under_its_ordering(order: str, hidden) -> None:
    d = 6
    o = {
        "identity": torch.arange(d),
        "reversed": torch.arange(d - 1, -1, -1),
        "random": torch.randperm(d, generator=gen(3)),
    }[order]
    torch.manual_seed(0)
    made = MADE(d, hidden, n_out=2, order=o, act=nn.Tanh).to(F64)  # tanh: no dead units
    randomize(made, 0.5)
    x = torch.randn(d, generator=gen(1), dtype=F64)
    jac = jacobian(made, x).view(2, d, d)  # (k, out i, in j)
    inv = torch.argsort(o)  # inv[p] = the input at position p
    for k in range(2):
        j_ordered = jac[k][inv][:, inv]  # rows and columns in the order of the MADE
        upper = torch.triu(j_ordered)  # the diagonal and above must vanish exactly
        assert torch.equal(upper, torch.zeros_like(upper)), (k, j_ordered)
        # and the network is not trivial: with a hidden layer at least D - 1 wide every
        # allowed connection exists (hidden (7,): D - 1 = 5 degrees cycled)
        below = j_ordered[torch.tril(torch.ones(d, d, dtype=torch.bool), -1)]
        assert (below != 0).all(), (k, j_ordered)
    with pytest.raises(ValueError, match="permutation"):
        MADE(3, (4,), order=torch.tensor([0, 0, 1]))


# --------------------------------------------------------------------------------------------------
# layers


def test_maf_layer_logdet_is_autograd_slogdet_and_iaf_layer_is_its_inverse() -> None:
    d = 5
    torch.manual_seed(0)
    layer = AffineAutoregressive(MADE(d, (16,), 2, torch.randperm(d, generator=gen(2)))).to(F64)
    randomize(layer, 0.4)
    iaf = Inverted(layer)
    x = torch.randn(3, d, generator=gen(0), dtype=F64)
    with torch.no_grad():
        u, ld = layer(x)
        x_back = layer.inverse(u)
        u2, ld_inv = iaf(x)  # IAF's density path is MAF's sampling path...
        x3, ld3 = layer(u2)
        x2 = iaf.inverse(u)  # ...and IAF's sampling path is MAF's density path
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-10)
    torch.testing.assert_close(x2, layer(u)[0], rtol=0, atol=0)
    torch.testing.assert_close(x3, x, rtol=0, atol=1e-10)
    torch.testing.assert_close(ld_inv, -ld3, rtol=0, atol=1e-10)
    for i in range(3):
        ref = torch.linalg.slogdet(jacobian(lambda v: layer(v)[0], x[i]))[1]
        torch.testing.assert_close(ld[i], ref, rtol=0, atol=1e-10)
        ref_inv = torch.linalg.slogdet(jacobian(lambda v: iaf(v)[0], x[i]))[1]
        torch.testing.assert_close(iaf(x[i : i + 1])[1][0], ref_inv, rtol=0, atol=1e-10)
    assert ld.abs().min() > 1e-2  # randomised: not volume preserving
    with pytest.raises(ValueError, match="unconditional"):
        layer(x, torch.zeros(3, 1))


# --------------------------------------------------------------------------------------------------
# whole flows


@pytest.mark.parametrize("order", ["reverse", "random"])
@pytest.mark.parametrize("shape", [(3,), (1, 3, 3)], ids=str)
@pytest.mark.parametrize("name", ["maf", "iaf"])
def test_flow_inverts_and_logdet_matches_autograd_slogdet(name, shape, order) -> None:
    m = randomized(name, shape, order=order)
    x = data(shape, 3, 5)
    with torch.no_grad():
        z, logdet = m(x)
        back = m.decode(z)
        lp = m.log_prob(x)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-5)  # round trip
    flat = x.reshape(3, -1)
    for i in range(3):
        ref = torch.linalg.slogdet(jacobian(lambda v: m(v.view(1, *shape))[0], flat[i]))[1]
        torch.testing.assert_close(logdet[i], ref, rtol=0, atol=1e-8)
        base = Normal(torch.zeros((), dtype=F64), 1.0).log_prob(z[i]).sum()
        torch.testing.assert_close(lp[i], base + ref, rtol=0, atol=1e-8)
    assert logdet.abs().min() > 1e-2


def test_iaf_samples_with_maf_density_map_and_both_round_trip() -> None:
    """With the same weights, IAF's sampling map u -> x is MAF's density map x -> u (of the
    reversed stack: here one layer), and IAF's log_prob is MAF's sampling path: they invert each
    other. Round trips of both hold to 1e-5 in float32 on 8x8 images."""
    maf = randomized("maf", (4,), flows=1)
    iaf = make("iaf", (4,), flows=1)
    iaf.load_state_dict(
        {k.replace(".made.", ".layer.made."): v for k, v in maf.state_dict().items()}
    )
    u = torch.randn(5, 4, generator=gen(7), dtype=F64)
    with torch.no_grad():
        torch.testing.assert_close(iaf.decode(u), maf.encode(u), rtol=0, atol=0)
        torch.testing.assert_close(iaf.encode(u), maf.decode(u), rtol=0, atol=1e-12)
        # log p_IAF(x) at x = MAF's density output: the change of variables through MAF's inverse
        x = maf.encode(u)
        _, ld = maf(u)
        std = Normal(torch.zeros((), dtype=F64), 1.0)
        torch.testing.assert_close(iaf.log_prob(x), std.log_prob(u).sum(1) - ld)
    for name in ("maf", "iaf"):
        m = randomized(name, (1, 8, 8), scale=0.05, flows=2, hidden=(32,)).float()
        x = torch.rand(4, 1, 8, 8, generator=gen(1)) * 1.8 - 0.9
        with torch.no_grad():
            torch.testing.assert_close(m.decode(m.encode(x)), x, rtol=0, atol=1e-5)
            z = torch.randn(4, 64, generator=gen(2))
            torch.testing.assert_close(m.encode(m.decode(z)), z, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["maf", "iaf"])
def test_points_density_integrates_to_one(name: str) -> None:
    m = randomized(name, (2,), scale=0.2)
    lim, n = 8.0, 321
    g = torch.linspace(-lim, lim, n, dtype=F64)
    grid = torch.cartesian_prod(g, g)  # (n^2, 2)
    with torch.no_grad():
        p = m.log_prob(grid).exp()
        x = m.sample(20_000, generator=gen(4))
    outside = float((x.abs() >= lim).any(1).double().mean())  # sample mass off the grid
    assert abs(float(p.sum() * (g[1] - g[0]) ** 2) + outside - 1.0) < 0.005
    assert (p.log() - Normal(0.0, 1.0).log_prob(grid).sum(1)).abs().max() > 0.5


def test_registry_loss_and_errors() -> None:
    for name, cls in [("maf", MAF), ("iaf", IAF)]:
        assert MODELS.get(name) is cls
        assert (cls.family, likelihood_kind(cls)) == ("flows", "exact")
        assert issubclass(cls, Samples) and issubclass(cls, LatentSpace)
    m = make("maf", (1, 4, 4)).float().train()
    x = torch.rand(6, 1, 4, 4) * 2 - 1
    out = m.loss({"x": x})
    lp = m.log_prob(x)
    assert torch.allclose(out.loss, -lp.mean() / 16)
    assert math.isfinite(float(out.logs["bpd"]))
    with pytest.raises(ConfigError, match="order"):
        MAF.config_class.from_dict({"order": "sideways"})
    with pytest.raises(ConfigError, match="valid keys"):
        MAF.config_class.from_dict({"flow": 3})


# --------------------------------------------------------------------------------------------------
# IAF distilled from a teacher flow (probability density distillation, arXiv:1711.10433)


def student_of(teacher: MAF, **over) -> IAF:
    """An IAF student of ``teacher`` with the shape and settings of :func:`make`."""
    torch.manual_seed(1)
    cfg = IAF.config_class.from_dict({"flows": 3, "hidden": (24, 24), **over})
    return IAF(cfg, teacher.info, teacher=teacher).to(F64)


@pytest.mark.parametrize("shape", [(3,), (1, 3, 3)], ids=str)
def test_sampling_pass_density_is_the_density_pass_and_kl_vanishes_at_the_teacher(shape) -> None:
    """The IAF's one-pass log-density of its own samples equals its ``D``-pass ``log_prob`` (every
    layer's ``inverse_and_logdet``, ActNorm and the logit included); so a student with the
    teacher's weights has a distillation loss of exactly 0 on every sample, and a student that
    differs has a positive one."""
    teacher = randomized("iaf", shape, scale=0.2)
    student = student_of(teacher)
    with torch.no_grad():
        y, log_q = student.sample_body(64, generator=gen(5))
        # data space: log q(x) = log q(y) + log |det dy/dx| of the logit, through the slow pass
        x = student.decode(student.body(y)[0])
        ld_pre = student.flow(x)[1] - student.body(y)[1]
        torch.testing.assert_close(student.log_prob(x), log_q + ld_pre, rtol=0, atol=1e-9)
        assert float(student.loss({"x": x}).loss) > 0.01  # a different IAF: KL > 0
        student.flow.load_state_dict(teacher.flow.state_dict())  # now q = p
        out = student.loss({"x": x})
    assert abs(float(out.loss)) < 1e-10 and abs(float(out.logs["kl"])) < 1e-9
    assert float(out.logs["teacher_nll"]) > 1.0  # not vacuous: the teacher scores real samples


def test_distillation_loss_estimates_the_kl_by_quadrature_and_its_gradient_vanishes_at_p() -> None:
    """On 2-D points the loss (Monte-Carlo, the IAF's one-pass samples and densities) agrees with
    KL(q || p) integrated on a grid from both flows' density passes, and its expected gradient in
    the student's parameters is zero when q = p (a teacher IAF with the same weights) but not
    when q differs."""
    teacher = randomized("maf", (2,), scale=0.2, flows=2)
    student = student_of(teacher, flows=2)
    randomize(student.flow, 0.2, seed=3)
    lim, n = 9.0, 301
    g = torch.linspace(-lim, lim, n, dtype=F64)
    grid = torch.cartesian_prod(g, g)  # (n^2, 2)
    with torch.no_grad():
        log_q, log_p = student.log_prob(grid), teacher.log_prob(grid)
        q = log_q.exp() * (g[1] - g[0]) ** 2
        kl_quad = float((q * (log_q - log_p)).sum())
        y, lq = student.sample_body(50_000, generator=gen(6))
        kl_mc = lq - teacher.body_log_prob(y)
    assert abs(float(q.sum()) - 1.0) < 1e-3
    se = float(kl_mc.std()) / math.sqrt(kl_mc.numel())
    assert kl_quad > 0.05, kl_quad
    assert abs(float(kl_mc.mean()) - kl_quad) < 4 * se + 1e-3, (float(kl_mc.mean()), kl_quad, se)

    def grad_norm(s: IAF) -> float:
        s.zero_grad()
        torch.manual_seed(7)  # the loss draws its samples from the global generator
        s.loss({"x": torch.zeros(20_000, 2, dtype=F64)}).loss.backward()
        return float(torch.cat([p.grad.flatten() for p in s.flow.parameters()]).norm())

    same_teacher = randomized("iaf", (2,), scale=0.2, flows=2)
    same = student_of(same_teacher, flows=2)
    same.flow.load_state_dict(same_teacher.flow.state_dict())
    assert all(p.grad is None for p in same_teacher.parameters())  # the teacher is frozen
    at_p, away = grad_norm(same), grad_norm(student)
    assert at_p < 0.05 * away, (at_p, away)


def test_distilled_iaf_trains_through_the_runs_layer_and_bad_teachers_are_refused(
    tmp_path, fast_train
) -> None:
    """``genzoo train iaf teacher_run=RUN`` loads the teacher as a frozen part, 40 steps of
    distillation lower the KL to it (estimated on 20,000 samples, the same before and after),
    the teacher is unchanged, and the saved run loads with the teacher; a teacher that is not a
    flow, or on other data, or with another logit, is one sentence."""
    import genzoo
    from genzoo.core.protocol import BuiltOnRuns

    over = {**fast_train, "ckpt_every": 0, "n_samples": 4, "batch_size": 128}
    flow = {"flows": 2, "hidden": [16, 16]}
    t_run = genzoo.train(
        "maf",
        "toy2d:8gaussians",
        steps=30,
        out=tmp_path / "t",
        overrides={**over, **flow, "lr": 5e-3},
    )
    teacher = genzoo.load(t_run)

    def kl(m: IAF) -> float:
        with torch.no_grad():
            y, lq = m.sample_body(20_000, generator=gen(8))
            return float((lq - teacher.body_log_prob(y)).mean())

    cfg = IAF.config_class.from_dict({**flow, "teacher_run": str(t_run)})
    before = kl(IAF(cfg, teacher.info, teacher=genzoo.load(t_run)).eval())
    s_run = genzoo.train(
        "iaf",
        "toy2d:8gaussians",
        steps=40,
        out=tmp_path / "s",
        overrides={**over, **flow, "lr": 5e-3, "teacher_run": str(t_run)},
    )
    student = genzoo.load(s_run)
    assert isinstance(student, IAF) and isinstance(student, BuiltOnRuns)
    after = kl(student)
    assert after < 0.5 * before, (before, after)
    for k, v in teacher.state_dict().items():  # frozen: bit-identical inside the student
        assert torch.equal(student.teacher.state_dict()[k], v), k
    with pytest.raises(ConfigError, match="normalizing flow"):
        IAF(cfg, teacher.info, teacher=nn.Linear(2, 2))  # type: ignore[arg-type]
    img_teacher = make("maf", (1, 3, 3))
    with pytest.raises(ConfigError, match="shape"):
        IAF(cfg, teacher.info, teacher=img_teacher)
    img_cfg = IAF.config_class.from_dict({**flow, "teacher_run": "x", "logit_alpha": 0.1})
    with pytest.raises(ConfigError, match="logit_alpha"):
        IAF(img_cfg, img_teacher.info, teacher=img_teacher)
    with pytest.raises(ConfigError, match="teacher_run"):
        IAF(img_cfg, img_teacher.info)
