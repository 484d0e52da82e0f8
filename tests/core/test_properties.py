"""Property-based tests (hypothesis) of what users type: ``key=value`` overrides, config mappings
and dataset specifications. Whatever they type, the answer is a value or a :class:`GenzooError`
(one clear sentence), never another exception."""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from genzoo.core.config import parse_overrides
from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.registry import MODELS
from genzoo.data import dataset_info, list_datasets, load_dataset
from genzoo.train.trainer import TrainConfig

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.text(max_size=4), scalars, max_size=2),
)
# what a shell hands over: short strings, with the characters YAML and our parser care about
shellish = st.text(
    alphabet=st.sampled_from("ab_.=:-+[]{},'\"!&*#|>%@` 019eEyYnN~\t\\"), max_size=24
)


@FAST
@given(st.lists(st.one_of(shellish, st.text(max_size=20)), max_size=6))
def test_parse_overrides_gives_a_dict_or_one_config_error(items):
    well_formed = all("=" in it and it.split("=", 1)[0].strip() for it in items)
    try:
        out = parse_overrides(items)
    except ConfigError:
        assert not well_formed
        return
    assert well_formed
    assert set(out) == {it.split("=", 1)[0].strip() for it in items}


@FAST
@given(
    st.floats(min_value=1e-12, max_value=1e3, allow_subnormal=False),
    st.integers(0, 10**9),
    st.booleans(),
    st.sampled_from(["stop", "skip", "rollback"]),
)
def test_typed_overrides_round_trip_through_the_train_config(lr, steps, progress, policy):
    text = [f"lr={lr!r}", f"steps={steps}", f"progress={str(progress).lower()}"]
    text.append(f"nan_policy={policy}")
    cfg = TrainConfig.from_dict(parse_overrides(text))
    assert (cfg.lr, cfg.steps, cfg.progress, cfg.nan_policy) == (lr, steps, progress, policy)


CONFIG_CLASSES = [TrainConfig] + [MODELS.get(n).config_class for n in MODELS.names()]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_config_from_dict_gives_a_config_or_one_config_error(data):
    cls = data.draw(st.sampled_from(CONFIG_CLASSES), label="config class")
    names = cls.field_names()
    keys = st.one_of(st.sampled_from(names), st.text(max_size=8))
    mapping = data.draw(st.dictionaries(keys, values, max_size=4), label="mapping")
    try:
        cfg = cls.from_dict(mapping)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
        return
    # a config that loads, round-trips (YAML too) to the same values
    assert repr(cls.from_dict(cfg.to_dict())) == repr(cfg)
    assert repr(cls.from_yaml(cfg.to_yaml())) == repr(cfg)


@contextlib.contextmanager
def _inside(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """An empty working folder three levels deep (``folder:..`` stays inside the sandbox)."""
    root = tmp_path_factory.mktemp("specs")
    deep = root / "a" / "b" / "c"
    deep.mkdir(parents=True)
    return deep


KNOWN = [s for s in list_datasets() if "<" not in s]
spec_text = st.text(
    alphabet=st.characters(blacklist_characters="/~", blacklist_categories=("Cs",)), max_size=16
)
specs = st.one_of(
    st.sampled_from(KNOWN),
    st.builds(
        lambda p, t: p + t, st.sampled_from(["toy2d:", "folder:", "text:", "", "digits"]), spec_text
    ),
    st.builds(lambda t, q: f"folder:{t}?{q}", spec_text, spec_text),
    st.builds(lambda t, q: f"text:pystdlib?{t}={q}", spec_text, spec_text),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs, split=st.one_of(st.sampled_from(["train", "test"]), st.text(max_size=6)))
def test_dataset_specs_give_data_or_one_genzoo_error(sandbox, spec, split):
    with _inside(sandbox):
        try:
            info = dataset_info(spec, root=str(sandbox))
        except GenzooError as e:
            assert str(e) and "\n" not in str(e)
            return
        assert info.kind in ("points", "images", "text", "audio", "video")
        assert all(d >= 1 for d in info.shape)
        slow = (
            "text:",
            "mnist5k",
            "speech-digits",
            "mel:speech-digits",
            "moving-",
            "frames:",
        )  # speech is synthesised on first use
        if spec.startswith(slow) and split in ("train", "test"):
            return  # valid and slower to build; covered by the data tests
        try:
            ds = load_dataset(spec, split, root=str(sandbox))
        except GenzooError as e:
            assert str(e) and "\n" not in str(e)
            return
        assert split in ("train", "test") and len(ds) > 0 and ds.info == info


def test_finite_numbers_are_required(tmp_path):
    for key in ("lr", "grad_clip", "ckpt_every_s", "weight_decay"):
        for bad in (math.nan, math.inf, -1.0):
            with pytest.raises(ConfigError, match=key):
                TrainConfig.from_dict({key: bad})
    with pytest.raises(ConfigError, match="budget"):
        TrainConfig.from_dict({"budget": "-5"})


BUILD_MODELS = ["vae", "ddpm", "realnvp", "gan", "pixelcnn"]


def _near(default):
    """Values of the default's type, often out of range (and now and then of another type)."""
    if isinstance(default, bool):
        typed = st.booleans()
    elif isinstance(default, int):
        typed = st.integers(-3, 40)
    elif isinstance(default, float):
        typed = st.one_of(st.floats(-2, 2), st.sampled_from([0.0, -0.0, 1e9]))
    elif isinstance(default, (tuple, list)):
        typed = st.lists(st.integers(-2, 24), max_size=3)
    else:
        typed = st.sampled_from(["", "x", str(default)])
    return st.one_of(typed, typed, typed, st.sampled_from(["x", -1, [1, "a"]]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_models_build_from_fuzzed_settings_or_raise_one_config_error(data):
    import dataclasses

    from genzoo.runs.build import build_checked
    from genzoo.runs.load import load_submodel

    name = data.draw(st.sampled_from(BUILD_MODELS), label="model")
    spec = data.draw(st.sampled_from(["toy2d:moons", "digits"]), label="data")
    cls = MODELS.get(name)
    defaults = {
        f.name: getattr(cls.config_class(), f.name) for f in dataclasses.fields(cls.config_class)
    }
    keys = data.draw(st.lists(st.sampled_from(sorted(defaults)), unique=True, max_size=3))
    given_ = {k: data.draw(_near(defaults[k]), label=k) for k in keys}
    try:
        cfg = cls.config_class.from_dict(given_)
        model = build_checked(cls, cfg, dataset_info(spec), given_, spec, load_submodel)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
        return
    event(f"built {name}")
    assert sum(p.numel() for p in model.parameters()) >= 0
