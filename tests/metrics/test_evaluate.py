"""evaluate_samples / noise_floor: scores with their settings, on digits through the classifier."""

import pytest
import torch

from genzoo.core.errors import GenzooError
from genzoo.data import get_toy, load_dataset
from genzoo.metrics import evaluate_samples, frechet_distance, noise_floor, prdc


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train"), load_dataset("digits", "test").all()


def test_scores_come_with_their_settings(digits_classifier, digits):
    train, test = digits
    out = evaluate_samples(test["x"], train, digits_classifier, kid_subsets=10, seed=3)
    s, cfg = out["scores"], out["settings"]
    keys = {"fd", "kid", "kid_std", "is", "is_std", "precision", "recall", "density", "coverage"}
    assert set(s) == keys
    assert cfg["extractor"] == "genzoo-cnn:digits"
    assert cfg["extractor_hash"] == digits_classifier.hash
    assert (cfg["n_samples"], cfg["n_reference"], cfg["feature_dim"]) == (359, 1438, 128)
    assert cfg["seed"] == 3 and cfg["kid_subset_size"] == 359 and cfg["k"] == 5
    # the pieces agree with the functions they come from
    f_test = digits_classifier.features(test["x"])
    f_train = digits_classifier.features(train.all()["x"])
    assert s["fd"] == pytest.approx(frechet_distance(f_test, f_train), rel=1e-5)
    assert s["precision"] == pytest.approx(prdc(f_train, f_test)["precision"])


def test_real_data_beats_degraded_data_and_the_noise_floor_is_lowest(digits_classifier, digits):
    train, test = digits
    x = test["x"]
    g = torch.Generator().manual_seed(0)
    noisy = (x + 0.6 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    kw = {"kid_subsets": 10}
    real = evaluate_samples(x, train, digits_classifier, **kw)["scores"]
    bad = evaluate_samples(noisy, train, digits_classifier, **kw)["scores"]
    floor = noise_floor(train, digits_classifier, n=359, **kw)
    assert floor["settings"]["n_samples"] == floor["settings"]["n_reference"] == 359
    assert "disjoint" in floor["settings"]["split"]
    # measured: FD 13 (real), 69 (noisy), 11 (floor); KID 29 +- 18, 295 +- 36
    assert bad["fd"] > 3 * real["fd"] and bad["kid"] > 3 * real["kid"]
    assert floor["scores"]["fd"] < bad["fd"] / 3
    assert bad["precision"] < real["precision"] and real["precision"] > 0.8

    # IS with the 99%-accurate classifier: close to 10 on all classes, close to 1 on one class
    def inception_score(x):
        out = evaluate_samples(x, train, digits_classifier, metrics=("is",), is_splits=1)
        return out["scores"]["is"]

    assert inception_score(x) > 9  # measured 9.6
    assert inception_score(x[test["y"] == 0]) < 1.5  # measured 1.14


def test_too_few_samples_warns(digits_classifier, digits):
    train, test = digits
    with pytest.warns(UserWarning, match="fewer samples than dimensions"):
        evaluate_samples(test["x"][:50], train, digits_classifier, metrics=("fd",))


def test_points_use_the_coordinates_and_unknown_metrics_fail():
    toy = get_toy("8gaussians")
    x, ref = toy.sample(300, torch.Generator().manual_seed(0)), toy.sample(300)
    out = evaluate_samples(x, ref, metrics=("fd", "prdc"))
    assert out["settings"]["extractor"] == "pixels" and out["settings"]["feature_dim"] == 2
    assert "is" not in out["scores"]
    assert out["scores"]["fd"] == pytest.approx(frechet_distance(x, ref), rel=1e-6)
    with pytest.raises(GenzooError, match="Unknown metric 'fid'"):
        evaluate_samples(x, ref, metrics=("fid",))
