"""How an edge of the supernet mixes its candidate operations, and which architecture parameters
besides α the mixing has: the seam through which a search strategy shapes the space.

DARTS' mixing (`EdgeMixing`) is the weighted sum Σ_i w_i · op_i(x) on every channel, with α alone.
A strategy that changes the mixed operation supplies its own (PC-DARTS: a partial-channel edge and
per-edge β, see search/pcdarts.py) and passes it to `SearchNetwork(mixing=...)`.
"""

from __future__ import annotations

import torch
from torch import nn


class EdgeMixing:
    """The weighted sum of every candidate operation on every channel; no parameters besides α."""

    name = "weighted_sum"

    def make_edge(self, channels: int, stride: int, primitives: tuple[str, ...]) -> nn.Module:
        """One edge's module, with DARTS' `mix(inputs, weights, constant)` interface."""
        from ltnas.space.search_network import MixedEdge

        return MixedEdge(channels, stride, primitives)

    def arch_shapes(self, edges: int, ops: int) -> dict[str, tuple[int, ...]]:
        """Extra architecture parameters per cell type: name → shape (registered as `{name}_{cell}`)."""
        return {}

    def edge_weights(self, extra: dict[str, torch.Tensor], nodes: int) -> torch.Tensor | None:
        """A weight per edge that multiplies the edge's whole output (None: every edge weighs 1)."""
        return None

    def read(self, weights: torch.Tensor, extra: dict[str, torch.Tensor], nodes: int) -> torch.Tensor:
        """Operation weights (edges, ops) as derivation and logs read them, given the relaxation's."""
        return weights

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
