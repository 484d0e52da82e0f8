"""Tests of latent interpolation: slerp and lerp, end frames equal to each model's reconstruction,
the `genzoo interpolate` command, and the one-sentence error for models without a latent space."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

import genzoo
from genzoo.cli import main
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import ClosedForm, GenerativeModel, LatentSpace
from genzoo.data.base import DataInfo
from genzoo.models import MODELS
from genzoo.models.latent import interpolate_latents, latent_models, lerp, slerp

IMAGES = DataInfo("img", "images", (1, 8, 8), levels=17)
POINTS = DataInfo("pts", "points", (4,))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_slerp_and_lerp_paths() -> None:
    a = torch.randn(3, 2, 5, generator=gen(0))
    b = torch.randn(3, 2, 5, generator=gen(1))
    t = torch.linspace(0, 1, 7)
    for fn in (slerp, lerp):
        path = fn(a, b, t)
        assert path.shape == (3, 7, 2, 5)
        assert torch.equal(path[:, 0], a) and torch.equal(path[:, -1], b)  # exact end points
    torch.testing.assert_close(lerp(a, b, t)[:, 3], (a + b) / 2)
    # slerp between vectors of one norm stays on the sphere and moves at a constant angle
    u = a.flatten(1) / a.flatten(1).norm(dim=1, keepdim=True) * 3.0
    v = b.flatten(1) / b.flatten(1).norm(dim=1, keepdim=True) * 3.0
    path = slerp(u, v, t)  # (3, 7, 10)
    torch.testing.assert_close(path.norm(dim=-1), torch.full((3, 7), 3.0))
    cos = (path[:, 1:] * path[:, :-1]).sum(-1) / 9.0
    torch.testing.assert_close(cos, cos[:, :1].expand_as(cos), atol=1e-5, rtol=0)
    e1, e2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    mid = slerp(e1, e2, torch.tensor([0.5]))[0, 0]
    torch.testing.assert_close(mid, torch.tensor([1.0, 1.0]) / math.sqrt(2))
    same = slerp(e1, e1 * 2, torch.tensor([0.0, 0.5, 1.0]))  # parallel: falls back to lerp
    torch.testing.assert_close(same[0], torch.tensor([[1.0, 0.0], [1.5, 0.0], [2.0, 0.0]]))


def build(name: str, info: DataInfo) -> GenerativeModel:
    cls = MODELS.get(name)
    small = {
        "vae": {"latent_dim": 3, "hidden": [16], "channels": [8]},
        "ae": {"latent_dim": 3, "hidden": [16], "channels": [8]},
        "dae": {"latent_dim": 3, "hidden": [16], "channels": [8]},
        "vqvae": {"codebook_size": 8, "code_dim": 2, "width": 8, "hidden": [16]},
        "pca": {"latent_dim": 2},
        "ppca": {"latent_dim": 2},
        "nice": {"couplings": 4, "hidden": [16], "channels": 8, "blocks": 1},
        "realnvp": {"couplings": 2, "hidden": [16], "channels": 8, "blocks": 1, "scales": 1},
        "glow": {"steps": 2, "hidden": [16], "channels": 8, "blocks": 1, "levels": 1},
    }[name]
    torch.manual_seed(0)
    cfg = cls.config_class.from_dict(
        {k: v for k, v in small.items() if k in cls.config_class.field_names()}
    )
    model = cls(cfg, info).eval()
    if isinstance(model, ClosedForm):
        x = torch.rand(200, *info.shape, generator=gen(7)) * 2 - 1
        model.fit_data([x * torch.linspace(0.2, 1.0, info.dim).view(1, *info.shape)])
    return model


@pytest.mark.parametrize("info", [POINTS, IMAGES], ids=["points", "images"])
@pytest.mark.parametrize(
    "name", ["vae", "ae", "dae", "vqvae", "pca", "ppca", "nice", "realnvp", "glow"]
)
def test_end_frames_are_the_reconstructions_of_the_inputs(name: str, info: DataInfo) -> None:
    model = build(name, info)
    x = torch.rand(6, *info.shape, generator=gen(1)) * 1.6 - 0.8
    x_a, x_b = x[:3], x[3:]
    frames = interpolate_latents(model, x_a, x_b, steps=5)
    assert frames.shape == (3, 5, *info.shape)
    with torch.no_grad():  # images are clipped to their range, like samples
        lo, hi = (-1.0, 1.0) if info.kind == "images" else (-math.inf, math.inf)
        rec_a = model.decode_latent(model.encode_latent(x_a)).clamp(lo, hi)
        rec_b = model.decode_latent(model.encode_latent(x_b)).clamp(lo, hi)
    torch.testing.assert_close(frames[:, 0], rec_a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(frames[:, -1], rec_b, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        if model.family == "flows":  # a bijection: the reconstruction is the input itself
            torch.testing.assert_close(frames[:, 0], x_a, atol=1e-4, rtol=0)
        else:  # the model's own reconstruction path
            rec = model(x_b).float().clamp(lo, hi)
            torch.testing.assert_close(frames[:, -1], rec, atol=1e-5, rtol=1e-5)
    # the path moves between the two: inner frames differ from both ends
    assert not torch.allclose(frames[:, 2], frames[:, 0]) or name == "vqvae"


def test_every_model_with_a_latent_space_is_covered() -> None:
    covered = {"vae", "ae", "dae", "vqvae", "pca", "ppca", "nice", "realnvp", "glow"}
    assert covered <= set(latent_models())
    assert MODELS.get("vae").latent_prior == "gaussian" and MODELS.get("ae").latent_prior == (
        "euclidean"
    )
    for name in ("ddpm", "gan", "pixelcnn", "gpt"):
        assert not issubclass(MODELS.get(name), LatentSpace) and name not in latent_models()


def test_cli_interpolate_writes_a_grid_whose_ends_are_reconstructions(tmp_path, capsys) -> None:
    run = tmp_path / "ppca"
    assert main(["train", "ppca", "--data", "digits", "--steps", "1", "--out", str(run),
                 "progress=false", "tensorboard=false", "latent_dim=8"]) == 0  # fmt: skip
    out = tmp_path / "interp.png"
    assert main(["interpolate", str(run), "--n", "3", "--steps", "6", "--out", str(out)]) == 0
    assert "3 interpolations" in capsys.readouterr().out
    img = Image.open(out)
    assert img.size[0] > img.size[1]  # 3 rows of 8 columns (input, 6 frames, input)
    bad = tmp_path / "interp.jpeg"  # not a PNG: one sentence before the run is read
    assert main(["interpolate", str(run), "--out", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "must end in .png" in err and not bad.exists()
    grid = genzoo.interpolate(run, n=3, steps=6)
    assert grid.shape == (3, 8, 1, 8, 8)
    model = genzoo.load(run)
    with torch.no_grad():  # the frames are clipped to the image range, like samples
        rec_a, rec_b = model(grid[:, 0]).clamp(-1, 1), model(grid[:, -1]).clamp(-1, 1)
    torch.testing.assert_close(grid[:, 1], rec_a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grid[:, -2], rec_b, atol=1e-5, rtol=1e-5)


def test_model_without_latent_space_is_one_clear_sentence(tmp_path, capsys) -> None:
    run = tmp_path / "gan"
    genzoo.train("gan", "toy2d:moons", steps=1, out=run,
                 overrides={"progress": False, "tensorboard": False})  # fmt: skip
    capsys.readouterr()
    assert main(["interpolate", str(run), "--out", str(tmp_path / "i.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "'gan' has no latent space to interpolate in" in err and "'vae'" in err
    assert not (tmp_path / "i.png").exists()
    with pytest.raises(ConfigError, match="steps = 1"):
        interpolate_latents(build("ae", POINTS), torch.zeros(1, 4), torch.ones(1, 4), steps=1)
