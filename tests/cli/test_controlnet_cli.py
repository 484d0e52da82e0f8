"""`genzoo train controlnet --base RUN --control mask`, `genzoo sample RUN --control cond.png` and
`genzoo finetune RUN --dreambooth imgs/`: the run holds only the ControlNet, a control PNG
round-trips, and bad input (control image size or channels, a base run of the wrong family, an
empty or broken subject folder) is one sentence with nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cli_helpers import one_error, run_cli
from PIL import Image
from safetensors.torch import load_file

from genzoo.data import load_dataset
from genzoo.runs import open_run, train
from genzoo.runs.controlnet import read_control_image, write_control_image

QUIET = {"progress": False, "tensorboard": False, "n_samples": 1, "batch_size": 4}
TINY = {"channels": 8, "text_width": 16, "text_layers": 1, "text_heads": 2, "sample_steps": 2}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cn")
    base = train("t2i-diffusion", "shapes?size=16&n=16", steps=1, out=root / "base",
                 overrides={**TINY, **QUIET})  # fmt: skip
    pca = train("pca", "toy2d:moons", steps=1, out=root / "pca",
                overrides={"latent_dim": 1, "progress": False, "tensorboard": False})  # fmt: skip
    return {"root": root, "base": base, "pca": pca}


def test_controlnet_run_saves_itself_only_and_samples_a_control_png(runs, capsys) -> None:
    root = runs["root"]
    code, _, err = run_cli(capsys, "train", "controlnet", "--base", runs["base"], "--control",
                             "mask", "--steps", "1", "--out", root / "cn",
                             *(f"{k}={v}" for k, v in QUIET.items()))  # fmt: skip
    assert code == 0, err
    ckpt = next((root / "cn" / "checkpoints").glob("step_*"))
    keys = set(load_file(ckpt / "model.safetensors"))
    assert keys and not any(k.startswith("base.") for k in keys)
    assert any(k.startswith("zero_convs.") for k in keys)
    mask = load_dataset("control:mask:shapes?size=16", "test").control[0]  # (1, 16, 16)
    png = write_control_image(mask, root / "mask.png")
    assert torch.equal(read_control_image(png, root / "cn")[0], mask)
    code, _, err = run_cli(capsys, "sample", root / "cn", "--control", png, "--prompt",
                             "a red circle", "--n", "2", "--steps", "1", "--out",
                             root / "s.npy")  # fmt: skip
    assert code == 0, err
    assert open_run(root / "cn").model.config.base_run == str(runs["base"])


def test_bad_control_input_is_one_sentence_and_writes_nothing(runs, capsys) -> None:
    root = runs["root"]
    if not (root / "cn" / "config.yaml").exists():
        pytest.skip("needs the controlnet run of the test above")
    Image.new("RGB", (16, 16)).save(root / "rgb.png")
    Image.new("L", (32, 32)).save(root / "big.png")
    code, _, err = run_cli(capsys, "sample", root / "cn", "--control", root / "rgb.png")
    one_error(code, err, "16x16 with 3 channels", "takes 16x16 images with 1 channel")
    code, _, err = run_cli(capsys, "sample", root / "cn", "--control", root / "big.png")
    one_error(code, err, "32x32 with 1 channel", "takes 16x16 images with 1 channel")
    code, _, err = run_cli(capsys, "sample", runs["base"], "--control", root / "big.png")
    one_error(code, err, "--control needs a controlnet run")
    code, _, err = run_cli(capsys, "train", "controlnet", "--base", runs["pca"], "--steps", "1",
                           "--out", root / "nope")  # fmt: skip
    one_error(code, err, "pixel-space diffusion model", "t2i-diffusion, edm", "'pca' run")
    assert not (root / "nope").exists()


def test_bad_dreambooth_input_is_one_sentence_and_writes_nothing(runs, capsys) -> None:
    root = runs["root"]
    (root / "empty").mkdir()
    broken = root / "broken"
    broken.mkdir()
    Image.new("RGB", (16, 16)).save(broken / "a.png")
    (broken / "b.png").write_text("not an image")
    cases = (
        (runs["base"], root / "empty", ("holds no images", "3-5 images")),
        (runs["base"], broken, ("Cannot read", "b.png")),
        (runs["base"], root / "missing", ("is not a folder",)),
        (runs["pca"], broken, ("t2i-diffusion", "'pca' run")),
    )
    for base, folder, needles in cases:
        code, _, err = run_cli(capsys, "finetune", base, "--dreambooth", folder, "--steps", "1",
                               "--out", root / "db")  # fmt: skip
        one_error(code, err, *needles)
        assert not (root / "db").exists()
