"""Multi-layer perceptron building block."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class MLP(nn.Sequential):
    """``in -> [Linear, act] * len(hidden) -> Linear -> out``; ``hidden`` lists the widths."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (256, 256),
        act: type[nn.Module] = nn.SiLU,
        zero_last: bool = False,
    ) -> None:
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), act()]
            d = h
        last = nn.Linear(d, out_dim)
        if zero_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        super().__init__(*layers)

    def forward(self, x: Tensor) -> Tensor:  # (B, in_dim) -> (B, out_dim)
        return super().forward(x)
