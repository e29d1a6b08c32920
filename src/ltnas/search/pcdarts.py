"""PC-DARTS (Xu et al., ICLR 2020): partial channel connections and edge normalisation.

Each edge sends only the first C/K of its input's channels through the mixed operation and passes
the other channels by (max-pooled 2×2 on a reducing edge), then shuffles the channels so that the
next edge samples others (authors' code, yuhuixu1993/PC-DARTS `MixedOp`):

    f_ij(x) = shuffle_K( concat( Σ_o softmax(α_ij)_o · o(x[:C/K]),  x[C/K:] ) )

Edge normalisation: node j = Σ_{i<j} β̂_ij · f_ij(h_i) with β̂_ij = exp(β_ij) / Σ_{i'<j} exp(β_i'j),
a softmax over the edges entering each node. The genotype is derived from softmax(α_ij)_o · β̂_ij.
Memory per edge falls by about K, which is what lets the search run at batch 256; everything
else is the DARTS step, with α (and β) updated only from epoch `pcdarts.arch_start_epoch` on.
"""

from __future__ import annotations

import torch
from torch import nn

from ltnas.errors import LtnasError
from ltnas.search.darts import Batch, DartsSearch
from ltnas.space.convolutions import is_nhwc
from ltnas.space.mixing import EdgeMixing
from ltnas.space.search_network import EdgeInput, MixedEdge


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(N, g·c, H, W) → channel order (0, c, 2c, …, 1, c+1, …): view as (N, g, c), transpose to (N, c, g).

    A channels_last input stays channels_last (shuffled as NHWC), so the supernet's NHWC fast path holds."""
    n, channels, h, w = x.shape
    if is_nhwc(x):
        nhwc = x.permute(0, 2, 3, 1).reshape(n, h, w, groups, channels // groups).transpose(3, 4)
        return nhwc.reshape(n, h, w, channels).permute(0, 3, 1, 2)
    return x.reshape(n, groups, channels // groups, h, w).transpose(1, 2).reshape(n, channels, h, w)


def node_softmax(beta: torch.Tensor, nodes: int) -> torch.Tensor:
    """β̂: a softmax over the edges entering each node (node j has 2 + j incoming edges)."""
    parts, start = [], 0
    for node in range(nodes):
        end = start + 2 + node
        parts.append(torch.softmax(beta[start:end], dim=-1))
        start = end
    return torch.cat(parts)


class PartialMixedEdge(MixedEdge):
    """A DARTS edge on C/K channels; the rest pass by (max-pooled on a reducing edge), then shuffle."""

    def __init__(self, channels: int, stride: int, primitives: tuple[str, ...], k: int):
        if channels % k:
            raise LtnasError(f"PC-DARTS splits each edge's {channels} channels into {k} parts; make search."
                             f"cell.init_channels a multiple of search.pcdarts.k ({k})")
        super().__init__(channels // k, stride, primitives)
        self.k = k
        self.bypass = nn.MaxPool2d(2, 2) if stride == 2 else nn.Identity()

    def mix(self, inputs: EdgeInput, weights: torch.Tensor, constant: list[float] | None = None) -> torch.Tensor:
        mixed = super().mix(inputs.partial(self.k), weights, constant)
        rest = inputs.x[:, inputs.x.shape[1] // self.k:]
        return channel_shuffle(torch.cat([mixed, self.bypass(rest)], dim=1), self.k)


class PartialChannelMixing(EdgeMixing):
    """PC-DARTS' edges (`PartialMixedEdge`) and one β per edge, normalised per node."""

    name = "partial_channel"

    def __init__(self, k: int = 4):
        self.k = k

    def make_edge(self, channels: int, stride: int, primitives: tuple[str, ...]) -> nn.Module:
        return PartialMixedEdge(channels, stride, primitives, self.k)

    def arch_shapes(self, edges: int, ops: int) -> dict[str, tuple[int, ...]]:
        return {"beta": (edges,)}

    def edge_weights(self, extra: dict[str, torch.Tensor], nodes: int) -> torch.Tensor:
        return node_softmax(extra["beta"], nodes)

    def read(self, weights: torch.Tensor, extra: dict[str, torch.Tensor], nodes: int) -> torch.Tensor:
        """softmax(α)_ij,o · β̂_ij: what the derivation ranks edges and operations by."""
        return weights * node_softmax(extra["beta"], nodes).unsqueeze(-1)

    def read_symbol(self, relaxed: str) -> str:
        return f"{relaxed}·β̂"

    def __repr__(self) -> str:
        return f"PartialChannelMixing(k={self.k})"


class PcDartsSearch(DartsSearch):
    """DARTS' step on the partial-channel supernet; α and β share DARTS' Adam; warm-up without α steps."""

    @classmethod
    def network_options(cls, config) -> dict:
        return {**super().network_options(config), "mixing": PartialChannelMixing(config.pcdarts.k)}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.epoch = epoch

    @property
    def arch_updates(self) -> bool:
        """α and β move only from epoch `arch_start_epoch` (0-based; the authors' `if epoch >= 15`)."""
        return self.epoch >= self.config.pcdarts.arch_start_epoch

    def arch_step(self, train: Batch, val: Batch) -> None:
        if self.arch_updates:
            super().arch_step(train, val)
