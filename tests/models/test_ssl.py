"""Self-supervised models: their losses' closed forms, MoCo's FIFO queue, the EMA update, the
augmentation presets and kernels, and exact resume through the one Trainer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import functional as TF

import genzoo
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Embeds, Samples
from genzoo.data import dataset_info
from genzoo.models import MODELS
from genzoo.models.ssl.augment import (
    Augment,
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    crop_boxes,
    preset,
)
from genzoo.models.ssl.base import ema_update, momentum_at
from genzoo.models.ssl.dino import dino_loss, teacher_temp_at
from genzoo.models.ssl.simclr import nt_xent
from genzoo.train.checkpoint import find_checkpoint, read_checkpoint

# --- NT-Xent (SimCLR Eq. (1)) ---------------------------------------------------------------


@pytest.mark.parametrize("n,tau", [(4, 0.5), (7, 0.1)])
def test_collapsed_nt_xent_is_log_2n_minus_1(n: int, tau: float) -> None:
    z = torch.randn(1, 16).expand(n, 16)  # every view maps to one vector
    assert float(nt_xent(z, z.clone(), tau)) == pytest.approx(math.log(2 * n - 1), rel=1e-6)


def test_perfect_positives_with_orthogonal_negatives_give_the_exact_value() -> None:
    n, tau = 5, 0.2
    e = torch.eye(8)[:n] * 3.0  # orthogonal (the scale does not matter after normalising)
    want = -1 / tau + math.log(math.exp(1 / tau) + 2 * n - 2)  # positive 1/tau, 2N - 2 zeros
    assert float(nt_xent(e, e.clone(), tau)) == pytest.approx(want, rel=1e-6)


def test_nt_xent_equals_the_papers_sum_written_out() -> None:
    """Eq. (1) term by term in float64 NumPy: l(i, j) = -log exp(s_ij / t) / sum_{k != i} ..., the
    loss is (1 / 2N) sum_k [l(2k-1, 2k) + l(2k, 2k-1)] (Alg. 1) with interleaved views."""
    g = torch.Generator().manual_seed(0)
    z1, z2, tau = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g), 0.3
    views = np.empty((12, 5))
    views[0::2], views[1::2] = z1.double().numpy(), z2.double().numpy()  # 2k-1, 2k adjacent
    u = views / np.linalg.norm(views, axis=1, keepdims=True)

    def ell(i: int, j: int) -> float:
        den = sum(math.exp(u[i] @ u[k] / tau) for k in range(12) if k != i)
        return -math.log(math.exp(u[i] @ u[j] / tau) / den)

    want = sum(ell(2 * k, 2 * k + 1) + ell(2 * k + 1, 2 * k) for k in range(6)) / 12
    assert float(nt_xent(z1, z2, tau)) == pytest.approx(want, rel=1e-5)


# --- DINO (Eq. (3), (4)) --------------------------------------------------------------------


def test_collapsed_dino_loss_is_log_k() -> None:
    """A teacher collapsed to one output, which centring (c = its mean) makes uniform, and a
    uniform student: the cross-entropy is ln K whatever the temperatures."""
    k, b = 32, 6
    t = torch.randn(1, k).expand(b, k)
    center = t.mean(0, keepdim=True)
    student = [torch.full((b, k), 0.7) for _ in range(4)]  # 2 global + 2 local views
    loss = dino_loss(student, [t, t], center, tau_s=0.1, tau_t=0.04)
    assert float(loss) == pytest.approx(math.log(k), rel=1e-6)


def test_dino_loss_skips_same_view_pairs_and_averages_the_rest() -> None:
    k = 5
    g = torch.Generator().manual_seed(1)
    s = [torch.randn(3, k, generator=g) for _ in range(3)]
    t = [torch.randn(3, k, generator=g) for _ in range(2)]
    c = torch.randn(1, k, generator=g)

    def h(ti: torch.Tensor, sj: torch.Tensor) -> torch.Tensor:
        return -(F.softmax((ti - c) / 0.04, -1) * F.log_softmax(sj / 0.1, -1)).sum(-1).mean()

    want = (h(t[0], s[1]) + h(t[0], s[2]) + h(t[1], s[0]) + h(t[1], s[2])) / 4
    assert torch.allclose(dino_loss(s, t, c, 0.1, 0.04), want)


TINY = {"width": 4, "proj_hidden": 8, "proj_dim": 4}
TINY_DINO = {"width": 16, "depth": 1, "heads": 2, "patch": 2, "out_dim": 16, "local_crops": 1}


def _model(name: str, data: str = "digits", **kw):
    cls = MODELS.get(name)
    return cls(cls.config_class.from_dict({**TINY, **kw}), dataset_info(data))


def test_teacher_temperature_warms_up_linearly_then_stays() -> None:
    """DINO's schedule of tau_t: np.linspace(0.04, 0.07, n) for the warm-up, then 0.07."""
    want = np.linspace(0.04, 0.07, 31)[:30]  # the DINO code's warm-up values, one per step
    got = [teacher_temp_at(0.04, 0.07, k, 30) for k in range(30)]
    assert np.allclose(got, np.linspace(0.04, 0.07, 30, endpoint=False))
    assert got[0] == pytest.approx(0.04) and np.allclose(got, want)
    assert teacher_temp_at(0.04, 0.07, 30, 30) == teacher_temp_at(0.04, 0.07, 999, 30) == 0.07
    assert teacher_temp_at(0.04, 0.07, 0, 0) == 0.07  # no warm-up


def test_dino_training_steps_use_the_warm_up_of_the_teacher_temperature_from_step_0() -> None:
    """The k-th training step (from 0) sharpens with tau_t = 0.04 + 0.03 k / 3 for k < 3 and
    0.07 after (the closed form of the linear warm-up), and its loss is Eq. (3) at that tau_t."""
    m = _model("dino", **TINY_DINO, warmup_teacher_temp=0.04, teacher_temp=0.07,
               teacher_temp_steps=3).train()  # fmt: skip
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    want = [0.04, 0.05, 0.06, 0.07, 0.07]
    for k, tau in enumerate(want):
        before = m.center.clone()
        out = m._loss({"x": x}, torch.Generator().manual_seed(k))
        assert float(out.logs["teacher_temp"]) == pytest.approx(tau, abs=1e-7), k
        with torch.no_grad():  # the same views again: Eq. (3) with this step's tau_t
            g = torch.Generator().manual_seed(k)
            glob = torch.cat(m.views(x, g))
            loc = m.augment(x, m.local_size, scale=m.config.local_scale, generator=g)
            student = [*m.head(m.encoder(glob)).chunk(2), m.head(m.encoder(loc))]
            t = m.teacher(glob).chunk(2)
        ref = dino_loss(student, list(t), before, m.config.student_temp, tau)
        torch.testing.assert_close(out.loss.detach(), ref, rtol=1e-5, atol=1e-6)


def test_dino_centre_is_an_ema_of_the_teacher_outputs_with_its_momentum() -> None:
    """Eq. (4): c <- m c + (1 - m) mean_b g_t(x_b) over both global views, at a training step
    only; the teacher outputs are recomputed from the same random views."""
    m = _model("dino", **TINY_DINO, center_momentum=0.9)
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    c0 = torch.randn(1, 16)
    m.center.copy_(c0)
    m.eval()
    m._loss({"x": x}, torch.Generator().manual_seed(3))
    assert torch.equal(m.center, c0)  # no update outside training
    m.train()
    m._loss({"x": x}, torch.Generator().manual_seed(3))  # updates the teacher first, then c
    with torch.no_grad():
        t = m.teacher(torch.cat(m.views(x, torch.Generator().manual_seed(3))))  # (2B, K)
    assert torch.allclose(m.center, 0.9 * c0 + 0.1 * t.mean(0, keepdim=True), atol=1e-6)


def test_dino_last_layer_gets_no_gradient_while_frozen() -> None:
    m = _model("dino", **TINY_DINO, freeze_last_steps=2).train()
    x = {"x": torch.rand(4, 1, 8, 8) * 2 - 1}
    grads = []
    for _ in range(3):
        m.zero_grad(set_to_none=True)
        m.loss(x).loss.backward()
        grads.append(m.head.last.grad)
    assert grads[0] is None and grads[1] is None  # steps 0 and 1: frozen
    assert grads[2] is not None and grads[2].abs().sum() > 0
    assert m.head.mlp[0].weight.grad.abs().sum() > 0  # the rest learns meanwhile


# --- MoCo's queue, the EMA update -----------------------------------------------------------


def test_moco_queue_is_exactly_fifo() -> None:
    m = _model("moco", queue_size=5)
    keys = torch.arange(9 * 4, dtype=torch.float32).view(9, 4)  # 9 keys, written in batches
    for part in (keys[:2], keys[2:4], keys[4:7], keys[7:9]):
        m.enqueue(part)
    ptr = int(m.queue_ptr)
    assert ptr == 9 % 5
    assert torch.equal(m.queue.roll(-ptr, dims=0), keys[-5:])  # oldest first: the last 5 keys
    m.enqueue(keys[:7])  # a batch longer than the queue keeps its newest 5 keys
    assert torch.equal(m.queue.roll(-int(m.queue_ptr), dims=0), keys[2:7])


def test_moco_loss_enqueues_its_keys_only_when_training() -> None:
    m = _model("moco", queue_size=8)
    batch = {"x": torch.rand(3, 1, 8, 8) * 2 - 1}
    before = m.queue.clone()
    m.eval()
    m.loss(batch)
    assert torch.equal(m.queue, before) and int(m.queue_ptr) == 0
    m.train()
    m.loss(batch)
    assert int(m.queue_ptr) == 3 and torch.equal(m.queue[3:], before[3:])
    assert torch.allclose(m.queue[:3].norm(dim=1), torch.ones(3))  # unit keys written


def test_ema_with_m0_copies_and_m1_freezes() -> None:
    def net() -> nn.Module:
        return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))

    online, target = net(), net()
    online(torch.randn(8, 3))  # moves the running statistics and the batch counter
    frozen = {k: v.clone() for k, v in target.state_dict().items()}
    ema_update(target, online, 1.0)
    assert all(torch.equal(v, frozen[k]) for k, v in target.state_dict().items())
    ema_update(target, online, 0.0)
    assert all(torch.equal(v, online.state_dict()[k]) for k, v in target.state_dict().items())


def test_ema_mixes_with_the_papers_weights() -> None:
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    want = 0.9 * a.weight.detach() + 0.1 * b.weight.detach()
    ema_update(a, b, 0.9)
    assert torch.allclose(a.weight, want)
    assert momentum_at(0.99, 0, 100) == pytest.approx(0.99)
    assert momentum_at(0.99, 50, 100) == pytest.approx(0.995)
    assert momentum_at(0.99, 100, 100) == pytest.approx(1.0)


# --- augmentations --------------------------------------------------------------------------


def test_augmentation_presets_follow_the_data() -> None:
    assert preset(dataset_info("mnist5k")).flip is False  # no mirrored digits
    assert preset(dataset_info("digits")).color_jitter == 0
    shapes = preset(dataset_info("shapes"))
    assert shapes.color_jitter == 0 and shapes.grayscale_p == 0  # colour is the label
    with pytest.raises(ConfigError, match=r"color_jitter = 0.4 needs colour images.*'mnist5k'"):
        preset(dataset_info("mnist5k"), color_jitter=0.4)
    with pytest.raises(ConfigError, match="color_jitter"):
        _model("simclr", "digits", color_jitter=0.5)
    with pytest.raises(ConfigError, match="image dataset"):
        preset(dataset_info("toy2d:moons"))


def test_shapes_views_keep_every_pixels_hue_and_saturation() -> None:
    """The shapes preset is label-preserving for colour: an object on black, cropped, resized
    (bilinear blends with black scale the colour) and darkened keeps the hue and saturation of
    its colour in every lit pixel (matplotlib's HSV, an independent implementation), while its
    brightness changes; SimCLR's colour jitter, as a control, does change the hue."""
    from matplotlib.colors import rgb_to_hsv

    from genzoo.data import load_dataset

    data = load_dataset("shapes?objects=1&n=64", "train")
    x = data.get(torch.arange(16))["x"]  # (16, 3, 32, 32) in [-1, 1]
    info = dataset_info("shapes")

    def hs(img: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hsv = rgb_to_hsv(((img + 1) / 2).clamp(0, 1).permute(1, 2, 0).double().numpy())
        lit = hsv[..., 2] > 0.25  # object pixels (the background is black)
        return hsv[..., 0][lit], hsv[..., 1][lit], hsv[..., 2][lit]

    def worst(spec) -> tuple[float, float]:
        v = Augment(spec)(x, generator=torch.Generator().manual_seed(0))
        dh = ds = 0.0
        darker = []
        for a, b in zip(x, v, strict=True):
            h0, s0, v0 = hs(a)
            h1, s1, v1 = hs(b)
            if len(h1) == 0:  # the crop missed the object
                continue
            hue = np.median(h0)
            dh = max(dh, np.abs((h1 - hue + 0.5) % 1 - 0.5).max())
            ds = max(ds, np.abs(s1 - np.median(s0)).max())
            darker.append(np.median(v1) / np.median(v0))
        assert len(darker) >= 8
        return dh, ds, float(np.min(darker))

    dh, ds, darkest = worst(preset(info))
    assert dh < 0.02 and ds < 0.05  # the colour name cannot change
    assert darkest < 0.9  # and the brightness did change
    dh_jit, _, _ = worst(preset(info, color_jitter=0.5, darken=0))
    assert dh_jit > 0.05
    with pytest.raises(ConfigError, match=r"grayscale = 0.2 needs colour images.*'mnist5k'"):
        preset(dataset_info("mnist5k"), grayscale=0.2)


def test_grey_one_view_greys_only_the_first_view_of_each_pair() -> None:
    """``grey_one_view``: with ``grayscale=1`` every first view is grey (R = G = B, torchvision's
    weights) and no second view is, so each grey view is paired with a coloured one; without
    it both views are grey."""
    from genzoo.data import load_dataset

    x = load_dataset("shapes?objects=1&n=64", "train").get(torch.arange(16))["x"]

    def grey(v: torch.Tensor) -> torch.Tensor:  # (B,): is every pixel of the view grey
        return (v - v.mean(dim=1, keepdim=True)).abs().amax(dim=(1, 2, 3)) < 1e-5

    g = torch.Generator().manual_seed(0)
    v1, v2 = _model("simclr", "shapes", grayscale=1.0, grey_one_view=True).views(x, g)
    assert grey(v1).all() and not grey(v2).any()
    v1, v2 = _model("simclr", "shapes", grayscale=1.0).views(x, g)
    assert grey(v1).all() and grey(v2).all()


def test_a_small_colour_jitter_keeps_the_colour_name_of_every_shapes_pixel() -> None:
    """``color_jitter=0.1`` on shapes (hue turned by at most 0.02, the per-image RGB noise of an
    object spreads its hue by about 0.01): every lit, saturated pixel of every view stays
    nearest in hue (matplotlib's HSV) to its object's named colour, so the colour label is
    kept; the control, strength 0.5, moves pixels to another colour's name."""
    from matplotlib.colors import rgb_to_hsv

    from genzoo.data import load_dataset
    from genzoo.data.shapes import COLOURS

    data = load_dataset("shapes?objects=1&n=128", "train")
    x = data.get(torch.arange(128))["x"]
    colour = data.attrs[:128, 0, 1].numpy()
    named = rgb_to_hsv(np.array(list(COLOURS.values()), dtype=float) / 255)[:, 0]  # (6,) hues

    def renamed(strength: float) -> int:
        spec = preset(dataset_info("shapes"), color_jitter=strength)
        v = Augment(spec)(x, generator=torch.Generator().manual_seed(0))
        hsv = rgb_to_hsv(((v + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).double().numpy())
        lit = (hsv[..., 2] > 0.25) & (hsv[..., 1] > 0.3)  # object pixels, not grey edges
        dist = np.abs((hsv[..., 0][..., None] - named + 0.5) % 1 - 0.5)  # (B, H, W, 6)
        wrong = (dist.argmin(-1) != colour[:, None, None]) & lit
        assert lit.sum() > 5000
        return int(wrong.sum())

    assert renamed(0.1) == 0
    assert renamed(0.5) > 100


def test_per_example_jitter_equals_torchvision_image_by_image() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 6, 6, generator=g)
    f = torch.tensor([0.5, 0.9, 1.2, 1.6])
    for ours, theirs in [
        (adjust_brightness, TF.adjust_brightness),
        (adjust_contrast, TF.adjust_contrast),
        (adjust_saturation, TF.adjust_saturation),
    ]:
        got = ours(x, f)
        for i in range(4):
            assert torch.allclose(got[i], theirs(x[i], float(f[i])), atol=1e-6), ours.__name__


def test_crops_stay_inside_with_the_stated_area_and_views_differ_per_image() -> None:
    g = torch.Generator().manual_seed(0)
    boxes = crop_boxes(2000, 28, 28, (0.3, 1.0), g, "cpu")
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 28 + 1e-4).all()
    assert (boxes[:, 3] <= 28 + 1e-4).all()
    area = w * h / 28**2
    assert area.max() <= 1 + 1e-5 and area.min() >= 0.3 * 0.75  # clamped boxes lose <= 1/4
    aug = Augment(preset(dataset_info("shapes")))
    x = torch.rand(1, 3, 16, 16).expand(6, 3, 16, 16) * 2 - 1  # one image, six times
    v = aug(x, generator=torch.Generator().manual_seed(1))
    assert v.shape == x.shape and v.min() >= -1 - 1e-5 and v.max() <= 1 + 1e-5
    assert len({tuple(r.flatten()[:20].tolist()) for r in v}) == 6  # a different view each


# --- the contract and exact resume ----------------------------------------------------------


def test_pooled_stages_concatenate_the_last_stages_as_forward_hooks_see_them() -> None:
    """``embed(x, stages=k)``: the mean-pooled outputs of the ResNet's last ``k`` stages (each
    stage ends with its residual block; the last after the final norm), caught here with
    forward hooks on the modules themselves; ``stages=1`` is the default embedding."""
    from genzoo.nn.encoders import _ResBlock

    model = _model("simclr", "shapes").eval()
    body = model.encoder.net.body
    seen: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: seen.append(o)) for m in body
             if isinstance(m, _ResBlock)]  # fmt: skip
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        last = body(x)  # runs the hooks: one map per stage, finest first
        for h in hooks:
            h.remove()
        two, three = model.embed(x, stages=2), model.embed(x, stages=3)
    assert len(seen) == 3  # 32 -> 16 -> 8 -> 4
    want2 = torch.cat([seen[1].mean(dim=(2, 3)), last.mean(dim=(2, 3))], dim=1)
    torch.testing.assert_close(two, want2)
    torch.testing.assert_close(three[:, : seen[0].shape[1]], seen[0].mean(dim=(2, 3)))
    torch.testing.assert_close(model.embed(x, stages=1), model.embed(x))
    torch.testing.assert_close(two[:, -model.encoder.out_dim :], model.embed(x))
    with pytest.raises(ConfigError, match="stages = 4 must be between 1 and"):
        model.embed(x, stages=4)
    vit = _model("dino", "shapes", patch=8, width=16, heads=2, depth=1)
    with pytest.raises(ConfigError, match="need backbone=resnet"):
        vit.embed(x, stages=2)


def test_ssl_models_embed_and_do_not_sample() -> None:
    for name in ("simclr", "moco", "byol", "dino"):
        cls = MODELS.get(name)
        assert issubclass(cls, Embeds) and not issubclass(cls, Samples)
        assert cls.family == "ssl"


RESUME = {
    "simclr": {},
    "moco": {"queue_size": 20},
    "byol": {"momentum_steps": 10},
    "dino": {
        "width": 16,
        "depth": 1,
        "heads": 2,
        "patch": 2,
        "out_dim": 16,
        "local_crops": 1,
        "momentum_steps": 10,
    },
}


@pytest.mark.parametrize("name", sorted(RESUME))
def test_resume_equals_an_uninterrupted_run(tmp_path, fast_train, name: str) -> None:
    """Targets, queue, centre and step counter are in the checkpoint: 3 + 3 steps == 6 steps."""
    over = {**fast_train, **TINY, **RESUME[name], "batch_size": 8, "log_every": 3}
    straight = genzoo.train(name, "digits", steps=6, out=tmp_path / "a", overrides=over)
    half = genzoo.train(name, "digits", steps=3, out=tmp_path / "b", overrides=over)
    genzoo.train(resume=half, steps=6, overrides=fast_train)
    fa, sa = read_checkpoint(find_checkpoint(straight))
    fb, sb = read_checkpoint(find_checkpoint(half))
    assert sa["step"] == sb["step"] == 6
    assert set(fa["model"]) == set(fb["model"])
    for k, v in fa["model"].items():
        assert torch.equal(v, fb["model"][k]), k
    assert int(fa["model"]["updates"]) == 6
    m = fa["model"]  # the method's own state moved, and so was compared above
    if name == "moco":
        assert int(m["queue_ptr"]) == 6 * 8 % 20
    if name == "byol":
        assert not torch.equal(m["target.0.net.body.0.weight"], m["encoder.net.body.0.weight"])
    if name == "dino":
        assert m["center"].abs().sum() > 0


def test_vit_is_bidirectional_and_takes_any_grid() -> None:
    from genzoo.nn.vit import ViT

    torch.manual_seed(0)
    vit = ViT(1, patch=2, width=16, depth=1, heads=2)
    x = torch.randn(2, 1, 8, 8)
    y = vit(x)
    assert y.shape == (2, 16) and vit(torch.randn(2, 1, 4, 4)).shape == (2, 16)  # local crops
    x2 = x.clone()
    x2[..., -2:, -2:] += 1.0  # the last patch: [CLS], the first token, sees it
    assert not torch.allclose(vit(x2), y)
    with pytest.raises(ConfigError, match="patch = 3 must divide the image side 8"):
        _model("dino", patch=3, width=16)
