"""benchmarks/controlnet.py's prior-drift statistics: the per-image hits of the class prompts
agree with :func:`prompt_attribute_accuracy` and with a direct reading of "a <colour> <shape>"
(class i: colour i // 5, shape i % 5, one object); the paired difference's standard error is the
paired t-test's denominator (scipy); the binomial standard error is sqrt(p (1 - p) / n)."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from genzoo.metrics.text_to_image import prompt_attribute_accuracy
from genzoo.models.diffusion.t2i import class_prompts


def test_per_image_hits_read_each_class_prompt(bench):
    cn = bench("controlnet")
    n = 90  # each of the 30 class prompts three times
    g = torch.Generator().manual_seed(0)
    readings = {
        "count": torch.randint(0, 2, (n,), generator=g),  # 0: one object
        "colour": torch.randint(0, 6, (n,), generator=g),
        "shape": torch.randint(0, 5, (n,), generator=g),
        "size": torch.randint(0, 2, (n,), generator=g),
        "position": torch.randint(0, 9, (n,), generator=g),
    }
    prompts = class_prompts(30) * 3
    hits = cn.per_image_hits(readings, prompts)
    cls = torch.arange(n) % 30
    colour = (readings["colour"] == cls // 5).numpy()
    shape = (readings["shape"] == cls % 5).numpy()
    one = (readings["count"] == 0).numpy()
    np.testing.assert_array_equal(hits["colour"], colour)
    np.testing.assert_array_equal(hits["shape"], shape)
    np.testing.assert_array_equal(hits["all"], colour & shape & one)
    acc = prompt_attribute_accuracy(readings, prompts)
    for k in ("all", "shape", "colour"):
        assert hits[k].mean() == pytest.approx(acc[f"single_{k}"])
    assert 0 < hits["all"].sum() < n  # the check could fail both ways


def test_standard_errors(bench):
    cn = bench("controlnet")
    rng = np.random.default_rng(1)
    before = rng.random(150) < 0.6
    after = np.where(rng.random(150) < 0.8, before, ~before)  # mostly the same images right
    diff, se = cn.paired_difference(after, before)
    t = stats.ttest_rel(after.astype(float), before.astype(float)).statistic
    assert diff == pytest.approx(after.mean() - before.mean()) and diff != 0
    assert diff / se == pytest.approx(t)
    p = after.mean()
    assert cn.binomial_se(after) == pytest.approx(math.sqrt(p * (1 - p) / 150))
    assert cn.binomial_se(after) == pytest.approx(after.std() / math.sqrt(150))
