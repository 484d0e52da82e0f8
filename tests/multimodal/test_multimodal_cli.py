"""genzoo zeroshot / retrieve / caption: the CLI prints what the library computes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("tokenizers")

from genzoo.cli import main
from genzoo.core.errors import ConfigError
from genzoo.data import load_dataset
from genzoo.data.base import model_to_levels
from genzoo.runs.multimodal import caption, retrieve, zeroshot

DATA = "shapes?size=16&n=200"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mm")
    common = ["--steps", "4", "progress=false", "tensorboard=false", "batch_size=16", "width=8"]
    assert main(["train", "clip", "--data", DATA, "--out", str(root / "clip"), *common,
                 "text_width=32", "text_layers=1"]) == 0  # fmt: skip
    assert main(["train", "captioner", "--data", DATA, "--out", str(root / "cap"), *common,
                 "n_embd=32", "n_layer=1"]) == 0  # fmt: skip
    return root


def test_zeroshot_and_retrieve_print_the_library_numbers(runs, capsys) -> None:
    capsys.readouterr()
    assert main(["zeroshot", str(runs / "clip"), "--n", "100", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == zeroshot(runs / "clip", n=100)
    assert main(["retrieve", str(runs / "clip"), "--n", "50", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    ref = retrieve(runs / "clip", n=50)
    assert got["image_to_text"] == {str(k): v for k, v in ref["image_to_text"].items()}
    out = runs / "query.png"
    assert main(["retrieve", str(runs / "clip"), "--query", "a red circle", "--k", "4",
                 "--out", str(out)]) == 0  # fmt: skip
    assert Image.open(out).size[0] > 4 * 16


def test_caption_reads_image_files_exactly(runs, capsys, tmp_path) -> None:
    test = load_dataset(DATA, "test")
    x = test.get(torch.arange(2))["x"]
    paths = []
    for i in range(2):
        arr = model_to_levels(x[i], 256).permute(1, 2, 0).numpy().astype(np.uint8)
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(arr).save(paths[-1])
    capsys.readouterr()
    assert main(["caption", str(runs / "cap"), str(paths[0]), "--method", "beam"]) == 0
    printed = capsys.readouterr().out.rstrip("\n")
    assert printed == caption(runs / "cap", x[:1], "beam")[0]  # the file reads back exactly
    assert main(["caption", str(runs / "cap"), *map(str, paths)]) == 0
    lines = capsys.readouterr().out.rstrip("\n").split("\n")
    assert [ln.split(": ", 1)[1] for ln in lines] == caption(runs / "cap", x, "greedy")


def test_user_errors_are_one_sentence(runs, capsys) -> None:
    capsys.readouterr()
    assert main(["zeroshot", str(runs / "cap")]) == 2
    err = capsys.readouterr().err
    assert "'clip'" in err and "Traceback" not in err and err.count("\n") == 1
    assert main(["sample", str(runs / "clip")]) == 2
    assert "does not draw samples" in capsys.readouterr().err
    assert main(["caption", str(runs / "cap"), str(runs / "missing.png")]) == 2
    assert "missing.png" in capsys.readouterr().err
    assert not (runs / "clip" / "samples").exists()


def test_counts_and_options_out_of_range_are_one_sentence(runs, capsys, tmp_path) -> None:
    """Counts below 1 (which crashed, or, as --n -5 did, silently dropped the last five test
    images), decoding options of another method or below 1 (0 read as the config's value), an
    empty query and a picture that is not a PNG: one sentence each, before any work."""
    img = tmp_path / "x.png"
    Image.new("L", (16, 16), 128).save(img)
    clip, cap = str(runs / "clip"), str(runs / "cap")
    cases = [
        (["zeroshot", clip, "--n", "0"], "--n 0"),
        (["zeroshot", clip, "--n", "-5"], "--n -5"),
        (["retrieve", clip, "--n", "0"], "--n 0"),
        (["retrieve", clip, "--query", "red", "--k", "0"], "--k 0"),
        (["retrieve", clip, "--query", "  "], "--query is empty"),
        (["retrieve", clip, "--query", "red", "--out", str(tmp_path / "r.jpg")], ".png"),
        (["caption", cap, str(img), "--method", "beam", "--beam-size", "-3"], "beam_size = -3"),
        (["caption", cap, str(img), "--method", "beam", "--beam-size", "0"], "beam_size = 0"),
        (["caption", cap, str(img), "--method", "top_k", "--top-k", "0"], "top_k = 0"),
        (["caption", cap, str(img), "--method", "greedy", "--beam-size", "3"], "--method beam"),
    ]
    capsys.readouterr()
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "r.jpg").exists()
    ref = retrieve(runs / "clip", n=10, ks=(1, 5))
    assert retrieve(runs / "clip", n=10, ks=np.array([1, 5])) == ref  # numpy's ks read as ints
    for ks in ((0, 5), (2.5,), ()):  # 2.5 was topk's TypeError
        with pytest.raises(ConfigError, match="whole numbers k >= 1"):
            retrieve(runs / "clip", n=10, ks=ks)
    with pytest.raises(ConfigError, match="at least one image"):  # was torch.cat's ValueError
        caption(runs / "cap", [])
