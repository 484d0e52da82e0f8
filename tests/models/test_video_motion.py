"""video-diffusion's two options for moving content (issue 21): full space-time attention at
chosen U-Net levels, and the motion-compensated last known frame as an input for prediction (its
shift estimate against scipy's cross-correlation, its extrapolation exact on a clip that moves in
a straight line). Both are off by default, and then the model is the one of before."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

from genzoo.core.errors import ConfigError
from genzoo.data import dataset_info
from genzoo.models import MODELS
from genzoo.models.diffusion.video import motion_estimate, motion_frames
from genzoo.nn.spacetime import SpaceTimeAttention, TemporalAttention

SPEC = "moving-digits?size=16&n=32"


def _model(**cfg):
    cls = MODELS.get("video-diffusion")
    config = cls.config_class.from_dict({"channels": 8, "channel_mult": [1, 2], **cfg})
    torch.manual_seed(0)
    return cls(config, dataset_info(SPEC))


def test_the_options_are_off_by_default_and_build_what_they_say() -> None:
    plain = _model()
    assert all(isinstance(m, TemporalAttention) for m in plain.net.temporal)
    assert plain.net.spatial.conv_in.weight.shape[1] == 3  # [noisy frame, known frame, mask]
    full = _model(spacetime_attn_resolutions=[8], motion_input=True)
    kinds = [type(m) for m in full.net.temporal]
    res = full.net.spatial.block_resolutions
    assert kinds == [SpaceTimeAttention if r == 8 else TemporalAttention for r in res]
    assert 8 in res and 16 in res
    assert full.net.spatial.conv_in.weight.shape[1] == 4  # + the moved last known frame
    with pytest.raises(ConfigError, match=r"spacetime_attn_resolutions = \[4\].*\[8, 16\]"):
        _model(spacetime_attn_resolutions=[4])
    with pytest.raises(ConfigError, match="context_prob > 0"):
        _model(motion_input=True, context_prob=0)


def test_motion_estimate_is_the_peak_of_scipys_cross_correlation() -> None:
    g = torch.Generator().manual_seed(0)
    prev = torch.rand(6, 1, 9, 11, generator=g) * 2 - 1  # model range; intensities (x + 1) / 2
    last = torch.rand(6, 1, 9, 11, generator=g) * 2 - 1
    got = motion_estimate(prev, last, max_shift=3)
    for i in range(6):
        a, b = ((prev[i, 0] + 1) / 2).double().numpy(), ((last[i, 0] + 1) / 2).double().numpy()
        c = correlate2d(b, a, mode="full")  # c[dy + H - 1, dx + W - 1] = sum_u b[u + d] a[u]
        win = c[8 - 3 : 8 + 4, 10 - 3 : 10 + 4]
        dy, dx = np.unravel_index(win.argmax(), win.shape)
        assert got[i].tolist() == [dy - 3, dx - 3]


def test_motion_frames_extrapolate_a_straight_motion_exactly() -> None:
    """A sprite moving (+1, -2) pixels a frame, clear of the walls: with k = 2 or 3 known frames
    the moved last frame *is* every later frame; with k = 1 it is the still copy; 0 on the known
    frames and on clips without any known frame."""
    g = torch.Generator().manual_seed(1)
    t, side = 6, 20
    sprite = torch.rand(1, 3, 3, generator=g) * 2 - 1
    clip = torch.full((t, 1, side, side), -1.0)
    for i in range(t):
        y, x = 4 + i, 15 - 2 * i
        clip[i, :, y : y + 3, x : x + 3] = sprite
    x0 = clip[None].expand(4, -1, -1, -1, -1)
    k = torch.tensor([3, 2, 1, 0])
    out = motion_frames(x0, k, max_shift=3)
    assert torch.equal(out[0, 3:], clip[3:]) and torch.equal(out[1, 2:], clip[2:])
    assert torch.equal(out[2, 1:], clip[:1].expand(t - 1, -1, -1, -1))  # no motion known yet
    assert not out[0, :3].any() and not out[1, :2].any() and not out[3].any()


def test_with_motion_input_prediction_keeps_the_known_frames_and_reads_the_moved_frame() -> None:
    model = _model(motion_input=True, context_prob=1.0).eval()
    with torch.no_grad():
        for p in model.net.temporal.parameters():
            p.normal_(0, 0.2)
        model.net.spatial.conv_out.weight.normal_(0, 0.2)
    g = torch.Generator().manual_seed(0)
    context = torch.rand(2, 3, 1, 16, 16, generator=g) * 2 - 1
    out = model.sample(2, cond=context, generator=g, steps=2, sampler="euler")
    assert torch.allclose(out[:, :3], context, atol=1e-5)
    # the moved frame is an input of the unknown frames: the denoiser differs when only it does
    x0 = torch.zeros(1, 8, 1, 16, 16) - 1
    x0[:, :3] = context[:1]
    known = (torch.arange(8) < 3).float()[None]
    cond = model.pack_context(x0, known)
    assert cond.shape == (1, 8, 3, 16, 16)
    other = cond.clone()
    other[:, 3:, 2:] = -other[:, 3:, 2:]
    x, sigma = torch.randn(1, 8, 1, 16, 16), torch.tensor([1.0])
    with torch.no_grad():
        assert not torch.allclose(model.denoise(x, sigma, cond), model.denoise(x, sigma, other))
