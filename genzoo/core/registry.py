"""Name -> class registries for models (and anything else that is chosen by name)."""

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
        _load_builtins()
        if name not in self._items:
            raise GenzooError(f"Unknown {self.kind} {name!r}; choose {choices(self._items)}.")
        return self._items[name]

    def names(self) -> list[str]:
        _load_builtins()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        _load_builtins()
        return name in self._items


MODELS: Registry[type] = Registry("model")


def register_model(name: str) -> Callable[[type], type]:
    """Class decorator: ``@register_model("vae")`` makes the model trainable by name."""

    def deco(cls: type) -> type:
        cls.name = name
        return MODELS.register(name)(cls)

    return deco


_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import genzoo.models  # noqa: F401  (registers the built-in models)
