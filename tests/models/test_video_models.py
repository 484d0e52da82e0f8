"""video-diffusion (arXiv:2204.03458) and the two-stream video-gan (arXiv:1609.02612): the
conditioned sampler keeps the known frames exactly with any sampler, the loss counts only the
unknown frames, and the video GAN composes a static background and a masked moving foreground
(Eq. 2)."""

from __future__ import annotations

import pytest
import torch

from genzoo.core.errors import ConfigError
from genzoo.data import dataset_info
from genzoo.models import MODELS

SPEC = "moving-digits?size=16&n=32"


def _diffusion(**cfg):
    cls = MODELS.get("video-diffusion")
    config = cls.config_class.from_dict({"channels": 8, "channel_mult": [1, 2], **cfg})
    torch.manual_seed(0)
    model = cls(config, dataset_info(SPEC))
    with torch.no_grad():  # an untrained but non-trivial network: random temporal layers too
        for p in model.net.temporal.parameters():
            p.normal_(0, 0.2)
        model.net.spatial.conv_out.weight.normal_(0, 0.2)
    return model.eval()


@pytest.mark.parametrize("sampler", ["heun", "euler", "dpmpp-2m", "ddim"])
def test_prediction_keeps_the_known_frames_with_any_sampler(sampler: str) -> None:
    model = _diffusion()
    g = torch.Generator().manual_seed(0)
    context = torch.rand(2, 3, 1, 16, 16, generator=g) * 2 - 1
    out = model.sample(2, cond=context, generator=g, steps=3, sampler=sampler)
    assert out.shape == (2, 8, 1, 16, 16)
    assert torch.allclose(out[:, :3], context, atol=1e-5)
    # the context reaches the predicted frames: another context, another prediction
    g2 = torch.Generator().manual_seed(0)
    _ = torch.rand(2, 3, 1, 16, 16, generator=g2)
    other = model.sample(2, cond=-context, generator=g2, steps=3, sampler=sampler)
    assert not torch.allclose(other[:, 3:], out[:, 3:], atol=1e-3)


def test_the_loss_counts_only_the_unknown_frames() -> None:
    """With every clip conditioned (context_prob = 1, so frame 0 is always known), an error on
    the known frame leaves the loss unchanged, and the loss is the weighted MSE of the unknown
    frames (EDM Eq. 2): 0.1^2 here, whatever number of frames each clip was shown."""
    model = _diffusion(context_prob=1.0, max_context=3)
    x0 = torch.rand(4, 8, 1, 16, 16) * 2 - 1

    def denoiser(noise: float):
        def den(x, sigma):
            d = x0.clone()
            d[:, 0] += noise  # wrong on the always-known first frame
            d[:, 1:] += 0.1  # 0.1 off everywhere else
            return d

        return den

    def loss(noise: float) -> torch.Tensor:
        g = torch.Generator().manual_seed(1)
        return model.per_example_loss(x0, generator=g, denoiser=denoiser(noise))

    a, b = loss(0.0), loss(5.0)
    assert torch.equal(a, b)
    sigma = model.train_sigma(4, torch.Generator().manual_seed(1), "cpu")
    assert torch.allclose(a, model.loss_weight(sigma) * 0.01, rtol=1e-4)
    # without conditioning every frame counts: the error on frame 0 shows
    plain = _diffusion(context_prob=0.0)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert not torch.equal(
        plain.per_example_loss(x0, generator=g1, denoiser=denoiser(0.0)),
        plain.per_example_loss(x0, generator=g2, denoiser=denoiser(5.0)),
    )


def test_wrong_clip_length_frame_size_or_context_is_one_sentence() -> None:
    model = _diffusion()
    for kw, needle in [
        ({"frames": 16}, "clips of 8 frames"),
        ({"size": 32}, "16 x 16 frames"),
        ({"cond": torch.zeros(1, 2, 1, 32, 32)}, "(1, k, 1, 16, 16)"),
        ({"cond": torch.zeros(1, 8, 1, 16, 16)}, "give 1 to 7"),
    ]:
        with pytest.raises(ConfigError) as e:
            model.sample(1, steps=1, **kw)
        assert needle in str(e.value)
    with pytest.raises(ConfigError, match="needs video data"):
        cls = MODELS.get("video-diffusion")
        cls(cls.config_class(), dataset_info("digits"))


def test_video_gan_composes_background_foreground_and_mask() -> None:
    """Eq. (2): with the mask at 0 every frame is the one background image b(z) (a still clip);
    at 1 the clip is the foreground stream f(z)."""
    cls = MODELS.get("video-gan")
    torch.manual_seed(0)
    config = cls.config_class.from_dict({"width": 8, "latent_dim": 8})
    model = cls(config, dataset_info(SPEC)).eval()
    mask_bias = model.generator.fg[-1].bias
    z = torch.randn(3, 8)
    with torch.no_grad():
        mask_bias[-1] = -1e4  # sigmoid -> 0: background only
        still, m = model.generator(z)
        assert m.max() < 1e-6
        assert torch.allclose(still, still[:, :1].expand_as(still), atol=1e-5)
        mask_bias[-1] = 1e4  # sigmoid -> 1: foreground only
        moving, _ = model.generator(z)
        fg = model.generator.fg(model.generator.fg_in(z).view(3, -1, *model.generator.start))
        assert torch.allclose(moving, torch.tanh(fg[:, :1]).permute(0, 2, 1, 3, 4), atol=1e-5)
        assert not torch.allclose(moving, moving[:, :1].expand_as(moving), atol=1e-3)
    # D judges the clip as a whole: the order of frames matters to it
    x = torch.rand(2, 8, 1, 16, 16) * 2 - 1
    assert not torch.allclose(model.discriminator(x), model.discriminator(x.flip(1)), atol=1e-5)
    groups = model.param_groups()
    assert list(groups) == ["d", "g"]
    assert not {id(p) for p in groups["d"]} & {id(p) for p in groups["g"]}
    with pytest.raises(ConfigError, match="multiples of 4"):
        cls(cls.config_class(), dataset_info("moving-digits?size=16&frames=6"))


def _frame_corr(eps: torch.Tensor) -> tuple[float, float, float]:
    """Per-pixel variance, correlation of frames 0 and 1 and of neighbouring pixels of a frame,
    over noise ``(B, T, C, H, W)``."""
    a, b = eps[:, 0].flatten(), eps[:, 1].flatten()
    c, d = eps[..., :-1].flatten(), eps[..., 1:].flatten()
    return (
        float(eps.var()),
        float(torch.corrcoef(torch.stack([a, b]))[0, 1]),
        float(torch.corrcoef(torch.stack([c, d]))[0, 1]),
    )


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_mixed_noise_shares_alpha2_over_1_plus_alpha2_across_frames_and_is_white_at_0(
    alpha: float,
) -> None:
    """PYoCo's mixed noise (arXiv:2305.10474, Eq. 3): unit variance per pixel, frames correlated
    by alpha^2 / (1 + alpha^2), pixels of a frame not at all; in training (read back from the
    noisy clip the loss denoises) and at the sampler's start. ``noise_mix = 0`` draws exactly
    the white noise of before."""
    plain = _diffusion()
    shape = (3, 8, 1, 16, 16)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(plain.clip_noise(shape, g1, "cpu"), torch.randn(shape, generator=g2))
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    want = torch.randn(shape, generator=g2) * plain.prior_std(80.0)
    assert torch.equal(plain.initial_noise(3, 80.0, g1), want)

    model = _diffusion(noise_mix=alpha, context_prob=0.0)
    rho = alpha**2 / (1 + alpha**2)
    start = model.initial_noise(2000, 80.0, torch.Generator().manual_seed(5))
    var, across, within = _frame_corr(start / model.prior_std(80.0))
    assert abs(var - 1) < 0.02 and abs(across - rho) < 0.02 and abs(within) < 0.02
    x0 = torch.rand(2000, 8, 1, 16, 16) * 2 - 1
    seen = {}

    def den(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        seen["eps"] = (x - x0) / sigma.view(-1, 1, 1, 1, 1)
        return x0

    model.per_example_loss(x0, generator=torch.Generator().manual_seed(6), denoiser=den)
    var, across, within = _frame_corr(seen["eps"])
    assert abs(var - 1) < 0.02 and abs(across - rho) < 0.02 and abs(within) < 0.02
    white = _frame_corr(plain.clip_noise((2000, 8, 1, 16, 16), None, "cpu"))
    assert abs(white[1]) < 0.02


def test_bad_sampling_input_is_one_sentence() -> None:
    """NaN context frames (they drew NaN clips), a guidance that is not a number (a bare
    ``ValueError``) and prompts that are not strings (a ``TypeError``) are one sentence each."""
    from genzoo.diffusion.guidance import check_guidance
    from genzoo.models.diffusion.t2i import repeat_prompts

    model = _diffusion()
    context = torch.zeros(1, 2, 1, 16, 16)
    context[0, 1, 0, 3, 4] = float("nan")
    with pytest.raises(ConfigError, match="NaN"):
        model.sample(1, cond=context, steps=2)
    with pytest.raises(ConfigError, match="guidance = 'a'"):
        model.sample(1, steps=2, guidance="a")
    assert check_guidance("2.5") == 2.5  # a number written as text still reads
    with pytest.raises(ConfigError, match="non-empty list"):
        repeat_prompts(5, 2)
    assert repeat_prompts(("a red square", "a blue disc"), 3)[2] == "a red square"
    import numpy as np  # any iterable of strings still reads, as before the check

    assert repeat_prompts(np.array(["a red square"]), 2) == ["a red square"] * 2
    assert repeat_prompts(iter(["a blue disc"]), 1) == ["a blue disc"]
