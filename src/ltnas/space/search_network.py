"""The DARTS supernet: every candidate operation on every edge, weighted by relaxed α.

`SearchNetwork.parameters()` yields the operation weights only; the architecture parameters α
(one row per edge, one column per primitive, for the normal and the reduction cell) come from
`arch_parameters()`. Calling the network uses its current α through its relaxation, which can be
swapped (softmax for DARTS, sigmoid for FairDARTS, Gumbel samples for GDAS) without touching the
network, and mixes each edge's operations through its mixing (space/mixing.py: DARTS' weighted sum,
or a strategy's own, e.g. PC-DARTS' partial channels with per-edge β).

The network keeps its own configuration (`C`, `layers`, `nodes`, `primitives`, `in_channels`,
`stem_multiplier`, `num_classes`) so that tools never work it back out of a layer's width.
"""

from __future__ import annotations

import torch
from torch import nn

from ltnas.config import PRIMITIVES
from ltnas.space.convolutions import nhwc_stem
from ltnas.space.fused import fusable, mix_edges, worth_fusing
from ltnas.space.genotype import Genotype, derive_genotype
from ltnas.space.heads import make_classifier
from ltnas.space.mixing import EdgeInput, EdgeMixing, MixedEdge  # noqa: F401 (MixedEdge, EdgeInput re-exported)
from ltnas.space.primitives import FactorizedReduce, ReLUConvBN
from ltnas.space.relaxation import ForwardWeights, Relaxation, make_relaxation


CELL_KINDS = ("normal", "reduce")


def num_edges(nodes: int) -> int:
    """Intermediate node j (0-based) has an edge from each of the 2 inputs and the j nodes before it."""
    return sum(2 + j for j in range(nodes))


def reduction_layers(layers: int) -> tuple[int, ...]:
    """Cells at L//3 and 2L//3 halve the resolution and double the channels (one cell if they coincide)."""
    return tuple(sorted({layers // 3, 2 * layers // 3}))


class SearchCell(nn.Module):
    def __init__(
        self,
        nodes: int,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
        primitives: tuple[str, ...],
        mixing: EdgeMixing | None = None,
    ):
        super().__init__()
        self.reduction = reduction
        self.nodes = nodes
        self.channels = channels
        mixing = mixing or EdgeMixing()
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(c_prev_prev, channels, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, channels, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            mixing.make_edge(channels, 2 if reduction and source < 2 else 1, tuple(primitives))
            for node in range(nodes)
            for source in range(2 + node)
        )
        # DARTS' own edges are computed together per node in training (space/fused.py); other mixings per edge.
        self.fused = all(fusable([self.edges[e] for e in self.leaving(source)]) for source in range(1 + nodes))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                constant: list[list[float]] | None = None, edge_weights: torch.Tensor | None = None,
                sampled: list[int] | None = None) -> torch.Tensor:
        """Node j = Σ_{i<j} e_ij · edge_ij(h_i, w_ij).

        `constant`: `weights.tolist()` when the caller has read it already (one host-device sync per
        forward instead of one per cell); used only when no gradient reaches the weights.
        `edge_weights`: e_ij per edge (PC-DARTS' normalised β); None: 1. `sampled`: per edge the one
        operation that runs (GDAS); None: every operation with a non-zero weight."""
        inputs = [EdgeInput(self.preprocess0(s0)), EdgeInput(self.preprocess1(s1))]
        # Weights that no gradient reaches are read as numbers, so that edges can skip exact zeros.
        if weights.requires_grad or sampled is not None:
            constant = None
        elif constant is None:
            constant = weights.tolist()
        if (self.training and constant is None and sampled is None and edge_weights is None and self.fused
                and worth_fusing(inputs[1].x)):
            return self._forward_fused(inputs, weights)
        offset = 0
        for _ in range(self.nodes):
            node = None
            for j, h in enumerate(inputs):
                edge = offset + j
                if sampled is not None:
                    term = self.edges[edge].pick(h, weights[edge], sampled[edge])
                else:
                    term = self.edges[edge].mix(h, weights[edge], None if constant is None else constant[edge])
                if edge_weights is not None:
                    term = edge_weights[edge] * term
                node = term if node is None else node + term
            offset += len(inputs)
            inputs.append(EdgeInput(node))
        return torch.cat([h.x for h in inputs[2:]], dim=1)

    def leaving(self, source: int) -> list[int]:
        """The edges leaving input `source` (0, 1: the cell's inputs; 2 + j: node j), by target node."""
        offsets = [sum(2 + m for m in range(node)) for node in range(self.nodes)]
        return [offsets[node] + source for node in range(max(0, source - 1), self.nodes)]

    def _forward_fused(self, inputs: list[EdgeInput], weights: torch.Tensor) -> torch.Tensor:
        """The same nodes, with all the edges leaving a node computed together as soon as the node is
        complete (space/fused.py); node j then sums its incoming edges' outputs."""
        incoming: list[list[torch.Tensor]] = [[] for _ in range(self.nodes)]
        for source in range(2 + self.nodes - 1):  # the last node feeds no edge
            edges = self.leaving(source)
            outputs = mix_edges(inputs[source], [self.edges[e] for e in edges], weights[edges])
            for node, out in zip(range(max(0, source - 1), self.nodes), outputs):
                incoming[node].append(out)
            if source >= 1:  # node source - 1 now has all its 2 + (source - 1) incoming edges
                terms = incoming[source - 1]
                node = terms[0]
                for term in terms[1:]:
                    node = node + term
                inputs.append(EdgeInput(node))
        return torch.cat([h.x for h in inputs[2:]], dim=1)


class SearchBackbone:
    """The stem and the stacked search cells of the DARTS supernet, with the channel counts a head
    on top needs: the outputs of the last two cells (`c_prev_prev`, `c_prev`), the last cell's
    channels per node (`channels`) and whether it reduced (`reduction_prev`)."""

    def __init__(self, C: int, layers: int, in_channels: int, primitives: tuple[str, ...], nodes: int,
                 stem_multiplier: int, mixing: EdgeMixing | None = None):
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_curr *= 2
            self.cells.append(SearchCell(nodes, c_prev_prev, c_prev, c_curr, reduction, reduction_prev, primitives,
                                         mixing))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, nodes * c_curr
        self.c_prev_prev, self.c_prev, self.channels, self.reduction_prev = c_prev_prev, c_prev, c_curr, reduction_prev


class SearchNetwork(nn.Module):
    def __init__(
        self,
        C: int,
        num_classes: int,
        layers: int,
        in_channels: int = 3,
        primitives: tuple[str, ...] | list[str] = PRIMITIVES,
        *,
        nodes: int = 4,
        stem_multiplier: int = 3,
        relaxation: str | Relaxation = "softmax",
        alpha_init_std: float = 1e-3,
        channels_last: bool = True,
        normalised: bool = False,
        mixing: EdgeMixing | None = None,
    ):
        """`normalised`: LDAM-DRW's cosine classifier (space/heads.py) instead of a linear one.
        `mixing`: how an edge mixes its operations (space/mixing.py); default DARTS' weighted sum."""
        super().__init__()
        self.C, self.layers, self.in_channels, self.stem_multiplier = C, layers, in_channels, stem_multiplier
        self.primitives = tuple(primitives)
        # NHWC activations: the same values, but pooling and depthwise convolutions vectorise over
        # channels (on a 2-core CPU the DARTS search step runs ~1.7x faster; see benchmarks/RESULTS.md).
        self.channels_last = channels_last
        self.nodes = nodes
        self.num_classes = num_classes
        self.relaxation = make_relaxation(relaxation)
        self.mixing = mixing or EdgeMixing()

        backbone = SearchBackbone(C, layers, in_channels, self.primitives, nodes, stem_multiplier, self.mixing)
        self.stem, self.cells = backbone.stem, backbone.cells
        self.feature_dim = backbone.c_prev
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = make_classifier(backbone.c_prev, num_classes, normalised)

        shape = (num_edges(nodes), len(self.primitives))
        self.alpha_normal = nn.Parameter(alpha_init_std * torch.randn(shape))
        self.alpha_reduce = nn.Parameter(alpha_init_std * torch.randn(shape))
        # The mixing's own architecture parameters (e.g. PC-DARTS' β), per cell type, after α.
        self._extra = {kind: [] for kind in CELL_KINDS}
        for name, extra_shape in self.mixing.arch_shapes(*shape).items():
            for kind in CELL_KINDS:
                self.register_parameter(f"{name}_{kind}", nn.Parameter(alpha_init_std * torch.randn(extra_shape)))
                self._extra[kind].append(name)
        self._ARCH_NAMES = ("alpha_normal", "alpha_reduce",
                            *(f"{name}_{kind}" for name in self.mixing.arch_shapes(*shape) for kind in CELL_KINDS))

    # --- weights and architecture kept apart --------------------------------------------------

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Operation weights only: α lives in the same module (so `.to()` and `state_dict()` carry
        it) but is trained by its own optimizer, so it must never reach the weight optimizer."""
        for name, param in super().named_parameters(prefix, recurse, remove_duplicate):
            if name.removeprefix(prefix + "." if prefix else "") not in self._ARCH_NAMES:
                yield name, param

    def arch_parameters(self) -> list[nn.Parameter]:
        """α of the normal and the reduction cell, then the mixing's own parameters (e.g. β)."""
        return [getattr(self, name) for name in self._ARCH_NAMES]

    def extra_arch(self, kind: str) -> dict[str, nn.Parameter]:
        """The mixing's architecture parameters of one cell type ('normal' or 'reduce'), by name."""
        return {name: getattr(self, f"{name}_{kind}") for name in self._extra[kind]}

    # --- forward ------------------------------------------------------------------------------
    def relaxed_weights(self) -> dict[str, torch.Tensor]:
        """Operation weights as derivation and logs read them: {'normal': (edges, ops), 'reduce': ...}
        (the relaxation's `read`, then the mixing's, e.g. softmax(α)·β̂ for PC-DARTS)."""
        return {kind: self.mixing.read(self.relaxation.read(getattr(self, f"alpha_{kind}")), self.extra_arch(kind),
                                       self.nodes) for kind in CELL_KINDS}

    @property
    def read_symbol(self) -> str:
        """What `relaxed_weights` gives, by name: "softmax(α)", "σ(α)", "softmax(α)·β̂" (PC-DARTS)."""
        return self.mixing.read_symbol(self.relaxation.symbol)

    def forward_weights(self) -> dict[str, ForwardWeights]:
        """What the forward pass uses per cell type (the relaxation's `forward`: a sample for GDAS)."""
        return {kind: self.relaxation.forward(getattr(self, f"alpha_{kind}"), self.training) for kind in CELL_KINDS}

    def edge_weights(self) -> dict[str, torch.Tensor | None]:
        """Per cell type the weight of each edge's whole output (PC-DARTS: normalised β), or None."""
        return {kind: self.mixing.edge_weights(self.extra_arch(kind), self.nodes) for kind in CELL_KINDS}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled features before the classifier (used by heads and self-supervision)."""
        forward = self.forward_weights()
        weights = {kind: f.weights for kind, f in forward.items()}
        edges = self.edge_weights()
        constants = {"normal": None, "reduce": None}
        if not any(w.requires_grad for w in weights.values()) and forward["normal"].sampled is None:
            normal, reduce = torch.stack([weights["normal"], weights["reduce"]]).tolist()  # both in one sync
            constants = {"normal": normal, "reduce": reduce}
        s0 = s1 = nhwc_stem(self.stem, x) if self.channels_last else self.stem(x)
        for cell in self.cells:
            kind = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, weights[kind], constants[kind], edges[kind], forward[kind].sampled)
        return self.global_pooling(s1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def genotype(self, rule: str = "darts", threshold: float = 0.85) -> Genotype:
        weights = {k: v.detach().cpu() for k, v in self.relaxed_weights().items()}
        return derive_genotype(
            weights["normal"], weights["reduce"], rule=rule, threshold=threshold, primitives=self.primitives
        )
