"""`genzoo sample RUN --out clip.gif` on a video run: an animation with one frame per clip frame,
read back by imageio (an independent reader) equal to the samples; a grid of frames as .png; and
one sentence for an --out, a clip length or a frame size the run cannot give."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from cli_helpers import one_error, run_cli

from genzoo.data import dataset_info
from genzoo.viz import video_frames, video_grid

SPEC = "moving-digits?size=16&n=16"


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("video") / "run"
    from genzoo.cli import main

    code = main(
        [
            "train",
            "video-diffusion",
            "--data",
            SPEC,
            "--steps",
            "1",
            "--out",
            str(run),
            "channels=4",
            "channel_mult=[1]",
            "batch_size=2",
            "n_samples=2",
            "progress=false",
            "tensorboard=false",
        ]
    )
    assert code == 0
    return run


def test_gif_holds_every_frame_of_the_samples(capsys, tmp_path, video_run):
    iio = pytest.importorskip("imageio.v3")
    gif, raw, grid = tmp_path / "clip.gif", tmp_path / "clip.npy", tmp_path / "grid.png"
    for out in (gif, raw, grid):
        code, text, _ = run_cli(capsys, "sample", video_run, "--n", 3, "--steps", 1, "--out", out)
        assert code == 0 and str(out) in text
    x = np.load(raw)  # (3, 8, 1, 16, 16): the same seed, the same clips
    assert x.shape == (3, 8, 1, 16, 16)
    import torch

    info = dataset_info(SPEC)
    want = video_frames(torch.from_numpy(x), info, scale=256 // 35)  # (T, H', W', 3)
    got = iio.imread(gif, index=None)  # every frame
    assert got.shape[0] == 8 and got.shape[1:3] == want.shape[1:3]
    assert np.array_equal(got[..., :3], want)  # grey levels survive the GIF palette exactly
    png = iio.imread(grid)
    rows = video_grid(torch.from_numpy(x), info)  # one row per clip, one column per frame
    scale = max(1, 512 // rows.shape[0])
    assert png.shape[:2] == (rows.shape[0] * scale, rows.shape[1] * scale)


@pytest.mark.parametrize(
    "out,extra,needles",
    [
        ("clip.jpg", [], ["--out", ".gif or .mp4", ".npy"]),
        ("clip.wav", [], [".gif or .mp4"]),
        ("clip.gif", ["frames=16"], ["frames=16", "clips of 8 frames"]),
        ("clip.gif", ["size=32"], ["size=32", "16 x 16 frames"]),
    ],
)
def test_bad_out_length_or_size_is_one_sentence(capsys, tmp_path, video_run, out, extra, needles):
    code, _, err = run_cli(capsys, "sample", video_run, "--out", tmp_path / out, "--n", 1, *extra)
    one_error(code, err, *needles)


def test_mp4_without_a_writer_is_one_sentence(capsys, tmp_path, video_run):
    if importlib.util.find_spec("av") or importlib.util.find_spec("imageio_ffmpeg"):
        pytest.skip("an MP4 writer is installed here")
    code, _, err = run_cli(capsys, "sample", video_run, "--out", tmp_path / "c.mp4", "--n", 1)
    one_error(code, err, "MP4", "pip install imageio av", ".gif")


def test_an_animation_of_an_image_run_is_one_sentence(capsys, tmp_path):
    from pathlib import Path

    run = Path(__file__).parents[1] / "fixtures" / "old_runs" / "realnvp"
    code, _, err = run_cli(capsys, "sample", run, "--out", tmp_path / "c.gif", "--n", 1)
    one_error(code, err, "an animation needs a video run")
