"""benchmarks/gan_images.py fd at tiny sizes: the spread statistics match their closed forms,
the floor is n random training images scored like the samples, one score per objective and
seed, and a grid of 64 samples per objective."""

import statistics

import pytest
import torch
from PIL import Image


def test_seed_spread_closed_form(bench):
    gi = bench("gan_images")
    s = gi.seed_spread([4.0, 1.0, 2.0])
    assert s["median"] == 2.0 and s["min"] == 1.0 and s["max"] == 4.0
    # population std of (1, 2, 4): mean 7/3, variance ((4/3)^2 + (1/3)^2 + (5/3)^2) / 3 = 14/9
    assert s["std"] == pytest.approx((14 / 9) ** 0.5)
    assert gi.seed_spread([3.0])["std"] == 0.0


def test_fd_tiny_run(bench, tmp_path):
    gi = bench("gan_images")
    from genzoo.data import load_dataset
    from genzoo.metrics import evaluate_samples, get_classifier

    torch.set_num_threads(1)
    argv = ["fd", "--data", "digits", "--models", "gan,hinge-sn", "--steps", "2"]
    argv += ["--seeds", "0,1", "--n", "200", "--out", str(tmp_path), "--set", "width=8"]
    res = gi.main(argv)
    clf = get_classifier("digits")
    train = load_dataset("digits", "train").all()["x"]
    test = load_dataset("digits", "test").all()["x"]
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:200]
    floor = evaluate_samples(train[pick], test, clf, metrics=["fd"])["scores"]["fd"]
    assert res["floor"] == pytest.approx(floor)
    assert set(res["fd"]) == {"gan", "hinge-sn"}
    for model, fds in res["fd"].items():
        assert len(fds) == 2 and all(f > 0 for f in fds)
        assert res["summary"][model]["median"] == pytest.approx(statistics.median(fds))
        # 64 samples of 8 x 8 on 8 rows of 8: a square picture
        with Image.open(tmp_path / f"gan-fd-{model}-digits.png") as im:
            assert im.size[0] == im.size[1] > 8 * 8
