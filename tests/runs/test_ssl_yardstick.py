"""The label-free yardstick (``features=ssl:RUN``), the rank agreement of two yardsticks, the
probe table's baselines, and the bad inputs around them (one sentence each, exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import genzoo
from genzoo.cli import main
from genzoo.compare import compare
from genzoo.compare.run import _draw
from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.io import read_json
from genzoo.core.seeding import make_generator
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo
from genzoo.metrics import (
    EmbedFeatures,
    PixelFeatures,
    evaluate_samples,
    frechet_distance,
    rank_agreement,
)
from genzoo.metrics.classifier import FeatureClassifier, make_net
from genzoo.models import MODELS
from genzoo.runs import baselines
from genzoo.runs.yardstick import feature_extractor, ssl_features

TINY_SSL = {"width": 4, "proj_hidden": 8, "proj_dim": 4, "batch_size": 16}
QUIET = {"progress": False, "tensorboard": False}


@pytest.fixture(scope="module")
def ssl_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("yard") / "simclr"
    return genzoo.train("simclr", "digits", steps=2, out=out, overrides={**TINY_SSL, **QUIET})


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("yard") / "vae"
    over = {**QUIET, "batch_size": 8, "latent_dim": 3, "channels": [4, 4]}
    return genzoo.train("vae", "digits", steps=1, out=out, overrides=over)


def _one_sentence(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_ssl_fd_of_a_set_with_itself_is_zero_and_ignores_the_order(ssl_run) -> None:
    x = load_dataset("digits", "test").all()["x"][:200]
    ext = ssl_features(ssl_run)
    f = ext.features(x)
    model = genzoo.load(ssl_run, device="cpu")
    torch.testing.assert_close(f, model.embed(x))  # the run's own representation
    assert f.shape == (200, model.encoder.out_dim)
    assert abs(frechet_distance(f, f)) < 1e-6 * float(f.var(0).sum())
    perm = torch.randperm(200, generator=torch.Generator().manual_seed(0))
    a, b = x[:100], x[100:]
    fd = evaluate_samples(a, b, ext, metrics=("fd",))["scores"]["fd"]
    fd_perm = evaluate_samples(a[perm[perm < 100]], b, ext, metrics=("fd",))["scores"]["fd"]
    assert fd > 1e-3 * float(f.var(0).sum())  # two different halves are apart ...
    assert fd_perm == pytest.approx(fd, rel=1e-6)  # ... however the samples are ordered
    # the yardstick's identity follows its weights
    other = EmbedFeatures(MODELS.get("simclr")(model.config, model.info))
    assert other.hash != ext.hash and ext.name.startswith("ssl:simclr:digits")


def test_rank_agreement_has_the_closed_form_values() -> None:
    a = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert rank_agreement(a, [10.0, 20.0, 30.0, 40.0, 50.0])[0] == pytest.approx(1.0)
    assert rank_agreement(a, [5.0, 4.0, 3.0, 2.0, 1.0])[0] == pytest.approx(-1.0)
    # one adjacent swap: 1 - 6 sum d^2 / (n (n^2 - 1)) = 1 - 6 * 2 / 120 = 0.9
    assert rank_agreement(a, [2.0, 1.0, 3.0, 4.0, 5.0])[0] == pytest.approx(0.9)
    # ranks only: any increasing transform of one side leaves it unchanged
    assert rank_agreement(a, np.exp([2.0, 1.0, 3.0, 4.0, 5.0]).tolist())[0] == pytest.approx(0.9)
    with pytest.raises(GenzooError, match="at least 3"):
        rank_agreement([1.0, 2.0], [2.0, 1.0])


def test_features_names_each_yardstick_or_says_what_would_work(ssl_run, vae_run) -> None:
    info = load_dataset("digits", "test").info
    assert isinstance(feature_extractor("pixels", "digits", info), PixelFeatures)
    assert isinstance(feature_extractor(f"ssl:{ssl_run}", "digits", info), EmbedFeatures)
    with pytest.raises(ConfigError, match=r"Unknown features 'inception'.*classifier, pixels or"):
        feature_extractor("inception", "digits", info)
    with pytest.raises(ConfigError, match=r"model 'vae', which has no representation.*simclr"):
        feature_extractor(f"ssl:{vae_run}", "digits", info)
    mnist = DataInfo(name="mnist5k", kind="images", shape=(1, 28, 28), levels=256, n_classes=10)
    with pytest.raises(ConfigError, match=r"trained on 'digits'.*cannot measure 'mnist5k'"):
        feature_extractor(f"ssl:{ssl_run}", "mnist5k", mnist)
    with pytest.raises(ConfigError, match="features=classifier needs labelled"):
        points = DataInfo(name="toy2d:moons", kind="points", shape=(2,))
        feature_extractor("classifier", "toy2d:moons", points)


def test_eval_scores_samples_in_ssl_features(ssl_run, vae_run, capsys) -> None:
    capsys.readouterr()
    args = ["eval", str(vae_run), "--n", "8", "--samples", "64", "--features", f"ssl:{ssl_run}"]
    assert main([*args, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    ext = ssl_features(ssl_run)
    assert res["sample_features"].startswith(ext.name) and ext.hash[:12] in res["sample_features"]
    assert "recognized" not in res  # no classifier, so no recognised share
    vae = genzoo.load(vae_run, device="cpu")
    with torch.no_grad():
        x = vae.sample(64, generator=make_generator(11))  # eval draws with seed + 11
    ref = load_dataset("digits", "test").all()["x"]
    want = frechet_distance(ext.features(x), ext.features(ref))
    assert res["sample_fd"] == pytest.approx(want, rel=1e-5)


def test_compare_rescores_finished_runs_in_another_yardstick(ssl_run, tmp_path) -> None:
    kw = {"models": ["ppca"], "steps": 1, "n_samples": 80, "out": tmp_path, "progress": False}
    first = compare("digits", features="pixels", **kw)
    again = compare("digits", features=f"ssl:{ssl_run}", **kw)
    ext = ssl_features(ssl_run)
    assert first["extractor"] == "pixels" and again["extractor"] == ext.name
    rec = read_json(tmp_path / "runs" / "ppca-seed0" / "compare.json")
    assert rec["eval_settings"]["extractor_hash"] == ext.hash
    assert rec["train_time_s"] == first["rows"][0]["train_time_s"]  # not trained again
    xs, _, _ = _draw(genzoo.load(tmp_path / "runs" / "ppca-seed0", device="cpu"), 80, 0)
    want = evaluate_samples(xs, load_dataset("digits", "test").all()["x"], ext, metrics=("fd",))
    assert again["rows"][0]["fd"] == pytest.approx(want["scores"]["fd"], rel=1e-6)
    assert again["rows"][0]["fd"] != pytest.approx(first["rows"][0]["fd"])


def test_bad_input_is_one_sentence_naming_what_works(ssl_run, vae_run, tmp_path, capsys) -> None:
    capsys.readouterr()
    # FD of a run that draws no samples
    assert main(["eval", str(ssl_run), "--features", "pixels"]) == 2
    err = _one_sentence(capsys)
    assert "'simclr', which draws none" in err and "vae, ddpm" in err
    assert main(["eval", str(ssl_run), "--samples", "10"]) == 2
    assert "draws none" in _one_sentence(capsys)
    # features= naming a run that does not embed, or nothing known
    assert main(["eval", str(vae_run), "--features", f"ssl:{vae_run}"]) == 2
    assert "no representation" in _one_sentence(capsys)
    assert main(["compare", "--models", "ppca", "--features", "clip", "--out",
                 str(tmp_path / "c")]) == 2  # fmt: skip
    assert "choose classifier, pixels or ssl:RUN" in _one_sentence(capsys)
    assert not (tmp_path / "c" / "runs").exists()  # refused before training
    # an augmentation that does not fit the data: colour jitter on grey digits
    assert main(["train", "simclr", "--data", "digits", "--steps", "1", "--out",
                 str(tmp_path / "j"), "color_jitter=0.5"]) == 2  # fmt: skip
    err = _one_sentence(capsys)
    assert "needs colour images" in err and "color_jitter=0" in err and "shapes" in err


def test_baseline_features_are_the_encoders_own(vae_run, tmp_path, monkeypatch) -> None:
    digits = load_dataset("digits", "test")
    x = digits.all()["x"]
    torch.manual_seed(0)
    clf = FeatureClassifier(make_net(digits.info, 8), digits.info, "0" * 16, {})
    monkeypatch.setattr(baselines, "get_classifier", lambda spec, root=None: clf)
    sup = baselines.supervised_features("digits", digits)
    assert sup.shape == (len(digits), 4 * 8)  # the classifier's feature dimension
    np.testing.assert_allclose(sup, clf.features(x).numpy(), rtol=1e-5, atol=1e-6)
    lat = baselines.latent_features(vae_run, digits)
    vae = genzoo.load(vae_run, device="cpu")
    with torch.no_grad():
        np.testing.assert_allclose(lat, vae.posterior(x)[0].numpy(), rtol=1e-5, atol=1e-6)
    assert lat.shape == (len(digits), 3)
    assert baselines.pixel_features(digits).shape == (len(digits), 64)
    with pytest.raises(ConfigError, match="not a clip run"):
        baselines.clip_image_features(vae_run, digits)
    spec = "shapes?size=16&n=32&objects=1"
    clip = genzoo.train("clip", spec, steps=1, out=tmp_path / "clip",
                        overrides={**QUIET, "width": 4, "embed_dim": 4, "text_width": 8,
                                   "text_layers": 1, "text_heads": 2, "batch_size": 8})  # fmt: skip
    shapes = load_dataset(spec, "test")
    got = baselines.clip_image_features(clip, shapes)
    model = genzoo.load(clip, device="cpu")
    with torch.no_grad():
        want = model.image_encoder(shapes.get(torch.arange(5))["x"]).pooled
    np.testing.assert_allclose(got[:5], want.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="trained on data of shape"):
        baselines.clip_image_features(clip, digits)
