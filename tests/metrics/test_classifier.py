"""genzoo's feature classifier: accuracy, deterministic retraining, content-hashed cache."""

import json

import pytest
import torch

import genzoo.metrics.classifier as clf_mod
from genzoo.core.errors import GenzooError
from genzoo.data import load_dataset
from genzoo.metrics.classifier import ClassifierConfig, content_hash, get_classifier


def test_digits_classifier_is_accurate(digits_classifier):
    clf = digits_classifier
    assert clf.test_accuracy >= 0.95
    # the recorded accuracy is the accuracy on the test split (recomputed independently here)
    test = load_dataset("digits", "test").all()
    assert clf.accuracy(test["x"], test["y"]) == pytest.approx(clf.test_accuracy)
    assert clf.features(test["x"][:5]).shape == (5, 4 * ClassifierConfig().width)
    assert clf.logits(test["x"][:5]).shape == (5, 10)
    assert clf.name == "genzoo-cnn:digits" and len(clf.hash) == 16


def test_cache_holds_safetensors_and_json_and_is_reused(
    digits_classifier, genzoo_cache, monkeypatch
):
    clf = digits_classifier
    folder = genzoo_cache / "classifiers"
    files = sorted(p.name for p in folder.iterdir() if p.name.startswith("digits-"))
    assert f"digits-{clf.hash}.json" in files and f"digits-{clf.hash}.safetensors" in files
    meta = json.loads((folder / f"digits-{clf.hash}.json").read_text())
    assert meta["hash"] == clf.hash and meta["test_accuracy"] == pytest.approx(clf.test_accuracy)

    def no_training(*a, **k):
        raise AssertionError("a cached classifier must not be retrained")

    monkeypatch.setattr(clf_mod, "train_classifier", no_training)
    # found through GENZOO_CACHE (the cache root; classifiers live in its classifiers/ folder)
    monkeypatch.setenv("GENZOO_CACHE", str(genzoo_cache))
    loaded = get_classifier("digits")
    assert loaded.hash == clf.hash
    x = torch.rand(7, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.equal(loaded.features(x), clf.features(x))


def test_retraining_is_bit_identical(tmp_path):
    cfg = {"epochs": 1, "width": 8}
    a = get_classifier("digits", config=cfg, cache=tmp_path / "a")
    b = get_classifier("digits", config=cfg, cache=tmp_path / "b")
    assert a.hash == b.hash
    sa, sb = a.net.state_dict(), b.net.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    # a different seed gives a different hash and different weights
    c = get_classifier("digits", config={**cfg, "seed": 1}, cache=tmp_path / "a")
    assert c.hash != a.hash
    assert not torch.equal(c.net.state_dict()["head.weight"], sa["head.weight"])


def test_hash_depends_on_data_and_config():
    ds = load_dataset("digits", "train")
    cfg = ClassifierConfig(epochs=3)
    h = content_hash(ds.info, ds.x, ds.y, cfg)
    x2 = ds.x.clone()
    x2[0, 0, 0, 0] += 1
    y2 = ds.y.clone()
    y2[0] = (y2[0] + 1) % 10
    assert content_hash(ds.info, x2, ds.y, cfg) != h
    assert content_hash(ds.info, ds.x, y2, cfg) != h
    assert content_hash(ds.info, ds.x, ds.y, cfg.replace(lr=1e-3)) != h
    assert content_hash(ds.info, ds.x, ds.y, ClassifierConfig(epochs=3)) == h


def test_classifier_errors(digits_classifier):
    with pytest.raises(GenzooError, match="labelled image or audio dataset"):
        get_classifier("toy2d:moons")
    with pytest.raises(GenzooError, match="shape"):
        digits_classifier.features(torch.zeros(2, 1, 28, 28))


@pytest.mark.slow
def test_mnist5k_classifier_is_accurate(tmp_path):
    clf = get_classifier("mnist5k", cache=tmp_path)
    assert clf.test_accuracy >= 0.95
