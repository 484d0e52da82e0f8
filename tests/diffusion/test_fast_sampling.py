"""Compiled and CUDA-graph sampling (genzoo.diffusion.fast): same samples as the plain path, a
clean fallback off CUDA, one cached wrapper per model that does not keep the model alive."""

import gc

import torch

from genzoo.data import load_dataset
from genzoo.diffusion.fast import _CACHE, FastDenoiser, fast_denoiser
from genzoo.diffusion.samplers import run_sampler
from genzoo.diffusion.schedules import linear_beta_table, sigma_to_t
from genzoo.models.diffusion.ddpm import DDPM, DDPMConfig
from genzoo.models.diffusion.edm import EDM, EDMConfig


def _perturb(model: torch.nn.Module) -> None:
    """Non-zero weights everywhere (zero-initialised output layers would hide differences)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def test_cuda_graph_on_cpu_falls_back_to_identical_samples():
    info = load_dataset("digits").info
    m = DDPM(
        DDPMConfig.from_dict(
            {"timesteps": 50, "channels": 8, "sampler": "ddim", "sample_steps": 10}
        ),
        info,
    ).eval()
    _perturb(m)
    plain = m.sample(6, generator=torch.Generator().manual_seed(3))
    fast = m.sample(6, generator=torch.Generator().manual_seed(3), cuda_graph=True)
    assert torch.equal(plain, fast)
    wrapper = fast_denoiser(m, cuda_graph=True)
    assert isinstance(wrapper, FastDenoiser) and wrapper.captures == 0  # no graph on a CPU
    assert fast_denoiser(m, cuda_graph=True) is wrapper  # cached for the next call


def test_compiled_denoiser_matches_eager_and_cache_holds_models_weakly():
    info = load_dataset("toy2d:moons").info
    m = EDM(EDMConfig.from_dict({"hidden": (32, 32)}), info).eval()
    _perturb(m)
    compiled = FastDenoiser(m, compile=True, backend="aot_eager")  # traced, no C++ kernels
    sig = m.sampling_sigmas(6)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) * m.prior_std(80.0)
    a = run_sampler("heun", m.sampling_denoiser, x, sig)
    b = run_sampler("heun", compiled, x, sig)
    assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)
    assert not torch.equal(a, x)
    fast_denoiser(m, cuda_graph=True)
    assert m in _CACHE
    del m, compiled
    gc.collect()
    assert len([k for k in _CACHE.keys() if isinstance(k, EDM)]) == 0


def test_sigma_to_t_takes_no_host_values_and_inverts_the_table():
    table = linear_beta_table(100)
    t = sigma_to_t(table[[0, 10, 99]].float(), table.float())
    assert torch.allclose(t, torch.tensor([0.0, 10.0, 99.0]), atol=1e-3)
    clamped = sigma_to_t(torch.tensor([1e-9, 1e9]), table.float())  # outside: clamped to the ends
    assert torch.allclose(clamped, torch.tensor([0.0, 99.0]), atol=1e-3)


def test_a_new_weight_layout_gets_a_new_denoiser_and_fresh_compiled_code(monkeypatch):
    # Compiled code treats the weights as fixed and does not re-check their strides: after
    # model.to(channels_last) the old code would read them wrongly (seen on an H100 as a stride
    # assertion), so the wrapper is rebuilt and TorchDynamo's caches are reset, once.
    resets = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))
    info = load_dataset("digits").info
    m = DDPM(DDPMConfig.from_dict({"timesteps": 50, "channels": 8}), info).eval()
    first = fast_denoiser(m, compile=True)
    assert fast_denoiser(m, compile=True) is first and not resets
    m.to(memory_format=torch.channels_last)
    second = fast_denoiser(m, compile=True)
    assert second is not first and len(resets) == 1
    assert fast_denoiser(m, compile=True) is second and len(resets) == 1
    graphs = fast_denoiser(m, cuda_graph=True)  # no compiled code: nothing to reset
    m.to(memory_format=torch.contiguous_format)
    assert fast_denoiser(m, cuda_graph=True) is not graphs
    assert len(resets) == 2  # the compiled wrapper of the channels_last layout was dropped too
