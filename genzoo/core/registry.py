"""Name -> class registries for models (and anything else that is chosen by name).

``core`` imports no other layer, so this registry starts empty: importing :mod:`genzoo.models`
registers the built-in models, and consumers take ``MODELS`` from there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from genzoo.core.errors import GenzooError, choices

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to objects with one clear error for unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        if name not in self._items:
            raise GenzooError(f"Unknown {self.kind} {name!r}; choose {choices(self._items)}.")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


MODELS: Registry[type] = Registry("model")


def register_model(name: str) -> Callable[[type], type]:
    """Class decorator: ``@register_model("vae")`` makes the model trainable by name."""

    def deco(cls: type) -> type:
        cls.name = name
        return MODELS.register(name)(cls)

    return deco
