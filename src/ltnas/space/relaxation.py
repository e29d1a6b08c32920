"""How architecture parameters α become edge weights.

The supernet never decides this itself: it asks its relaxation. DARTS lets the operations of an
edge compete (softmax); FairDARTS lets each one stand alone (sigmoid); GDAS samples one operation
per edge (search/gdas.py). A relaxation says two things separately:

- `read(α)`: the weights α stands for, used for derivation and logs (softmax(α) for GDAS, not a sample);
- `forward(α, training)`: the weights the forward pass uses, with the operation each edge runs when
  only one runs (`ForwardWeights.sampled`, None when every operation with a non-zero weight runs).

For DARTS and FairDARTS the two are the same function.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ltnas.errors import LtnasError


@dataclass
class ForwardWeights:
    """What one cell type's forward pass uses: `weights` (edges, ops), and per edge the index of the one
    operation that runs (`sampled`, a list of ints) when the relaxation samples a single path."""

    weights: torch.Tensor
    sampled: list[int] | None = None


class Relaxation:
    """Maps α of shape (edges, ops) to edge weights of the same shape."""

    name = "relaxation"
    symbol = "w(α)"  # how plots and alpha.jsonl name what `read` gives

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        """The weights α stands for (derivation, logs); by default also the forward pass's."""
        raise NotImplementedError

    def read(self, alpha: torch.Tensor) -> torch.Tensor:
        return self(alpha)

    def forward(self, alpha: torch.Tensor, training: bool) -> ForwardWeights:
        return ForwardWeights(self(alpha))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SoftmaxRelaxation(Relaxation):
    """DARTS: the operations on an edge share one unit of weight."""

    name = "softmax"
    symbol = "softmax(α)"

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        return torch.softmax(alpha, dim=-1)


class SigmoidRelaxation(Relaxation):
    """FairDARTS: each operation is switched on or off independently (no exclusive competition)."""

    name = "sigmoid"
    symbol = "σ(α)"

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(alpha)


RELAXATIONS: dict[str, type[Relaxation]] = {
    SoftmaxRelaxation.name: SoftmaxRelaxation,
    SigmoidRelaxation.name: SigmoidRelaxation,
}


def make_relaxation(name: str | Relaxation) -> Relaxation:
    if isinstance(name, Relaxation):
        return name
    if name not in RELAXATIONS:
        raise LtnasError(f"unknown relaxation '{name}'; choose from {', '.join(RELAXATIONS)}")
    return RELAXATIONS[name]()
