"""video-mocogan (MoCoGAN, arXiv:1707.04993): the content code is one per clip and the motion
path one per frame (Eq. 1), the motion path is causal (a GRU over per-frame noise), D_I judges
frames one at a time and D_V whole clips in order, bad settings are one sentence, and the model
round-trips through a safetensors checkpoint."""

from __future__ import annotations

import pytest
import torch

from genzoo.core.errors import ConfigError
from genzoo.core.io import load_state_strict, load_tensors, save_tensors
from genzoo.data import dataset_info
from genzoo.models import MODELS

SPEC = "moving-digits?size=16&n=32"


def _model(**cfg):
    cls = MODELS.get("video-mocogan")
    config = cls.config_class.from_dict({"width": 8, "content_dim": 6, "motion_dim": 4, **cfg})
    torch.manual_seed(0)
    return cls(config, dataset_info(SPEC)).eval()


def test_the_content_code_is_shared_by_the_frames_of_a_clip() -> None:
    """Eq. (1): with the motion code held still, every frame is the same image ``G_I([z_C,
    z_M])``; another z_C gives another clip, another motion path moves the frames."""
    model = _model()
    g = torch.Generator().manual_seed(1)
    z_c = torch.randn(3, 6, generator=g)
    still = torch.randn(3, 1, 4, generator=g).expand(3, 8, 4)
    with torch.no_grad():
        clip = model.generate(z_c, still)
        assert clip.shape == (3, 8, 1, 16, 16)
        assert torch.allclose(clip, clip[:, :1].expand_as(clip), atol=1e-6)
        # each frame is G_I of its own code, the clip's content code beside the frame's motion
        one = model.image_generator(torch.cat([z_c[1:2], still[1:2, 0]], 1))
        assert torch.allclose(clip[1, 0], one[0], atol=1e-6)
        other = model.generate(z_c.roll(1, 0), still)  # another content code per clip
        assert (other - clip).abs().flatten(1).amax(1).min() > 1e-3
        moving = model(z_c, *model.noise(3)[1:])  # the GRU's motion path: frames differ
        assert (moving[:, 1:] - moving[:, :1]).abs().flatten(2).amax(2).min() > 1e-4


def test_the_motion_path_is_causal() -> None:
    """z_M^(t) = GRU(eps^(t), h^(t-1)): changing eps at frame t changes frames t.. only."""
    model = _model()
    g = torch.Generator().manual_seed(2)
    z_c, eps, h0 = model.noise(2, g)
    with torch.no_grad():
        base = model(z_c, eps, h0)
        for t in (0, 3, 7):
            eps2 = eps.clone()
            eps2[:, t] += 1.0
            out = model(z_c, eps2, h0)
            assert torch.equal(out[:, :t], base[:, :t])  # the past, bit for bit
            assert (out[:, t:] - base[:, t:]).abs().flatten(2).amax(2).min() > 1e-5
        # the GRU's states themselves: one step per frame, against a hand loop
        h, states = h0, []
        for t in range(8):
            h = model.motion.cell(eps[:, t], h)
            states.append(h)
        assert torch.allclose(model.motion(eps, h0), torch.stack(states, 1))


def test_the_image_discriminator_is_per_frame_and_the_video_discriminator_sees_order() -> None:
    model = _model()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 8, 1, 16, 16, generator=g) * 2 - 1
    perm = torch.randperm(8, generator=g)
    every = torch.arange(8)[None].expand(3, 8)
    with torch.no_grad():
        s = model._image_scores(x, every)  # (3, 8): frame t of clip i at [i, t]
        assert torch.allclose(model._image_scores(x[:, perm], every), s[:, perm], atol=1e-6)
        # one frame at a time: a frame's score is D_I of that frame alone
        assert torch.allclose(s[1, 5], model.image_discriminator(x[1, 5:6])[0], atol=1e-6)
        v = model.video_discriminator(x)
        assert not torch.allclose(model.video_discriminator(x.flip(1)), v, atol=1e-5)
        y = x.clone()
        y[1] = torch.rand(8, 1, 16, 16, generator=g) * 2 - 1  # another clip 1 only
        w = model.video_discriminator(y)
        assert torch.allclose(w[[0, 2]], v[[0, 2]], atol=1e-6) and abs(w[1] - v[1]) > 1e-6


def test_the_players_and_their_losses() -> None:
    """D then G, disjoint parameters; G's step leaves D's weights without gradient."""
    model = _model(image_frames=3).train()
    groups = model.param_groups()
    assert list(groups) == ["d", "g"]
    d_ids, g_ids = {id(p) for p in groups["d"]}, {id(p) for p in groups["g"]}
    assert not d_ids & g_ids
    assert d_ids | g_ids == {id(p) for p in model.parameters()}
    x = torch.rand(4, 8, 1, 16, 16) * 2 - 1
    out = model.loss({"x": x}, "g")
    out.loss.backward()
    assert all(p.grad is None for p in groups["d"])
    assert all(p.grad is not None for p in model.motion.parameters())
    d = model.loss({"x": x}, "d")
    assert torch.isclose(d.loss, torch.as_tensor(d.logs["d_image"] + d.logs["d_video"]))


def test_bad_settings_are_one_sentence() -> None:
    cls = MODELS.get("video-mocogan")
    with pytest.raises(ConfigError, match="multiples of 4"):
        cls(cls.config_class(), dataset_info("moving-digits?size=16&frames=6"))
    with pytest.raises(ConfigError, match="video data"):
        cls(cls.config_class(), dataset_info("digits"))
    with pytest.raises(ConfigError, match="image_frames = 9"):
        cls(cls.config_class.from_dict({"image_frames": 9}), dataset_info(SPEC))
    with pytest.raises(ConfigError, match="content_dim"):
        cls.config_class.from_dict({"content_dim": 0})
    with pytest.raises(ConfigError, match="unconditional"):
        _model().sample(2, steps=3)


@pytest.mark.parametrize("sn", [False, True])
def test_a_safetensors_checkpoint_round_trips(tmp_path, sn: bool) -> None:
    model = _model(spectral_norm=sn)
    with torch.no_grad():  # move the batch-norm statistics off their initial values
        model.train()
        model.sample(4)
        model.eval()
    path = tmp_path / "model.safetensors"
    save_tensors(path, model.state_dict())
    again = _model(spectral_norm=sn)
    load_state_strict(again, load_tensors(path), str(path))
    again.eval()
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(model.sample(3, generator=g1), again.sample(3, generator=g2))
    x = torch.rand(2, 8, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.video_discriminator(x), again.video_discriminator(x))
