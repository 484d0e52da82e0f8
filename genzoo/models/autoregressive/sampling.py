"""Drawing tokens from logits: temperature, top-k and nucleus (top-p) filtering.

Shared by the autoregressive models. Top-k keeps the k most likely tokens; top-p keeps the smallest
set of most likely tokens whose probability reaches p (Holtzman et al., "The Curious Case of Neural
Text Degeneration", arXiv:1904.09751, Sec. 3.1). ``temperature = 0`` is greedy (argmax) decoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from genzoo.core.errors import ConfigError
from genzoo.core.options import option

SAMPLING_OPTIONS = ("temperature", "top_k", "top_p")  # the options every token sampler takes


def at_least_float32(x: Tensor) -> Tensor:
    """Half-precision logits (autocast) -> float32 for the softmax; float64 stays float64."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def check_sampling_options(temperature: float, top_k: int, top_p: float) -> None:
    """Raise a one-sentence :class:`ConfigError` for out-of-range sampling options."""
    if not temperature >= 0.0:
        raise ConfigError(f"temperature = {temperature} must be >= 0 (0: greedy).")
    if top_k < 0:
        raise ConfigError(f"top_k = {top_k} must be >= 0 (0: off).")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_p = {top_p} must be in (0, 1] (1: off).")


def sampling_kwargs(config: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """``temperature``, ``top_k`` and ``top_p`` from the sampling ``options``, each defaulting to
    the config's field of that name (checked by :func:`check_sampling_options` when drawn)."""
    return {
        "temperature": option(options, "temperature", float(config.temperature)),
        "top_k": option(options, "top_k", int(config.top_k)),
        "top_p": option(options, "top_p", float(config.top_p)),
    }


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Set the logits of tokens outside the top-k / nucleus to ``-inf``: ``(..., V) -> (..., V)``.

    Ties at the k-th value are kept; the most likely token is always kept.
    """
    out = logits.float()
    if top_k and top_k < out.shape[-1]:
        kth = torch.topk(out, top_k, dim=-1).values[..., -1:]  # (..., 1)
        out = out.masked_fill(out < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(out, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        before = probs.cumsum(-1) - probs  # mass of the strictly more likely tokens
        drop_sorted = before >= top_p  # the first token has before = 0 < top_p: always kept
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        out = out.masked_fill(drop, float("-inf"))
    return out


def sample_logits(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One token per row of ``logits`` ``(B, V) -> (B,)`` long, drawn with ``generator``.

    The categorical draw is ``torch.multinomial`` on the generator's device, so a seeded generator
    gives the same tokens whatever device the model runs on.
    """
    check_sampling_options(temperature, top_k, top_p)
    if temperature == 0.0:
        return logits.argmax(-1)
    probs = filter_logits(logits / temperature, top_k, top_p).softmax(-1)  # (B, V)
    gdev = generator.device if generator is not None else probs.device
    tok = torch.multinomial(probs.to(gdev), 1, generator=generator)  # (B, 1)
    return tok.squeeze(1).to(logits.device)
