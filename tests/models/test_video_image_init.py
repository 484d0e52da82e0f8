"""video-diffusion started from an image model (``image_run``; Make-A-Video arXiv:2209.14792,
Video LDM arXiv:2304.08818, AnimateDiff arXiv:2307.04725): after loading a trained ``edm``'s
U-Net into the spatial layers, the video denoiser is the image denoiser on every frame (the
temporal layers at their identity initialisation, no known frame), and so are its samples; a
U-Net of other settings is one sentence naming the key and the shapes; ``freeze_spatial`` leaves
the image layers without gradient. ``frames:<video spec>`` is the video set's frames as images."""

from __future__ import annotations

import pytest
import torch

from genzoo.core.errors import ConfigError, DataError
from genzoo.data import dataset_info, load_dataset
from genzoo.models import MODELS
from genzoo.runs.build import build

SPEC = "moving-digits?size=16&n=32"
FRAMES = f"frames:{SPEC}"


def _image(**cfg) -> torch.nn.Module:
    """An ``edm`` on the frames with non-trivial weights (a random perturbation of every one)."""
    cls = MODELS.get("edm")
    torch.manual_seed(0)
    model = cls(
        cls.config_class.from_dict({"channels": 8, "channel_mult": [1, 2], **cfg}),
        dataset_info(FRAMES),
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def _video(image: torch.nn.Module, **cfg) -> torch.nn.Module:
    cls = MODELS.get("video-diffusion")
    config = cls.config_class.from_dict(
        {"channels": 8, "channel_mult": [1, 2], "image_run": "IMAGE_RUN", **cfg}
    )
    torch.manual_seed(1)
    return build(cls, config, dataset_info(SPEC), lambda run, ema: image).eval()


def test_frames_are_the_clips_frames_as_labelled_images() -> None:
    clips, frames = load_dataset(SPEC), load_dataset(FRAMES)  # the train split: 32 clips
    assert clips.x is not None and frames.x is not None and frames.y is not None
    info = dataset_info(FRAMES)
    assert info.kind == "images" and info.shape == (1, 16, 16) and info.n_classes == 10
    n, t = clips.x.shape[:2]
    assert frames.x.shape == (n * t, 1, 16, 16)
    for i, k in [(0, 0), (3, 5), (n - 1, t - 1)]:  # image i * T + t is frame t of clip i
        assert torch.equal(frames.x[i * t + k], clips.x[i, k])
        assert frames.y[i * t + k] == clips.y[i]
    with pytest.raises(DataError, match="'frames:' takes a video set"):
        dataset_info("frames:mnist5k")


@torch.no_grad()
def test_initialised_from_an_image_run_the_video_denoiser_is_the_image_denoiser() -> None:
    image = _image()
    video = _video(image)
    x = torch.randn(3, 8, 1, 16, 16)
    sigma = torch.tensor([0.05, 0.7, 12.0])
    want = image.denoise(x.flatten(0, 1), sigma.repeat_interleave(8)).view_as(x)
    torch.testing.assert_close(video.denoise(x, sigma), want, rtol=0, atol=1e-6)
    # the same initial noise drawn as 2 clips of 8 frames or as 16 frames: the same samples
    got = video.sample(2, generator=torch.Generator().manual_seed(5), sampler="euler", steps=3)
    ref = image.sample(16, generator=torch.Generator().manual_seed(5), sampler="euler", steps=3)
    torch.testing.assert_close(got, ref.view_as(got), rtol=0, atol=1e-5)
    # and it could fail: temporal layers away from the identity change it
    for p in video.net.temporal.parameters():
        p.normal_(0, 0.2)
    assert not torch.allclose(video.denoise(x, sigma), want, atol=1e-3)


@pytest.mark.parametrize(
    ("image_cfg", "match"),
    [
        ({"channels": 4}, r"'[\w.]+' has shape \(4,.*\) in the image run's U-Net and \(8,"),
        ({"channel_mult": [1, 2, 2]}, r"key '[\w.]+' is missing from this video U-Net"),
        ({"class_conditional": True}, r"key 'class_emb\.[\w.]+' is missing from this video"),
        ({"sigma_data": 1.0}, "sigma_data = 1.0"),
    ],
)
def test_an_image_run_of_other_settings_is_one_sentence(image_cfg: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _video(_image(**image_cfg))


def test_an_image_run_of_another_size_or_model_is_one_sentence() -> None:
    cls = MODELS.get("edm")
    small = cls(cls.config_class.from_dict({"channels": 8}), dataset_info("digits"))
    with pytest.raises(ConfigError, match=r"images of shape \(1, 8, 8\); this video's frames"):
        _video(small)
    # a video-diffusion run starts the whole model (fine-tuning) if its settings are the same
    with pytest.raises(ConfigError, match=r"\(a video-diffusion run\) does not fit"):
        _video(_video(_image()), channel_mult=[1, 2, 2])
    vid = MODELS.get("video-diffusion")  # the image run's frames given as the video's data
    with pytest.raises(ConfigError, match=r"give the clips: --data 'moving-digits\?size=16&n=32'"):
        vid(vid.config_class.from_dict({"channels": 8}), dataset_info(FRAMES))
    with pytest.raises(ConfigError, match=r"freeze_spatial = true .* give the image run"):
        MODELS.get("video-diffusion").config_class.from_dict({"freeze_spatial": True})


def test_freeze_spatial_trains_only_the_temporal_layers_and_the_input_convolution() -> None:
    video = _video(_image(), freeze_spatial=True).train()
    x0 = load_dataset(SPEC).get(torch.arange(4))["x"]
    video.loss({"x": x0}).loss.backward()
    for name, p in video.net.spatial.named_parameters():
        assert (p.grad is not None) == name.startswith("conv_in."), name
    assert all(p.grad is not None for p in video.net.temporal.parameters())
