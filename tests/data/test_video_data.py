"""moving-digits and moving-shapes: the trajectories obey the bounce rule exactly (checked against
the closed form of a reflected straight line), the frames show what the stored positions say,
and everything is reproducible from the seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genzoo.core.errors import DataError
from genzoo.data import dataset_info, load_dataset
from genzoo.data.video import (
    DIRECTIONS,
    SHAPE_DIRECTIONS,
    SHAPE_STEPS,
    UNIT_STEPS,
    bounce_step,
    make_moving_digits,
    parse_video_spec,
    trajectories,
)
from genzoo.metrics.video import centroids

SPEC = "moving-digits?size=16&n=64&digits=2&frames=16"


def _folded(u: np.ndarray, limit: int) -> np.ndarray:
    """A free straight line ``u`` reflected into ``[0, limit]``: the triangle wave of period
    ``2 limit`` (an independent closed form of bouncing between two walls)."""
    return limit - np.abs(np.mod(u, 2 * limit) - limit)


def test_trajectories_equal_the_reflected_straight_line_and_flip_at_the_wall() -> None:
    rng = np.random.default_rng(0)
    limit = 9
    p0 = rng.integers(0, limit + 1, size=(500, 2))
    v0 = rng.integers(-limit, limit + 1, size=(500, 2))
    pos, vel = trajectories(p0, v0, 40, limit)  # (T, N, 2)
    t = np.arange(40)[:, None, None]
    assert np.array_equal(pos, _folded(p0 + v0 * t, limit))
    assert pos.min() >= 0 and pos.max() <= limit
    # the velocity flips exactly where the free step would leave the box, else it is kept
    out = (pos[:-1] + vel[:-1] < 0) | (pos[:-1] + vel[:-1] > limit)
    assert out.any() and (~out).any()
    assert np.array_equal(vel[1:], np.where(out, -vel[:-1], vel[:-1]))
    # one step at the wall by hand: 8 + 3 leaves [0, 9] and lands on 2 * 9 - 11 = 7
    q, v = bounce_step(np.array([8]), np.array([3]), 9)
    assert q.tolist() == [7] and v.tolist() == [-3]


def test_moving_digits_frames_show_the_stored_positions_reproducibly() -> None:
    ds = load_dataset(SPEC, "train")
    assert ds.info.kind == "video" and ds.info.shape == (16, 1, 16, 16)
    batch = ds.get(torch.arange(8))
    assert batch["x"].shape == (8, 16, 1, 16, 16) and batch["x"].min() >= -1
    pos, labels = ds.extras["pos"], ds.extras["labels"]
    limit = 16 - 7
    assert pos.min() >= 0 and pos.max() <= limit
    assert torch.equal(ds.y, labels[:, 0])
    # a regenerated set is identical (fixed seeds), and so is a second split load
    again = make_moving_digits(parse_video_spec(SPEC), "train")
    assert torch.equal(again.x, ds.x) and torch.equal(again.extras["pos"], pos)
    # one digit: the intensity centroid of every frame is the stored centre
    one = load_dataset("moving-digits?size=32&n=16", "train")
    b = one.get(torch.arange(16))
    got = centroids(b["x"])
    assert torch.allclose(got, b["centre"][:, :, 0], atol=0.02)
    assert torch.equal(one.get(torch.arange(16))["x"], b["x"])


def test_moving_digits_follow_their_initial_direction_until_a_wall() -> None:
    ds = load_dataset("moving-digits?size=32&n=200", "train")
    p = ds.extras["pos"].numpy()[:, :, 0]  # (N, T, 2)
    unit = np.asarray(UNIT_STEPS)[ds.extras["direction"].numpy()]  # (N, 2)
    limit = 32 - 14
    free = p[:, 0] + 2 * unit  # the fastest first step (speed 1 or 2)
    inside = ((free >= 0) & (free <= limit)).all(1)  # no wall in the first step at any speed
    assert inside.mean() > 0.5
    assert np.array_equal(np.sign(p[inside, 1] - p[inside, 0]), unit[inside])
    assert len(DIRECTIONS) == len(UNIT_STEPS)


def test_moving_shapes_glide_as_their_captions_say() -> None:
    ds = load_dataset("moving-shapes?size=32&n=48", "train")
    x = ds.get(torch.arange(48))["x"]
    assert x.shape == (48, 8, 3, 32, 32)
    border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], -1)
    assert border.max() <= -0.99  # never touches the border: the caption stays true
    c = centroids(x)  # (B, T, 2)
    assert torch.allclose(c, ds.extras["centre"][:, :, 0], atol=0.35)
    motion = c[:, -1] - c[:, 0]
    for i in range(48):
        k = int(ds.extras["direction"][i])
        assert SHAPE_DIRECTIONS[k] in ds.captions[i]
        along = torch.tensor(SHAPE_STEPS[k], dtype=torch.float32)
        assert float(motion[i] @ along) > 1.0  # it moves the captioned way


@pytest.mark.parametrize(
    "spec,needle",
    [
        ("moving-digits?frames=40", "frames=T (4..16)"),
        ("moving-digits?size=20", "size=16, 32 or 64"),
        ("moving-shapes?digits=2", "'digits=2'"),
        ("moving-digits?digits=3", "digits=1 or digits=2"),
    ],
)
def test_bad_options_are_one_sentence(spec: str, needle: str) -> None:
    with pytest.raises(DataError) as e:
        dataset_info(spec)
    text = str(e.value)
    assert needle in text and spec in text
    assert text.endswith(".") and text.replace("e.g.", "eg").count(". ") == 0  # one sentence
