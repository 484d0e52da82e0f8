"""Fast repeated denoiser calls for sampling: ``torch.compile`` and CUDA-graph capture.

A sampler calls the denoiser ``D(x, sigma, cond)`` tens to thousands of times on the same shapes,
and for small networks the time goes into launching kernels rather than running them. Two standard
remedies, usable together:

- ``compile``: ``torch.compile`` traces the denoiser (preconditioning and network) once and fuses
  its elementwise work (Inductor);
- ``cuda_graph``: a CUDA graph (``torch.cuda.CUDAGraph``) records the kernels of one call and
  replays them, so each step costs one launch from the CPU instead of hundreds.

:class:`FastDenoiser` wraps a diffusion model's sampling denoiser with either or both. A graph is
recorded per key (input shape and dtype, device, autocast state, train/eval mode, whether a
condition is given) on the first call with that key, after a few warm-up calls on a side stream,
as the PyTorch documentation prescribes; later calls copy their inputs into the graph's static
buffers and replay it. Off CUDA a graph is impossible and the call simply runs without one (the
clean fallback), so code that asks for graphs runs on every device and gives the same numbers.

:func:`fast_denoiser` keeps one wrapper per (model, options) for the model's lifetime, so repeated
``model.sample(..., cuda_graph=True)`` calls reuse their graphs and compiled code.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import Tensor, nn

_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple[Any, ...], FastDenoiser]] = (
    weakref.WeakKeyDictionary()
)


def _sampling_denoiser(model: Any, x: Tensor, sigma: Tensor, cond: Tensor | None) -> Tensor:
    return model.sampling_denoiser(x, sigma, cond)


class FastDenoiser:
    """``D(x, sigma, cond)`` of ``model`` (its ``sampling_denoiser``), compiled and/or replayed
    from CUDA graphs. Holds the model weakly; ``captures`` counts the graphs recorded.

    ``backend`` is passed to ``torch.compile`` (``"inductor"``; ``"aot_eager"`` checks tracing
    without generating kernels). ``warmup`` calls run before each capture.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        compile: bool = False,
        cuda_graph: bool = False,
        backend: str = "inductor",
        warmup: int = 2,
    ) -> None:
        self._model = weakref.ref(model)
        self.compile = compile
        self.cuda_graph = cuda_graph
        self._fn: Any = (
            torch.compile(_sampling_denoiser, backend=backend, dynamic=False)
            if compile
            else _sampling_denoiser
        )
        self.warmup = warmup
        self.captures = 0
        self._graphs: dict[tuple[Any, ...], tuple[Any, Tensor, Tensor, Tensor | None, Tensor]] = {}

    @property
    def model(self) -> Any:
        m = self._model()
        if m is None:
            raise RuntimeError("The model of this FastDenoiser no longer exists.")
        return m

    def _run(self, x: Tensor, sigma: Tensor, cond: Tensor | None) -> Tensor:
        return self._fn(self.model, x, sigma, cond)

    def __call__(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        if not (self.cuda_graph and x.is_cuda):
            return self._run(x, sigma, cond)  # no graph off CUDA: the clean fallback
        key = (
            tuple(x.shape),
            x.dtype,
            x.device,
            sigma.dtype,
            None if cond is None else (tuple(cond.shape), cond.dtype),
            torch.is_autocast_enabled("cuda"),
            torch.get_autocast_dtype("cuda"),
            self.model.training,
        )
        entry = self._graphs.get(key)
        if entry is None:
            entry = self._capture(x, sigma, cond)
            self._graphs[key] = entry
        graph, sx, ss, sc, out = entry
        sx.copy_(x)
        ss.copy_(sigma)
        if sc is not None and cond is not None:
            sc.copy_(cond)
        graph.replay()
        return out.clone()  # the static output is overwritten by the next replay

    def _capture(
        self, x: Tensor, sigma: Tensor, cond: Tensor | None
    ) -> tuple[Any, Tensor, Tensor, Tensor | None, Tensor]:
        sx, ss = x.clone(), sigma.clone()
        sc = None if cond is None else cond.clone()
        side = torch.cuda.Stream(device=x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):  # warm-up off the capture stream (cuDNN, allocator)
            for _ in range(self.warmup):
                self._run(sx, ss, sc)
        torch.cuda.current_stream(x.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self._run(sx, ss, sc)
        self.captures += 1
        return graph, sx, ss, sc, out


def weight_layout(model: nn.Module) -> tuple[tuple[int, ...], ...]:
    """The strides of the model's 4-D weights: what changes when the model is moved to (or from)
    ``channels_last`` after a compiled denoiser was built for it."""
    return tuple(tuple(p.stride()) for p in model.parameters() if p.ndim == 4)


def fast_denoiser(model: nn.Module, *, compile: bool = False, cuda_graph: bool = False) -> Any:
    """The model's sampling denoiser with the given speed-ups, cached per model, options and
    weight layout; the plain ``model.sampling_denoiser`` when neither is asked for.

    Compiled code does not re-check the strides of the weights it was traced with (TorchDynamo
    treats parameters as fixed), so when the layout of a model's weights changes (e.g.
    ``model.to(memory_format=torch.channels_last)`` after a compiled call) the old compiled code
    would read the weights with the wrong strides. That case resets TorchDynamo's caches and
    compiles again.
    """
    if not (compile or cuda_graph):
        return model.sampling_denoiser  # type: ignore[attr-defined]
    per_model = _CACHE.setdefault(model, {})
    layout = weight_layout(model)
    stale = [k for k in per_model if k[2] != layout]
    if stale:
        if any(k[0] for k in stale):
            torch._dynamo.reset()  # the compiled code of the old layout must not be re-used
        for k in stale:
            del per_model[k]
    key = (compile, cuda_graph, layout)
    if key not in per_model:
        per_model[key] = FastDenoiser(model, compile=compile, cuda_graph=cuda_graph)
    return per_model[key]
