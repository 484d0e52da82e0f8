"""Frozen configuration dataclasses with strict loading and a YAML/JSON round trip.

Every model and the trainer declare a ``@dataclass(frozen=True)`` subclass of :class:`Config` with a
comment per field. ``Config.from_dict`` refuses unknown keys (naming the valid ones) and checks and
coerces value types, so ``key=value`` strings from the command line become typed values.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from genzoo.core.errors import ConfigError, choices

C = TypeVar("C", bound="Config")


def bounded(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A config field with its range declared once: ``n_layer: int = bounded(4, ge=1)``.

    ``Config.from_dict`` checks every bounded field (each entry of a tuple field) before
    ``validate`` and names the field, its value and the range in one sentence; bounded floats
    must also be finite. A ``None`` value (an optional field left unset) is not checked."""
    return dataclasses.field(default=default, metadata={"bounds": (ge, gt, le, lt)})


def _range_text(ge: Any, gt: Any, le: Any, lt: Any) -> str:
    lo = (ge, "[") if ge is not None else (gt, "(") if gt is not None else None
    hi = (le, "]") if le is not None else (lt, ")") if lt is not None else None
    if lo and hi:
        return f"in {lo[1]}{lo[0]:g}, {hi[0]:g}{hi[1]}"
    if lo:
        return f"{'>=' if lo[1] == '[' else '>'} {lo[0]:g}"
    assert hi is not None
    return f"{'<=' if hi[1] == ']' else '<'} {hi[0]:g}"


def _in_range(v: Any, ge: Any, gt: Any, le: Any, lt: Any) -> bool:
    if isinstance(v, float) and not math.isfinite(v):
        return False
    return not (
        (ge is not None and not v >= ge)
        or (gt is not None and not v > gt)
        or (le is not None and not v <= le)
        or (lt is not None and not v < lt)
    )


def check_bounds(cfg: Config) -> None:
    """Raise :class:`ConfigError` for the first :func:`bounded` field outside its range."""
    for f in dataclasses.fields(cfg):
        bounds = f.metadata.get("bounds")
        v = getattr(cfg, f.name)
        if bounds is None or v is None:
            continue
        values = v if isinstance(v, (tuple, list)) else (v,)
        if not all(_in_range(x, *bounds) for x in values):
            finite = "a finite number " if any(isinstance(x, float) for x in values) else ""
            rng = f"{finite}{_range_text(*bounds)}"
            if isinstance(v, (tuple, list)):
                raise ConfigError(f"Each entry of {f.name} = {list(v)} must be {rng}.")
            raise ConfigError(f"{f.name} = {v} must be {rng}.")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; coerce strings and JSON lists where safe."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"{where} = {value!r} is not valid; choose {choices(map(str, allowed))}."
            )
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where} = {value!r} is not a valid {_type_name(tp)}.")
    if origin in (tuple, list):
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else value.split(",")
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} = {value!r} must be a list.")
        args = get_args(tp)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if origin is tuple:
            if len(args) != len(value):
                raise ConfigError(f"{where} = {value!r} must have {len(args)} entries.")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
        return [_coerce(v, args[0], where) for v in value] if args else list(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        raise ConfigError(f"{where} = {value!r} must be true or false.")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where} = {value!r} must be an integer.")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                f = float(value)
            except ValueError:
                f = None
            if f is not None and f.is_integer():
                return int(f)
        raise ConfigError(f"{where} = {value!r} must be an integer.")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where} = {value!r} must be a number.")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where} = {value!r} must be a number.")
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{where} = {value!r} must be a string.")
        return value
    if isinstance(tp, type) and issubclass(tp, Config):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping of keys to values.")
        return tp.from_dict(value, where=where)
    if isinstance(tp, type) and issubclass(tp, dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping.")
        return dict(value)
    return value


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every genzoo config: frozen, strict, and serialisable."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any] | None = None, *, where: str = "") -> C:
        """Build from a mapping; unknown keys and badly typed values raise :class:`ConfigError`."""
        data = dict(data or {})
        names = cls.field_names()
        prefix = f"{where}." if where else ""
        unknown = [k for k in data if k not in names]
        if unknown:
            raise ConfigError(
                f"Unknown config key {prefix}{unknown[0]!r} for {cls.__name__}; "
                f"valid keys are {choices(names)}."
            )
        hints = get_type_hints(cls)
        kwargs = {k: _coerce(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
        try:
            obj = cls(**kwargs)
        except TypeError as e:  # a required field is missing
            raise ConfigError(f"{cls.__name__}: {e}.") from None
        check_bounds(obj)
        obj.validate()
        return obj

    def validate(self) -> None:
        """Checks across fields (ranges of single fields are declared with :func:`bounded`);
        subclasses raise :class:`ConfigError`."""

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (strictly checked like ``from_dict``)."""
        return type(self).from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Config):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_yaml(cls: type[C], text: str) -> C:
        return cls.from_dict(yaml.safe_load(text) or {})


def parse_overrides(items: typing.Sequence[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings from the command line (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"Config override {item!r} is not of the form key=value.")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"Config override {item!r} has an empty key.")
        try:
            val = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            val = raw
        out[key] = val
    return out
