"""Self-supervised runs through the consumers: `genzoo eval` prints the probe table, `genzoo
embed` writes the features, and sampling, compare and unlabelled probes are one sentence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import genzoo
from genzoo.cli import main
from genzoo.core.errors import ConfigError
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo, Dataset
from genzoo.runs.represent import features, probe, probe_targets

TINY = ["width=4", "proj_hidden=8", "proj_dim=4", "batch_size=16", "progress=false",
        "tensorboard=false"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ssl") / "simclr"
    assert main(["train", "simclr", "--data", "digits", "--steps", "3", "--out", str(out),
                 *TINY]) == 0  # fmt: skip
    return out


def test_eval_prints_the_probe_table_of_the_library(run, capsys) -> None:
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    ref = probe(run)["rows"]
    assert res["probe"] == ref
    assert [(r["target"], r["labels"]) for r in ref] == [
        ("class", 1), ("class", 10), ("class", 100), ("class", "all")
    ]  # fmt: skip
    assert {"loss", "std_sqrt_d", "eff_rank", "align", "uniform"} <= set(res)
    assert main(["eval", str(run)]) == 0
    text = capsys.readouterr().out
    last = ref[-1]
    assert f"{100 * last['linear']:8.2f}" in text and "k-NN" in text


def test_embed_writes_the_frozen_features(run, tmp_path, capsys) -> None:
    out = tmp_path / "emb.npy"
    assert main(["embed", str(run), "--out", str(out)]) == 0
    got = np.load(out, allow_pickle=False)
    test = load_dataset("digits", "test")
    assert got.shape[0] == len(test)
    np.testing.assert_array_equal(got, features(genzoo.load(run, device="cpu"), test))
    with pytest.raises(ConfigError, match="stages = 2 must be between 1 and the backbone's 1"):
        features(genzoo.load(run, device="cpu"), test, stages=2)  # 8 x 8 digits: one stage
    assert main(["embed", str(run), "--out", str(tmp_path / "emb.txt")]) == 2
    assert ".npy" in capsys.readouterr().err


def test_non_sampling_consumers_say_so_in_one_sentence(run, tmp_path, capsys) -> None:
    assert not (run / "samples").exists()  # the Trainer drew no grid
    capsys.readouterr()
    assert main(["sample", str(run)]) == 2
    err = capsys.readouterr().err
    assert "does not draw samples" in err and err.count("\n") == 1
    assert main(["compare", "--data", "digits", "--models", "simclr", "--out",
                 str(tmp_path / "c")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "'simclr' draws none" in err and err.count("\n") == 1


def test_probe_without_labels_is_one_sentence(tmp_path) -> None:
    info = DataInfo(name="folder:pics", kind="images", shape=(1, 8, 8), levels=256)
    with pytest.raises(ConfigError, match=r"probe needs labels.*'folder:pics' has none"):
        probe_targets(Dataset(info, torch.zeros(2, 1, 8, 8, dtype=torch.uint8)))


def test_eval_and_embed_refuse_a_run_without_a_representation(tmp_path, capsys) -> None:
    vae = genzoo.train("vae", "digits", steps=1, out=tmp_path / "vae",
                       overrides={"progress": False, "tensorboard": False, "batch_size": 8,
                                  "latent_dim": 2, "channels": [4, 4]})  # fmt: skip
    capsys.readouterr()
    assert main(["embed", str(vae), "--out", str(tmp_path / "e.npy")]) == 2
    err = capsys.readouterr().err
    assert "'vae'" in err and "simclr" in err and err.count("\n") == 1
