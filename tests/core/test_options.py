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
