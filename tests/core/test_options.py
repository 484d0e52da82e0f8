"""Sampling options as the command line hands them over (``nan``, ``inf``, ``1e9`` stay text):
read with the type of their default and checked against their range, one sentence otherwise."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.core.config import parse_overrides
from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.options import option
from genzoo.diffusion.samplers import run_sampler


def test_values_take_the_default_type_and_bad_ones_are_one_sentence() -> None:
    o = parse_overrides(["n=1e3", "t=0.5", "b=false", "s=inf", "x=nan", "w=abc", "h=2.5"])
    assert option(o, "n", 1) == 1000 and isinstance(option(o, "n", 1), int)
    assert option(o, "t", 1.0) == 0.5 and option(o, "b", True) is False
    assert option(o, "missing", 7) == 7
    assert math.isinf(option(o, "s", 1.0, infinite=True))
    cases = [
        ("x", 1.0, {}, "finite"),  # "nan" read by float() would pass a >= check: it must not
        ("s", 1.0, {}, "finite"),
        ("w", 1.0, {}, "must be a number"),
        ("w", 1, {}, "whole number"),
        ("h", 1, {}, "whole number"),
        ("t", True, {}, "true or false"),  # bool("0.5") would be True
        ("n", 1, {"le": 10}, "<= 10"),
        ("t", 1.0, {"gt": 0.5}, "> 0.5"),
        ("t", 1.0, {"ge": 1}, ">= 1"),
    ]
    for key, default, bounds, needle in cases:
        with pytest.raises(ConfigError, match=needle) as err:
            option(o, key, default, **bounds)
        assert key in str(err.value) and "\n" not in str(err.value)


def test_sampler_options_are_typed_and_bounded_before_the_sampler_runs() -> None:
    """``step_lr='nan'`` reached Langevin as text (a TypeError deep inside), ``s_churn=-1`` and
    ``eta=-1`` sampled something else without a word."""
    calls = []

    def denoiser(x, sigma, cond=None):
        calls.append(1)
        return torch.zeros_like(x)

    x, sig = torch.zeros(2, 3), torch.tensor([2.0, 1.0, 0.0])
    for name, opts, needle in [
        ("langevin", parse_overrides(["step_lr=nan"]), "step_lr = 'nan'"),
        ("langevin", {"n_steps_each": 0}, "n_steps_each = 0 must be >= 1"),
        ("heun", {"s_churn": -1}, "s_churn = -1 must be >= 0"),
        ("ddim", {"eta": -1.0}, "eta = -1.0 must be >= 0"),
        ("pc", {"snr": 0}, "snr = 0 must be > 0"),
    ]:
        with pytest.raises(GenzooError, match=needle):
            run_sampler(name, denoiser, x, sig, **opts)
    assert not calls  # refused before the first denoiser call
    out = run_sampler("heun", denoiser, x, sig, **parse_overrides(["s_tmax=inf", "s_churn=1"]))
    assert torch.allclose(out, torch.zeros(2, 3), atol=1e-5) and calls  # D = 0: ends at 0


def test_a_count_is_a_whole_number_at_least_one() -> None:
    import numpy as np

    from genzoo.core.options import count

    assert count(3) == 3 and count(np.int64(3)) == 3 and count(torch.tensor(3)) == 3
    assert count(torch.tensor(3)).__class__ is int
    for bad in (0, -1, 2.5, 3.0, "3", float("nan"), True, None, torch.tensor(2.0)):
        with pytest.raises(ConfigError, match="whole number, at least 1") as err:
            count(bad)
        assert repr(bad) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"^--n 0 must"):  # a flag reads as typed
        count(0, "--n")


def test_every_model_checks_n_before_it_samples() -> None:
    """``model.sample(-1)`` was a tensor-shape ``RuntimeError`` from inside the model, ``2.5`` a
    ``TypeError`` from ``randn`` and ``n = 0`` an empty tensor for most models but a reshape
    error for RealNVP: every model's own ``sample`` now checks ``n`` first, and its signature
    (the options ``genzoo sample`` validates against) is unchanged."""
    import inspect

    from genzoo.core.protocol import Samples
    from genzoo.data import dataset_info
    from genzoo.models import MODELS
    from genzoo.models.flows.realnvp import RealNVP, RealNVPConfig
    from genzoo.runs.sample import sample_keywords

    samplers = [c for c in map(MODELS.get, MODELS.names()) if issubclass(c, Samples)]
    assert len(samplers) > 20
    for cls in samplers:
        assert getattr(cls.sample, "checks_n", False), cls.name
        assert next(iter(inspect.signature(cls.sample).parameters)) == "self"
    assert {"sampler", "steps"} <= set(sample_keywords(MODELS.get("ddpm")))
    m = RealNVP(RealNVPConfig(), dataset_info("digits"))
    for bad in (0, -1, 2.5, "3"):
        with pytest.raises(ConfigError, match=f"n = {bad!r} must be a whole number"):
            m.sample(bad)
    assert m.sample(2).shape == (2, 1, 8, 8)


def test_an_unknown_option_to_a_model_that_names_its_options_is_one_sentence() -> None:
    """ProGAN's and StyleGAN2's ``sample`` name their options (no ``**options``): ``psi=0.5``
    was Python's ``TypeError`` "unexpected keyword argument", naming no valid choice."""
    from genzoo.data import dataset_info
    from genzoo.models.gans.progan import ProGAN, ProGANConfig
    from genzoo.models.gans.stylegan2 import StyleGAN2, StyleGAN2Config

    info = dataset_info("digits")
    for m, valid in (
        (StyleGAN2(StyleGAN2Config(), info), "valid options are 'truncation'"),
        (ProGAN(ProGANConfig(), info), "it takes none"),
    ):
        with pytest.raises(
            ConfigError, match=f"Unknown sampling option 'psi' for '{m.name}'; {valid}"
        ):
            m.sample(2, psi=0.5)
        g = torch.Generator().manual_seed(0)
        assert m.sample(2, generator=g).shape == (2, 1, 8, 8)  # cond / generator: always taken


def test_a_diffusion_models_steps_are_a_count() -> None:
    """``steps=0`` read as the default (DDPM's 1,000 steps drawn without a word), ``steps=-2``
    was ``linspace``'s error for EDM and ``2.5`` a ``TypeError`` for DDPM but silently 2 steps
    for EDM."""
    from genzoo.data import dataset_info
    from genzoo.models.diffusion.ddpm import DDPM, DDPMConfig
    from genzoo.models.diffusion.edm import EDM, EDMConfig

    info = dataset_info("toy2d:8gaussians")
    for m in (DDPM(DDPMConfig(timesteps=20), info), EDM(EDMConfig(), info)):
        for bad in (0, -2, 2.5):
            with pytest.raises(ConfigError, match=f"steps = {bad!r} must be a whole number"):
                m.sample(2, steps=bad)
        g = torch.Generator().manual_seed(0)
        assert m.sample(3, steps=2, generator=g).shape == (3, 2)


def test_the_api_functions_check_their_counts(tmp_path, fast_train) -> None:
    """``genzoo.sample(run, n="3")`` was ``'<' not supported between str and int``, ``n=2.5``
    "'float' object cannot be interpreted as an integer"; ``evaluate``, ``interpolate`` and
    ``train`` took a fractional count the same way (``evaluate(batch_size=0)``: ``range()``'s
    error; ``ode_n=0``: a division by zero; ``label=2.5``: class 2 without a word). Each is one
    sentence naming the value, before any work, and a refused ``train`` writes nothing."""
    import genzoo

    run = genzoo.train("ppca", "digits", steps=1, out=tmp_path / "ppca", overrides=fast_train)
    calls = [
        (lambda: genzoo.sample(run, n=2.5), "--n 2.5"),
        (lambda: genzoo.sample(run, n="3"), "--n '3'"),
        (lambda: genzoo.sample(run, n=4, batch_size=0), "batch_size = 0"),
        (lambda: genzoo.sample(run, n=4, steps=1.5), "--steps 1.5"),
        (lambda: genzoo.evaluate(run, n=2.5), "--n 2.5"),
        (lambda: genzoo.interpolate(run, n=0), "n = 0"),
        (lambda: genzoo.interpolate(run, steps=2.5), "steps = 2.5"),
        (lambda: genzoo.train("ppca", "digits", steps=2.5, out=tmp_path / "x"), "--steps 2.5"),
        (lambda: genzoo.train("ppca", "digits", out=tmp_path / "x", overrides=["lr=1"]), "over"),
        (lambda: genzoo.evaluate(run, batch_size=0), "batch_size = 0"),
        (lambda: genzoo.evaluate(run, samples=-1), "--samples -1"),
        (lambda: genzoo.evaluate(run, ode=True, ode_steps=1.5), "ode_steps = 1.5"),
        (lambda: genzoo.evaluate(run, seed="x"), "seed = 'x'"),
        (lambda: genzoo.sample(run, n=2, seed=1.5), "seed = 1.5"),
        (lambda: genzoo.sample(run, n=2, label=2.5), "--class 2.5"),
    ]
    for call, needle in calls:
        with pytest.raises(ConfigError) as err:
            call()
        assert str(err.value).startswith(needle) and "\n" not in str(err.value)
    assert not (tmp_path / "x").exists()
    assert genzoo.sample(run, n=3).shape == (3, 1, 8, 8)
    assert genzoo.interpolate(run, n=1, steps=3).shape == (1, 5, 1, 8, 8)


def test_class_labels_given_as_cond_are_one_per_sample_and_classes_of_the_data() -> None:
    """WaveNet took ``cond=[99, 99]`` to an ``IndexError`` of its embedding and ``cond=[0]``
    for two samples to a reshape error: labels are checked where every model's ``sample``
    checks ``n``, with the message the GANs already gave; captions (2-D) pass through."""
    from genzoo.data import dataset_info
    from genzoo.models.autoregressive.wavenet import WaveNet, WaveNetConfig

    info = dataset_info("tones")
    m = WaveNet(WaveNetConfig(residual_channels=4, skip_channels=4, layers_per_stack=2), info)
    k = info.n_classes
    for cond, needle in [
        (torch.tensor([99, 99]), f"cond must hold 2 class labels in 0..{k - 1} .*it holds 99"),
        (torch.tensor([-1, 0]), "it holds -1"),
        (torch.tensor([0]), "one per sample; it holds 1"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            m.sample(2, cond=cond, length=4)
    g = torch.Generator().manual_seed(0)
    assert m.sample(2, cond=torch.tensor([0, k - 1]), length=4, generator=g).shape == (2, 4)
