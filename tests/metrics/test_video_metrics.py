"""Video metrics: the identity window moves exactly with the digit, so a real one-digit clip
scores identity consistency 1 whatever the classifier, and the windows equal an independent
float64 crop; the 12-frame clips of the prediction benchmark obey the bounce rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genzoo.core.errors import GenzooError
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo
from genzoo.data.video import UNIT_STEPS
from genzoo.metrics.classifier import FeatureClassifier, SmallCNN
from genzoo.metrics.video import (
    crop_radius,
    get_identity_classifier,
    identity_agreement,
    identity_consistency,
    identity_labels,
    object_crops,
    subpixel_frames,
)


class _RandomLinear(SmallCNN):
    """A random linear map of the whole window to 10 logits: different windows get different
    classes (an untrained SmallCNN gives nearly every input one class)."""

    def __init__(self, side: int) -> None:
        super().__init__(1, 10, 1)
        self.lin = torch.nn.Linear(side * side, 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin((x + 1).flatten(1))  # (B, 1, s, s) -> (B, 10) of the brightness


def _random_classifier(info: DataInfo, seed: int) -> FeatureClassifier:
    """An untrained classifier of the windows: any function of the window will do."""
    side = 2 * crop_radius(info) + 1
    crop = DataInfo("crops", "images", (1, side, side), levels=256, n_classes=10)
    torch.manual_seed(seed)
    return FeatureClassifier(_RandomLinear(side), crop, "test", {})


@pytest.mark.parametrize("spec", ["moving-digits?size=16&frames=12&n=48", "moving-digits?n=8"])
def test_a_real_clip_has_one_window_and_identity_consistency_one(spec: str) -> None:
    ds = load_dataset(spec, "train")
    x = ds.get(torch.arange(len(ds)))["x"]  # (N, T, 1, S, S) model space
    r = crop_radius(ds.info)
    win = object_crops(x, r)
    assert win.shape == (*x.shape[:3], 2 * r + 1, 2 * r + 1)
    assert torch.equal(win, win[:, :1].expand_as(win))  # the same window in every frame
    aligned = object_crops(x, r, aligned=True)  # resampled, yet the same in every frame too
    assert torch.equal(aligned, aligned[:, :1].expand_as(aligned))
    assert not torch.equal(aligned, win)
    # the window holds the whole digit: its mass is the frame's
    lit = 1 - 1 / 256  # model space above black (level 0 at 1 / 256 - 1)
    assert torch.allclose((win + lit).sum((2, 3, 4)), (x + lit).sum((2, 3, 4)), rtol=1e-5)
    clf = _random_classifier(ds.info, 0)
    assert identity_consistency(clf, x).tolist() == [1.0] * len(x)
    # control: clips spliced from two clips (first half of one, second of another) break it
    half = x.shape[1] // 2
    spliced = torch.cat([x[:, :half], x.roll(1, 0)[:, half:]], 1)
    pred = clf.logits(win[:, 0]).argmax(1)
    differ = pred != pred.roll(1, 0)
    assert differ.any()
    assert torch.equal(identity_consistency(clf, spliced), (~differ).float())
    # the graded share: k = T/2 + 1 frames from one clip and the rest from another agree k/T
    # where the two clips' digits are read differently, 1 elsewhere (real clips: 1)
    k = x.shape[1] // 2 + 1
    most = torch.cat([x[:, :k], x.roll(1, 0)[:, k:]], 1)
    want = torch.where(differ, k / x.shape[1], 1.0)
    assert torch.equal(identity_agreement(clf, most), want)
    assert identity_agreement(clf, x).tolist() == [1.0] * len(x)


def test_windows_equal_a_float64_crop_at_the_floored_centroid() -> None:
    g = torch.Generator().manual_seed(0)
    levels = torch.randint(0, 256, (3, 2, 2, 10, 12), generator=g)
    levels[..., :, 6:] = 0  # mass to the left: some windows reach past the border
    x = (2 * levels.float() + 1) / 256 - 1  # (B, T, C, H, W) bin centres
    r = 4
    got = object_crops(x, r).numpy()
    xn = x.double().numpy()
    for b in range(3):
        for t in range(2):
            v = levels[b, t].sum(0).double().numpy()  # (H, W)
            cy = (v.sum(1) * (np.arange(10) + 0.5)).sum() / v.sum()
            cx = (v.sum(0) * (np.arange(12) + 0.5)).sum() / v.sum()
            iy, ix = int(np.floor(cy)), int(np.floor(cx))
            want = np.full((2, 2 * r + 1, 2 * r + 1), 1 / 256 - 1)
            for i in range(2 * r + 1):
                for j in range(2 * r + 1):
                    yy, xx = iy - r + i, ix - r + j
                    if 0 <= yy < 10 and 0 <= xx < 12:
                        want[:, i, j] = xn[b, t, :, yy, xx]
            assert np.allclose(got[b, t], want, atol=1e-6)


def test_aligned_windows_equal_scipys_bilinear_resampling_at_the_centroid() -> None:
    """``object_crops(..., aligned=True)`` equals an independent float64 bilinear resampling
    (``scipy.ndimage.map_coordinates``, order 1, black outside) of each frame on the grid of
    window pixels centred at the frame's intensity centroid; on digits inside the frame the
    window's own centroid is its centre pixel's centre, wherever the digit sat off the grid."""
    from scipy.ndimage import map_coordinates

    from genzoo.data.base import levels_to_model

    test = load_dataset("moving-digits?size=16&n=16", "test")
    x = levels_to_model(test.x[:16], 256)
    moved = subpixel_frames(x, test.extras["centre"][:16, :, 0], 0.5, seed=5)
    moved = ((moved + 1) * 128 - 0.5).round().clamp(0, 255) * 2 / 256 + 1 / 256 - 1  # on levels
    r = 6
    got = object_crops(moved, r, aligned=True).double().numpy()
    assert got.shape == (16, 8, 1, 13, 13)
    black = 1 / 256 - 1
    xn = moved.double().numpy()
    levels = ((moved.double() + 1) * 128 - 0.5).round().numpy()
    a = np.arange(-r, r + 1)
    for b in range(16):
        for t in range(8):
            v = levels[b, t, 0]
            cy = (v.sum(1) * (np.arange(16) + 0.5)).sum() / v.sum() - 0.5  # pixel-index coords
            cx = (v.sum(0) * (np.arange(16) + 0.5)).sum() / v.sum() - 0.5
            yy, xx = np.meshgrid(cy + a, cx + a, indexing="ij")
            want = map_coordinates(xn[b, t, 0], [yy, xx], order=1, mode="grid-constant", cval=black)
            assert np.allclose(got[b, t, 0], want, atol=1e-5)
    inside = (test.extras["pos"][:16, :, 0] >= 1).all(-1) & (
        test.extras["pos"][:16, :, 0] <= 16 - 7 - 1
    ).all(-1)  # (16, 8): a digit off every wall by a pixel, so no mass is cut
    lit = got + 1 - 1 / 256  # intensity above black
    m = lit.sum((2, 3, 4))
    cen = np.arange(13) + 0.5
    wy = (lit.sum((2, 4)) * cen).sum(-1) / m
    wx = (lit.sum((2, 3)) * cen).sum(-1) / m
    off = np.hypot(wx - (r + 0.5), wy - (r + 0.5))[inside.numpy()]
    assert inside.sum() > 40 and off.max() < 0.01
    plain = object_crops(moved, r).double().numpy() + 1 - 1 / 256  # cut at the pixel: off centre
    py = (plain.sum((2, 4)) * cen).sum(-1) / plain.sum((2, 3, 4))
    px = (plain.sum((2, 3)) * cen).sum(-1) / plain.sum((2, 3, 4))
    assert np.hypot(px - (r + 0.5), py - (r + 0.5))[inside.numpy()].mean() > 0.2


def test_the_aligned_identity_classifier_reads_aligned_windows_from_its_cache(
    tmp_path: Path,
) -> None:
    """``aligned=True`` trains on aligned windows of every frame plus moved copies, says so in
    its cached meta, and :func:`identity_labels` reads it on aligned windows (a second call
    loads the cache and gives the same labels)."""
    spec = "moving-digits?size=16&n=40"
    clf = get_identity_classifier(spec, cache=tmp_path, aligned=True)
    assert clf.meta["aligned"] is True and clf.info.name.endswith("#crops-aligned")
    assert clf.meta["config"]["width"] == 32
    again = get_identity_classifier(spec, cache=tmp_path, aligned=True)
    assert again.meta["aligned"] is True
    test = load_dataset(spec, "test")
    x = test.get(torch.arange(len(test)))["x"]
    moved = subpixel_frames(x, test.extras["centre"][:, :, 0], 0.5, seed=1)
    r = crop_radius(test.info)
    win = object_crops(moved, r, aligned=True).flatten(0, 1)
    assert torch.equal(clf.logits(win), again.logits(win))  # the cache holds the weights
    # identity_labels cuts aligned windows for an aligned classifier, plain ones otherwise
    rand = _random_classifier(test.info, 0)
    plain = identity_labels(rand, moved).flatten()
    assert torch.equal(plain, rand.logits(object_crops(moved, r).flatten(0, 1)).argmax(1))
    rand.meta["aligned"] = True
    assert torch.equal(identity_labels(rand, moved).flatten(), rand.logits(win).argmax(1))
    assert not torch.equal(identity_labels(rand, moved).flatten(), plain)


def test_identity_classifier_of_a_two_digit_set_is_one_sentence() -> None:
    with pytest.raises(GenzooError) as e:
        get_identity_classifier("moving-digits?size=16&n=4&digits=2")
    assert "'moving-digits?size=16&n=4&digits=2'" in str(e.value)
    assert "one-digit" in str(e.value)


def test_twelve_frame_clips_obey_the_bounce_rule() -> None:
    """The stored corners of 12-frame clips equal the straight line from the first corner at the
    clip's direction and a speed of 1 or 2, folded into ``[0, limit]`` (reflection at the
    walls), and the frames show the digit at those corners."""
    ds = load_dataset("moving-digits?size=16&frames=12&n=200", "test")
    pos = ds.extras["pos"].numpy()[:, :, 0]  # (N, 12, 2)
    limit = 16 - 7
    unit = np.asarray(UNIT_STEPS)[ds.extras["direction"].numpy()]  # (N, 2)
    t = np.arange(12)[None, :, None]
    ok = np.zeros(len(pos), bool)
    for speed in (1, 2):
        u = pos[:, :1] + unit[:, None] * speed * t
        folded = limit - np.abs(np.mod(u, 2 * limit) - limit)
        ok |= (folded == pos).all((1, 2))
    assert ok.all()
    bounced = (np.diff(np.sign(np.diff(pos, axis=1)), axis=1) != 0).any((1, 2))
    assert bounced.mean() > 0.3  # many clips meet a wall within 12 frames
    x = ds.x.numpy()[:, :, 0].astype(int)  # (N, 12, 16, 16) levels
    for i in range(0, 200, 20):
        for k in range(12):
            px, py = pos[i, k]
            inside = x[i, k, py : py + 7, px : px + 7].sum()
            assert inside == x[i, k].sum()  # all of the digit lies in the 7 x 7 sprite there


def test_subpixel_frames_keep_the_digit_and_move_it_by_the_offset() -> None:
    """``subpixel_frames`` re-places each frame's digit: at offset 0 every frame is the same
    (bilinear) resampling, so the windows around the true centres agree across the frames of a
    real clip (but where a window reaches past the frame's border); with offsets, the digit's
    intensity centroid moves with them (bilinear sampling reproduces linear functions) and its
    mass stays."""
    from genzoo.data.base import levels_to_model
    from genzoo.nn.sprites import windows

    test = load_dataset("moving-digits?size=16&n=32", "test")
    x = levels_to_model(test.x[:32], 256)
    centre = test.extras["centre"][:32, :, 0]
    still = subpixel_frames(x, centre, 0.0, seed=3)
    win = windows((still + 1) / 2, centre, 9)
    gap = (win - win[:, :1]).abs()  # the same resampling in every frame; the window's zero
    assert gap.mean() < 2e-4 and gap.amax() < 0.05  # padding past the border differs at the walls
    moved = subpixel_frames(x, centre, 0.5, seed=3)
    g = torch.Generator().manual_seed(3)
    offset = (torch.rand(32, 8, 2, generator=g) * 2 - 1) * 0.5
    assert (offset.abs() <= 0.5).all() and (moved - still).abs().amax() > 0.05

    def centroid(clips: torch.Tensor) -> torch.Tensor:  # raw intensities, background included
        v = ((clips + 1) / 2).sum(2)
        xs = torch.arange(16) + 0.5
        return (
            torch.stack([(v.sum(2) * xs).sum(2), (v.sum(3) * xs).sum(2)], -1)
            / v.sum((2, 3))[..., None]
        )

    shift = centroid(moved) - centroid(still)
    fg = ((still + 1) / 2).sum((2, 3, 4)) / ((moved + 1) / 2).sum((2, 3, 4))
    dev = (fg - 1).abs()  # the mass stays, but where the offset pushes the digit past a wall
    assert dev.median() < 1e-3 and dev.amax() < 0.05
    corr = torch.corrcoef(torch.stack([shift.flatten(), offset.flatten()]))[0, 1]
    assert corr > 0.9
