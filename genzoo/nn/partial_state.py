"""Checkpoints of a model built on a frozen base: only what it trains is saved.

A ControlNet, a DreamBooth fine-tune or a post-trained language model keeps its base model's
weights inside it, frozen; those weights already live in the base run, so writing them again
into every checkpoint would only copy them. torch has no per-module switch for this, hence the
small mixin here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class SavesTrainedOnly:
    """Mixin (before ``nn.Module`` in the bases) whose ``state_dict`` leaves out the keys given
    to :meth:`leave_out_of_checkpoints`; ``load_state_dict`` keeps those tensors as they are."""

    _frozen_keys: frozenset[str] = frozenset()

    def leave_out_of_checkpoints(self, keys: Iterable[str]) -> None:
        """State-dict keys (without a prefix) that checkpoints do not hold."""
        self._frozen_keys = frozenset(keys)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The module's tensors less the frozen ones."""
        sd = super().state_dict(*args, **kwargs)  # type: ignore[misc]
        prefix = kwargs.get("prefix", "")
        for k in self._frozen_keys:
            sd.pop(prefix + k, None)
        return sd

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Load the saved tensors; the frozen ones stay as the base run gave them."""
        full = {k: v for k, v in super().state_dict().items() if k in self._frozen_keys}  # type: ignore[misc]
        full.update(state_dict)
        return super().load_state_dict(full, strict=strict, assign=assign)  # type: ignore[misc]
