from dataclasses import dataclass
from typing import Literal

import pytest

from genzoo.core.config import Config, parse_overrides
from genzoo.core.errors import ConfigError


@dataclass(frozen=True)
class Demo(Config):
    width: int = 8  # a width
    rate: float = 0.5  # a rate
    mode: Literal["a", "b"] = "a"  # a choice
    dims: tuple[int, ...] = (1, 2)  # a tuple
    flag: bool = False  # a flag
    name: str | None = None  # optional


def test_unknown_key_names_bad_and_valid_keys():
    with pytest.raises(ConfigError) as e:
        Demo.from_dict({"widht": 3})
    msg = str(e.value)
    assert "'widht'" in msg and "'width'" in msg and "'rate'" in msg


def test_types_are_checked_and_coerced_from_strings():
    c = Demo.from_dict(parse_overrides(["width=16", "rate=1e-3", "dims=[4,8]", "flag=true"]))
    assert c.width == 16 and c.rate == 1e-3 and c.dims == (4, 8) and c.flag is True
    assert Demo.from_dict({"dims": "3,5"}).dims == (3, 5)
    for bad in ({"width": "wide"}, {"width": 1.5}, {"mode": "c"}, {"flag": "maybe"}):
        with pytest.raises(ConfigError):
            Demo.from_dict(bad)


def test_yaml_and_json_round_trip_exactly():
    c = Demo.from_dict({"width": 3, "mode": "b", "dims": (7,), "name": "x"})
    assert Demo.from_yaml(c.to_yaml()) == c
    assert Demo.from_json(c.to_json()) == c


def test_configs_are_frozen():
    c = Demo()
    with pytest.raises(AttributeError):
        c.width = 3  # type: ignore[misc]


def test_override_needs_key_value():
    with pytest.raises(ConfigError):
        parse_overrides(["novalue"])
