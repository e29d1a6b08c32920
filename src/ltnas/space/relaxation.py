"""How architecture parameters α become edge weights.

The supernet never decides this itself: it asks its relaxation. DARTS lets the operations of an
edge compete (softmax); FairDARTS lets each one stand alone (sigmoid). A sampled one-hot path
(one-shot search) fits the same interface.
"""

from __future__ import annotations

import torch

from ltnas.errors import LtnasError


class Relaxation:
    """Maps α of shape (edges, ops) to edge weights of the same shape."""

    name = "relaxation"

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SoftmaxRelaxation(Relaxation):
    """DARTS: the operations on an edge share one unit of weight."""

    name = "softmax"

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        return torch.softmax(alpha, dim=-1)


class SigmoidRelaxation(Relaxation):
    """FairDARTS: each operation is switched on or off independently (no exclusive competition)."""

    name = "sigmoid"

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
