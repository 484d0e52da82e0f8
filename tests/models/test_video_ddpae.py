"""video-ddpae (DDPAE, arXiv:1806.04166, one object): the spatial transformer places one sprite
exactly (whole-pixel moves are shifts, the inverse transform reads the sprite back), so the
frames of a clip share their content by construction; the pose prior is a causal mixture whose
densities agree with torch.distributions; the soft-argmax reads a sharp heat map's pixel; the
pose posterior learns to track the digit; sampling keeps the known frames; bad input is one
sentence; the model round-trips through a safetensors checkpoint. The VampPrior is the uniform
mixture of the content posterior at its pseudo-windows (parity with torch.distributions, moments
of its draws, its one-sample KL unbiased against the closed form); the grid first pose is a
mixture with a Gaussian at every pixel centre; with the defaults neither exists."""

from __future__ import annotations

import pytest
import torch
from torch import distributions as D
from torch import nn

from genzoo.core.errors import ConfigError
from genzoo.core.io import load_state_strict, load_tensors, save_tensors
from genzoo.data import dataset_info, load_dataset
from genzoo.data.base import levels_to_model
from genzoo.models import MODELS
from genzoo.models.autoencoders.ddpae import GRID_LR_SCALE, normal_entropy, normal_log_prob
from genzoo.nn.sprites import render, windows

SPEC = "moving-digits?size=16&n=256"


def _model(spec: str = SPEC, **cfg):
    cls = MODELS.get("video-ddpae")
    config = cls.config_class.from_dict({"hidden": 32, "heat_width": 8, "content_dim": 6, **cfg})
    torch.manual_seed(0)
    return cls(config, dataset_info(spec)).eval()


def test_the_transformer_moves_one_sprite_by_whole_pixels_and_reads_it_back() -> None:
    """Eq. (3): ``T(sprite, p)`` at a pose moved by (dx, dy) whole pixels is the frame shifted by
    (dx, dy); ``T^-1`` at the same pose returns the sprite exactly; so a clip decoded from one
    content at poses a whole number of pixels apart shows the very same window in every frame."""
    g = torch.Generator().manual_seed(0)
    sprite = torch.rand(2, 1, 9, 9, generator=g)
    pose = torch.tensor(
        [[[5.5, 6.5], [7.5, 6.5], [7.5, 9.5]], [[8.0, 8.0], [9.0, 7.0], [10.0, 6.0]]]
    )
    frames = render(sprite, pose, 16, 16)  # (2, 3, 1, 16, 16)
    assert torch.allclose(frames[0, 1], frames[0, 0].roll(2, dims=-1), atol=1e-6)
    assert torch.allclose(frames[0, 2], frames[0, 1].roll(3, dims=-2), atol=1e-6)
    # a pose on the pixel grid (half-integer centre for an odd sprite) renders the sprite unblurred
    assert torch.allclose(frames[0, 0, 0, 2:11, 1:10], sprite[0, 0], atol=1e-6)
    back = windows(frames, pose, 9)  # (2, 3, 1, 9, 9)
    assert torch.allclose(back[0], sprite[0].expand(3, 1, 9, 9), atol=1e-6)
    # an integer centre is half a pixel off the grid: blurred, yet every frame is the same window
    assert torch.allclose(back[1], back[1, :1].expand_as(back[1]), atol=1e-6)
    assert not torch.allclose(back[1, 0], sprite[1], atol=1e-3)
    model = _model()
    with torch.no_grad():
        clip = model.decode(torch.randn(1, 6, generator=g), pose[:1])
        k = model.k
        got = windows(clip, pose[:1], k)
        assert torch.allclose(got, got[:, :1].expand_as(got), atol=1e-6)
        assert got.amax() > 0.1


def test_the_pose_prior_is_a_causal_mixture() -> None:
    """``log p(p_t | p_{<t})`` (Eq. 4) does not change when later poses change, and equals
    torch.distributions' mixture of the step's components, one step at a time."""
    model = _model(components=4)
    prior = model.prior
    with torch.no_grad():  # give the head non-trivial outputs
        prior.head.weight.normal_(0, 0.3)
    g = torch.Generator().manual_seed(1)
    poses = torch.rand(3, 8, 2, generator=g) * 16
    with torch.no_grad():
        lp = prior.log_prob(poses)
        for t in (2, 5):
            later = poses.clone()
            later[:, t:] += torch.randn(3, 8 - t, 2, generator=g)
            lp2 = prior.log_prob(later)
            assert torch.equal(lp2[:, :t], lp[:, :t])
            assert (lp2[:, t] - lp[:, t]).abs().min() > 1e-6
        m, s = prior.first(3)
        ref = D.Independent(D.Normal(m, s), 1).log_prob(poses[:, 0])
        assert torch.allclose(lp[:, 0], ref, atol=1e-5)
        h = torch.zeros(3, prior.cell.hidden_size)
        for t in range(1, 8):
            logw, mean, std, h = prior.step(poses[:, t - 1], poses[:, max(t - 2, 0)], h)
            mix = D.MixtureSameFamily(
                D.Categorical(logits=logw), D.Independent(D.Normal(mean, std), 1)
            )
            assert torch.allclose(lp[:, t], mix.log_prob(poses[:, t]), atol=1e-5)
    std = torch.rand(5, 2) + 0.1
    x, mu = torch.randn(5, 2), torch.randn(5, 2)
    normal = D.Independent(D.Normal(mu, std), 1)
    assert torch.allclose(normal_log_prob(x, mu, std), normal.log_prob(x), atol=1e-5)
    assert torch.allclose(normal_entropy(std), normal.entropy(), atol=1e-5)


def test_the_soft_argmax_reads_the_peak_of_a_sharp_heat_map() -> None:
    model = _model()

    class Peak(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(x.shape[0], 1, 16, 16)
            out[0, 0, 3, 12] = 50.0  # row 3, column 12
            out[1, 0, 9, 1] = 50.0
            return out

    model.pose_encoder.net = Peak()
    got = model.pose_encoder(torch.zeros(2, 1, 16, 16))
    assert torch.allclose(got, torch.tensor([[12.5, 3.5], [1.5, 9.5]]), atol=1e-3)


def test_training_learns_to_track_the_digit_and_predicts_better_than_copying() -> None:
    """After a short training the pose posterior follows the true centre up to one offset (its
    spread about the centre far below the centre's own spread), and prediction from 4 frames
    (poses rolled by the prior, the content of the known frames) has a lower pixel error than
    copying the last known frame."""
    torch.set_num_threads(1)
    model = _model(hidden=64, heat_width=16).train()
    data = load_dataset(SPEC, "train")
    x = levels_to_model(data.x, 256)
    centre = data.extras["centre"][:, :, 0]
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(250):
        idx = torch.randint(0, x.shape[0], (16,), generator=g)
        loss = model.loss({"x": x[idx]}).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pose, _ = model.pose_posterior(model.intensities(x[:64]))
        off = (pose - centre[:64]).reshape(-1, 2)
        assert (off.std(0) < 0.25 * centre[:64].reshape(-1, 2).std(0)).all()
        pred = model.sample(64, cond=x[:64, :4], generator=g, temperature=0.0)
        assert torch.equal(pred[:, :4], x[:64, :4])
        mse = ((pred[:, 4:] - x[:64, 4:]) ** 2).mean()
        copy = ((x[:64, 3:4] - x[:64, 4:]) ** 2).mean()
        assert mse < copy


def test_sampling_options_and_bad_input_are_one_sentence() -> None:
    model = _model()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 8, 1, 16, 16, generator=g) * 2 - 1
    a = model.sample(3, cond=x[:, :4], generator=torch.Generator().manual_seed(0), temperature=0)
    b = model.sample(3, cond=x[:, :4], generator=torch.Generator().manual_seed(5), temperature=0)
    assert torch.equal(a, b)  # temperature 0: the means, no draw
    assert torch.equal(a[:, :4], x[:, :4])
    assert model.sample(2, generator=g).shape == (2, 8, 1, 16, 16)
    # any length: the prior rolls on; the first 8 frames of a longer clip are the 8-frame clip
    long = model.sample(3, cond=x[:, :4], generator=g, temperature=0, frames=12)
    assert long.shape == (3, 12, 1, 16, 16) and torch.allclose(long[:, :8], a, atol=1e-6)
    for bad, what in (
        (lambda: model.sample(2, cond=x[:2, :4, :, :8]), "do not fit this run"),
        (lambda: model.sample(3, cond=x), "give 1 to 7"),
        (lambda: model.sample(3, cond=x[:, :4], frames=4), "give 1 to 3"),
        (lambda: model.sample(2, steps=3), "Unknown sampling option 'steps'"),
        (lambda: model.sample(2, temperature=-1), "temperature = -1"),
        (lambda: model.sample(2, size=32), "size=32: this run was trained on 16 x 16"),
        (lambda: model.sample(2, frames=0), "any whole number of frames"),
        (lambda: model.sample(3, cond=x, frames=8), "give 1 to 7"),
        (lambda: _model("digits"), "needs video data"),
        (lambda: _model("moving-digits?size=16&digits=2"), "one object per clip"),
        (lambda: _model(sprite=17), "sprite = 17 does not fit"),
        (lambda: _model(content_prior="gmm"), "content_prior = 'gmm' is not one of normal, vamp"),
        (lambda: _model(first_pose="uniform"), "first_pose = 'uniform' is not one of gaussian"),
    ):
        with pytest.raises(ConfigError, match=what):
            bad()


def test_the_model_round_trips_through_safetensors(tmp_path) -> None:
    model = _model()
    save_tensors(tmp_path / "m.safetensors", model.state_dict())
    other = _model()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    load_state_strict(other, load_tensors(tmp_path / "m.safetensors"), "m.safetensors")
    a = model.sample(2, generator=torch.Generator().manual_seed(3))
    b = other.sample(2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def _vamp_mixture(model) -> D.MixtureSameFamily:
    """The VampPrior written out independently: each pseudo-window encoded on its own."""
    mus, stds = [], []
    for u in torch.sigmoid(model.pseudo):
        out = model.content_encoder(u[None])[0]
        mu, logvar = out.chunk(2)
        mus.append(mu)
        stds.append((0.5 * logvar.clamp(-12.0, 8.0)).exp())
    k = len(mus)
    comps = D.Independent(D.Normal(torch.stack(mus), torch.stack(stds)), 1)
    return D.MixtureSameFamily(D.Categorical(logits=torch.zeros(k)), comps)


def test_the_vamp_prior_is_the_mixture_of_the_posterior_at_the_pseudo_windows() -> None:
    """VampPrior (arXiv:1705.07120, Eq. (9)): ``log p(z)`` equals torch.distributions' uniform
    mixture of ``q(z | u_k)``; its draws have the mixture's mean and variance; at temperature 0 a
    draw is one of the components' means."""
    model = _model(content_prior="vamp", pseudo_inputs=5)
    assert model.pseudo is not None and model.pseudo.shape == (5, 1, model.k, model.k)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in model.content_encoder.parameters():  # spread the components apart
            p.normal_(0, 0.4, generator=g)
        mix = _vamp_mixture(model)
        z = torch.randn(64, 6, generator=g) * 2
        assert torch.allclose(model.content_log_prior(z), mix.log_prob(z), atol=1e-4)
        draws = model.draw_content(40_000, 1.0, torch.Generator().manual_seed(0))
        se = (mix.variance / 40_000).sqrt()
        assert ((draws.mean(0) - mix.mean).abs() < 5 * se).all()
        assert torch.allclose(draws.var(0), mix.variance, rtol=0.05)
        means = model.draw_content(50, 0.0, g)  # (50, 6), each one of the 5 means
        dist = (means[:, None] - mix.component_distribution.mean[None]).abs().amax(-1)
        assert (dist.amin(1) < 1e-5).all() and len(dist.argmin(1).unique()) > 1


def test_the_vamp_content_kl_is_an_unbiased_one_sample_estimate() -> None:
    """With one pseudo-window the VampPrior is one Gaussian ``q(z | u)``: the ELBO's one-sample
    content KL ``log q(z | x) - log p(z)``, averaged over many posterior samples of one clip, is
    the closed-form KL of the two Gaussians."""
    model = _model(content_prior="vamp", pseudo_inputs=1)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.content_encoder.parameters():
            p.normal_(0, 0.3, generator=g)
        x = levels_to_model(load_dataset(SPEC, "train").x[:1], 256).expand(3_000, -1, -1, -1, -1)
        torch.manual_seed(0)
        got = model.elbo_terms(x)["kl_content"]
        frames = model.intensities(x[:1])
        mu, logvar = model.content_posterior(frames, model.pose_posterior(frames)[0])
        pmu, plogvar = model.vamp_components()
        q = D.Independent(D.Normal(mu[0], (0.5 * logvar[0]).exp()), 1)
        p = D.Independent(D.Normal(pmu[0], (0.5 * plogvar[0]).exp()), 1)
        want = D.kl_divergence(q, p)
        assert want > 1.0  # not a trivial zero
        assert (got.mean() - want).abs() < 4 * got.std() / 3_000**0.5 + 1e-4


def test_the_grid_first_pose_is_a_gaussian_at_every_pixel_centre() -> None:
    """``first_pose = grid``: ``log p(p_1)`` equals torch.distributions' mixture with a
    component at each of the 16 x 16 pixel centres; with the weights on one pixel and a narrow
    std, every draw lands on that pixel's centre; the defaults have neither new prior."""
    model = _model(first_pose="grid")
    prior = model.prior
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        prior.grid_logits.normal_(0, 0.2, generator=g)
        prior.grid_raw_std.fill_(-1.0)
        poses = torch.rand(10, 8, 2, generator=g) * 16
        ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
        centres = torch.stack([xs, ys], -1).view(-1, 2) + 0.5
        std = prior.std(GRID_LR_SCALE * prior.grid_raw_std)
        comps = D.Independent(D.Normal(centres, std.expand(256, 2)), 1)
        ref = D.MixtureSameFamily(D.Categorical(logits=GRID_LR_SCALE * prior.grid_logits), comps)
        assert torch.allclose(prior.log_prob(poses)[:, 0], ref.log_prob(poses[:, 0]), atol=1e-4)
        prior.grid_logits.fill_(-50.0)
        prior.grid_logits[5 * 16 + 11] = 50.0  # row 5, column 11
        prior.grid_raw_std.fill_(-20.0)  # std at its floor, min_std
        logw, mean, std = prior.first_mixture(4)
        pose = prior.draw(logw, mean, std, 1.0, g)
        assert torch.allclose(pose, torch.tensor([11.5, 5.5]).expand(4, 2), atol=0.2)
    keys = set(_model().state_dict())
    assert not any(k.startswith(("pseudo", "prior.grid")) for k in keys)
    assert {"pseudo", "prior.grid_logits"} <= set(
        _model(content_prior="vamp", first_pose="grid").state_dict()
    )


def test_sample_latents_are_what_sample_renders() -> None:
    """``sample`` is ``decode`` of ``sample_latents`` drawn with the same generator (so the
    benchmark's sub-pixel control re-renders the very draws it scores); with a low temperature the
    VampPrior draws lie nearer its components' means."""
    model = _model(content_prior="vamp", first_pose="grid", pseudo_inputs=8)
    for tau in (1.0, 0.3):
        z, poses, k = model.sample_latents(5, generator=torch.Generator().manual_seed(0),
                                           temperature=tau)  # fmt: skip
        clips = model.sample(5, generator=torch.Generator().manual_seed(0), temperature=tau)
        assert k == 0 and poses.shape == (5, 8, 2)
        assert torch.equal(model.decode(z, poses) * 2 - 1, clips)
    with torch.no_grad():
        mu, logvar = model.vamp_components()
    far = []
    for tau in (1.0, 0.3):
        z = model.draw_content(2000, tau, torch.Generator().manual_seed(1))
        d = ((z[:, None] - mu[None]) / (0.5 * logvar).exp()[None]).pow(2).sum(-1).amin(1)
        far.append(d.mean())
    assert far[1] < 0.2 * far[0]  # squared standardized distance scales with tau^2 = 0.09
