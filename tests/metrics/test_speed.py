"""NFE counting and throughput: exact counts for known samplers, throughput from a fake clock."""

import itertools

import pytest
import torch
from torch import nn

from genzoo.diffusion.samplers import sample_euler, sample_heun
from genzoo.diffusion.schedules import karras_schedule
from genzoo.metrics.speed import NFECounter, count_nfe, measure_throughput


def _denoiser(x, sigma, cond=None):
    return x / (1 + sigma[:, None] ** 2)  # the ideal denoiser of N(0, I) data


@pytest.mark.parametrize("steps", [1, 5, 18])
def test_nfe_of_euler_and_heun(steps):
    sigmas = karras_schedule(steps)  # steps sigmas, then 0
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    euler, heun = NFECounter(_denoiser), NFECounter(_denoiser)
    sample_euler(euler, x, sigmas)
    sample_heun(heun, x, sigmas)
    assert euler.nfe == steps
    assert heun.nfe == 2 * steps - 1  # EDM (arXiv:2206.00364): the last step is plain Euler
    heun.reset()
    assert heun.nfe == 0


def test_count_nfe_counts_module_forwards():
    net = nn.Linear(2, 2)
    with count_nfe(net) as c:
        for _ in range(7):
            net(torch.zeros(3, 2))
    net(torch.zeros(3, 2))  # outside the block: not counted, and the hook is gone
    assert c.nfe == 7 and not net._forward_hooks


def test_throughput_with_a_fake_clock():
    ticks = itertools.count(0.0, 0.25)  # every clock() call advances 0.25 s
    calls = []
    out = measure_throughput(
        lambda: calls.append(1), 100, warmup=2, repeats=3, clock=lambda: next(ticks), device="cpu"
    )
    assert len(calls) == 5  # 2 warm-up + 3 timed
    assert out["seconds_per_call"] == pytest.approx(0.25)
    assert out["samples_per_s"] == pytest.approx(400.0)
