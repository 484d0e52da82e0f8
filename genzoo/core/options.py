"""Sampling options given as ``key=value`` on the command line, read with their type and range.

``genzoo sample RUN key=value`` hands each value over as the command line's parser read it: a
bool for ``true``/``false``, a number for ``3`` or ``0.5``, and a string for anything else,
``nan``, ``inf`` and ``1e9`` included. :func:`option` turns one value into the type the sampler
uses and checks its range, so that ``noise=nan`` is not silently ``True``, ``length=-3`` does not
draw empty samples and ``temperature=abc`` is one sentence, not a ``ValueError``.
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Mapping
from typing import Any, TypeVar

from genzoo.core.errors import ConfigError

T = TypeVar("T", bool, int, float)


def option(
    options: Mapping[str, Any],
    key: str,
    default: T,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    infinite: bool = False,
) -> T:
    """``options[key]`` as the type of ``default`` (``default`` when absent); one sentence for a
    value of another type, NaN, an infinite value (unless ``infinite``) or one outside the
    bounds ``ge`` / ``gt`` / ``le``."""
    if key not in options:
        return default
    value = options[key]
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value  # type: ignore[return-value]
        raise ConfigError(f"{key} = {value!r} must be true or false.")
    try:
        number = float(value)  # also reads "nan", "inf" and "1e9"
    except (TypeError, ValueError):
        kind = "a whole number" if isinstance(default, int) else "a number"
        raise ConfigError(f"{key} = {value!r} must be {kind}.") from None
    if isinstance(value, bool) or math.isnan(number) or (math.isinf(number) and not infinite):
        raise ConfigError(f"{key} = {value!r} must be a finite number.")
    if isinstance(default, int):
        if not number.is_integer():
            raise ConfigError(f"{key} = {value!r} must be a whole number.")
        out: Any = int(number)
    else:
        out = number
    if ge is not None and out < ge:
        raise ConfigError(f"{key} = {value!r} must be >= {ge:g}.")
    if gt is not None and out <= gt:
        raise ConfigError(f"{key} = {value!r} must be > {gt:g}.")
    if le is not None and out > le:
        raise ConfigError(f"{key} = {value!r} must be <= {le:g}.")
    return out


def count(value: Any, name: str = "n", what: str = "samples to draw", *, least: int = 1) -> int:
    """``value`` as a count: a whole number, at least ``least`` (a Python, numpy or torch
    integer); one sentence naming ``name`` (a keyword, or a flag such as ``"--n"``) for a bool,
    a float, a string, NaN or a number below ``least``."""
    try:
        out = operator.index(value)  # integers only: 2.5, "3" and nan raise TypeError
    except TypeError:
        out = None
    if isinstance(value, bool) or out is None or out < least:
        sep = " " if name.startswith("--") else " = "  # a flag reads as typed, a keyword as set
        raise ConfigError(
            f"{name}{sep}{value!r} must be a whole number, at least {least} ({what})."
        )
    return out


def memory_bytes() -> int:
    """This machine's physical memory in bytes (0 where it cannot be read, e.g. on Windows)."""
    try:
        return max(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), 0)
    except (AttributeError, ValueError, OSError):
        return 0


def check_output_memory(elements: int, bytes_per: int, asked: str) -> None:
    """One sentence when an output of ``elements`` values would take more than half of this
    machine's memory: drawing it would run for hours and then fail (``asked`` names the
    request, e.g. ``"length = 1000000000 for n = 2"``)."""
    total, need = memory_bytes(), elements * bytes_per
    if total > 0 and need > total / 2:
        raise ConfigError(
            f"{asked} would take {need / 2**30:,.1f} GiB, more than half of this machine's "
            f"{total / 2**30:,.0f} GiB of memory; ask for less."
        )
