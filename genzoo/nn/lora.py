"""LoRA: low-rank adaptation of linear layers (Hu et al., "LoRA: Low-Rank Adaptation of Large
Language Models", arXiv:2106.09685).

A frozen weight ``W0`` ``(d_out, d_in)`` gets a trainable low-rank update,
``h = W0 x + (alpha / r) B A x`` (Eq. 3 with the scaling of Sec. 4.1), ``A`` ``(r, d_in)``
initialised as PyTorch's default linear init (Kaiming-uniform, as PEFT does), ``B`` ``(d_out, r)``
zero, so training starts at the base model. Dropout applies to the input of the low-rank path.
Merging folds the update into the weight, ``W = W0 + (alpha / r) B A``, so inference costs
nothing extra; unmerging subtracts it again. Each adapted matrix adds ``r (d_in + d_out)``
parameters.

:func:`apply_lora` replaces the ``nn.Linear`` layers whose names end in one of ``targets`` (e.g.
``("qkv", "proj")`` for genzoo's attention) by :class:`LoRALinear` wrappers, in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) B A dropout(x)`` around a frozen ``nn.Linear`` ``base``."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank = {rank} must be >= 1")
        self.base = base.requires_grad_(False)
        self.rank = rank
        self.scaling = alpha / rank  # Sec. 4.1: scale the update by alpha / r
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's (and PEFT's) init
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> Tensor:
        """The update ``(alpha / r) B A`` ``(d_out, d_in)``."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: Tensor) -> Tensor:
        y = self.base(x)  # W0 x + b
        if self.merged:
            return y
        # Eq. (3): h = W0 x + B A x, computed as (x A^T) B^T, never forming B A
        return y + self.scaling * (self.dropout(x) @ self.lora_A.T) @ self.lora_B.T

    @torch.no_grad()
    def merge(self) -> None:
        """``W0 <- W0 + (alpha / r) B A``: the same function, one matmul."""
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo :meth:`merge` (``W0`` back to the base weight, to fp32 rounding)."""
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False


def apply_lora(
    module: nn.Module, targets: Sequence[str], rank: int, alpha: float, dropout: float = 0.0
) -> list[str]:
    """Wrap every ``nn.Linear`` of ``module`` whose qualified name ends in one of ``targets`` (a
    last name component, or a dotted suffix such as ``"mlp.0"``) in a :class:`LoRALinear`; return
    the wrapped names. A target that matches no linear layer is a ``ValueError`` naming them."""
    linears = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    chosen = [n for n in linears if any(n == t or n.endswith("." + t) for t in targets)]
    for t in targets:
        if not any(n == t or n.endswith("." + t) for n in chosen):
            names = sorted({n.split(".")[-1] for n in linears})
            raise ValueError(f"LoRA target {t!r} matches no linear layer; layers end in {names}")
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, LoRALinear(getattr(parent, child), rank, alpha, dropout))
    return chosen


def lora_layers(module: nn.Module) -> list[LoRALinear]:
    return [m for m in module.modules() if isinstance(m, LoRALinear)]


def merge_lora(module: nn.Module) -> None:
    """Fold every LoRA update of ``module`` into its weight."""
    for m in lora_layers(module):
        m.merge()


def unmerge_lora(module: nn.Module) -> None:
    """Take every merged LoRA update of ``module`` out of its weight again."""
    for m in lora_layers(module):
        m.unmerge()


def unwrap_lora(module: nn.Module) -> None:
    """Merge every LoRA update of ``module`` and put the plain ``nn.Linear`` back in place."""
    for name, m in list(module.named_modules()):
        if isinstance(m, LoRALinear):
            m.merge()
            parent_name, _, child = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, child, m.base)
