"""The DARTS supernet: every candidate operation on every edge, weighted by relaxed α.

`SearchNetwork.parameters()` yields the operation weights only; the architecture parameters α
(one row per edge, one column per primitive, for the normal and the reduction cell) come from
`arch_parameters()`. Calling the network uses its current α through its relaxation, which can be
swapped (softmax for DARTS, sigmoid for FairDARTS) without touching the network.
"""

from __future__ import annotations

import torch
from torch import nn

from ltnas.config import PRIMITIVES
from ltnas.space.genotype import Genotype, derive_genotype
from ltnas.space.heads import make_classifier
from ltnas.space.primitives import FactorizedReduce, ReLUConvBN, make_op
from ltnas.space.relaxation import Relaxation, make_relaxation


def num_edges(nodes: int) -> int:
    """Intermediate node j (0-based) has an edge from each of the 2 inputs and the j nodes before it."""
    return sum(2 + j for j in range(nodes))


def reduction_layers(layers: int) -> tuple[int, ...]:
    """Cells at L//3 and 2L//3 halve the resolution and double the channels (one cell if they coincide)."""
    return tuple(sorted({layers // 3, 2 * layers // 3}))


class EdgeInput:
    """A node's output as every edge leaving it sees it.

    Most candidate operations start with the same ReLU, and the poolings of one node are the same
    for every edge leaving it (they have no parameters), so each is computed once per node, on first
    use, instead of once per operation per edge: the same function for less work and memory.
    """

    def __init__(self, x: torch.Tensor):
        self.x = x
        self._relu: torch.Tensor | None = None
        self._pooled: dict[str, torch.Tensor] = {}

    def relu(self) -> torch.Tensor:
        if self._relu is None:
            self._relu = torch.relu(self.x)
        return self._relu

    def pooled(self, pool: nn.Module) -> torch.Tensor:
        key = repr(pool)  # kind, kernel, stride and padding: equal reprs pool identically
        if key not in self._pooled:
            self._pooled[key] = pool(self.x)
        return self._pooled[key]


class MixedEdge(nn.Module):
    """One edge of the supernet: the weighted sum of every candidate operation."""

    def __init__(self, channels: int, stride: int, primitives: tuple[str, ...]):
        super().__init__()
        ops, kinds = [], []
        for name in primitives:
            op = make_op(name, channels, stride, affine=False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
            ops.append(op)
            kinds.append("pool" if "pool" in name else "relu" if hasattr(op, "forward_after_relu") else "plain")
        self.ops = nn.ModuleList(ops)
        self.stride = stride
        self._kinds = kinds
        # `none` contributes exactly zero to the sum (and to every gradient), so it is never run.
        self.active = [i for i, name in enumerate(primitives) if name != "none"]

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.mix(EdgeInput(x), weights)

    def mix(self, inputs: EdgeInput, weights: torch.Tensor, constant: list[float] | None = None) -> torch.Tensor:
        """Σ_i w_i · op_i(x), with the work the operations share taken from `inputs`.

        `constant` (the weights as numbers, given only when no gradient flows to them) lets an
        operation whose weight is exactly 0 be skipped: it adds nothing and nothing trains through it
        (its BatchNorm statistics are then not updated either, as for a path a one-shot search did
        not sample).
        """
        if constant is None and not weights.requires_grad:
            constant = weights.tolist()
        out = None
        for i in self.active:
            if constant is not None and constant[i] == 0:
                continue
            term = weights[i] * self._run(i, inputs)
            out = term if out is None else out + term
        if out is None:  # every weight is 0: the edge is `none`
            x = inputs.x
            return (x if self.stride == 1 else x[:, :, :: self.stride, :: self.stride]).mul(0.0)
        return out

    def _run(self, i: int, inputs: EdgeInput) -> torch.Tensor:
        op, kind = self.ops[i], self._kinds[i]
        if kind == "relu":
            return op.forward_after_relu(inputs.relu())
        if kind == "pool":
            return op[1](inputs.pooled(op[0]))
        return op(inputs.x)


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
    ):
        super().__init__()
        self.reduction = reduction
        self.nodes = nodes
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(c_prev_prev, channels, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, channels, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            MixedEdge(channels, 2 if reduction and source < 2 else 1, primitives)
            for node in range(nodes)
            for source in range(2 + node)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                constant: list[list[float]] | None = None) -> torch.Tensor:
        """`constant`: `weights.tolist()` when the caller has read it already (one host-device sync per
        forward instead of one per cell); used only when no gradient reaches the weights."""
        inputs = [EdgeInput(self.preprocess0(s0)), EdgeInput(self.preprocess1(s1))]
        # Weights that no gradient reaches are read as numbers, so that edges can skip exact zeros.
        if weights.requires_grad:
            constant = None
        elif constant is None:
            constant = weights.tolist()
        offset = 0
        for _ in range(self.nodes):
            node = None
            for j, h in enumerate(inputs):
                edge = offset + j
                term = self.edges[edge].mix(h, weights[edge], None if constant is None else constant[edge])
                node = term if node is None else node + term
            offset += len(inputs)
            inputs.append(EdgeInput(node))
        return torch.cat([h.x for h in inputs[2:]], dim=1)


class SearchBackbone:
    """The stem and the stacked search cells of the DARTS supernet, with the channel counts a head
    on top needs: the outputs of the last two cells (`c_prev_prev`, `c_prev`), the last cell's
    channels per node (`channels`) and whether it reduced (`reduction_prev`)."""

    def __init__(self, C: int, layers: int, in_channels: int, primitives: tuple[str, ...], nodes: int,
                 stem_multiplier: int):
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_curr *= 2
            self.cells.append(SearchCell(nodes, c_prev_prev, c_prev, c_curr, reduction, reduction_prev, primitives))
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
    ):
        """`normalised`: LDAM-DRW's cosine classifier (space/heads.py) instead of a linear one."""
        super().__init__()
        self.primitives = tuple(primitives)
        # NHWC activations: the same values, but pooling and depthwise convolutions vectorise over
        # channels (on a 2-core CPU the DARTS search step runs ~1.7x faster; see benchmarks/RESULTS.md).
        self.channels_last = channels_last
        self.nodes = nodes
        self.num_classes = num_classes
        self.relaxation = make_relaxation(relaxation)

        backbone = SearchBackbone(C, layers, in_channels, self.primitives, nodes, stem_multiplier)
        self.stem, self.cells = backbone.stem, backbone.cells
        self.feature_dim = backbone.c_prev
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = make_classifier(backbone.c_prev, num_classes, normalised)

        shape = (num_edges(nodes), len(self.primitives))
        self.alpha_normal = nn.Parameter(alpha_init_std * torch.randn(shape))
        self.alpha_reduce = nn.Parameter(alpha_init_std * torch.randn(shape))

    # --- weights and architecture kept apart --------------------------------------------------
    _ARCH_NAMES = ("alpha_normal", "alpha_reduce")

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Operation weights only: α lives in the same module (so `.to()` and `state_dict()` carry
        it) but is trained by its own optimizer, so it must never reach the weight optimizer."""
        for name, param in super().named_parameters(prefix, recurse, remove_duplicate):
            if name.removeprefix(prefix + "." if prefix else "") not in self._ARCH_NAMES:
                yield name, param

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha_normal, self.alpha_reduce]

    # --- forward ------------------------------------------------------------------------------
    def relaxed_weights(self) -> dict[str, torch.Tensor]:
        """Edge weights under the current relaxation: {'normal': (edges, ops), 'reduce': ...}."""
        return {"normal": self.relaxation(self.alpha_normal), "reduce": self.relaxation(self.alpha_reduce)}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled features before the classifier (used by heads and self-supervision)."""
        weights = self.relaxed_weights()
        constants = {"normal": None, "reduce": None}
        if not any(w.requires_grad for w in weights.values()):  # evaluation: both read in one sync
            normal, reduce = torch.stack([weights["normal"], weights["reduce"]]).tolist()
            constants = {"normal": normal, "reduce": reduce}
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            kind = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, weights[kind], constants[kind])
        return self.global_pooling(s1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def genotype(self, rule: str = "darts", threshold: float = 0.85) -> Genotype:
        weights = {k: v.detach().cpu() for k, v in self.relaxed_weights().items()}
        return derive_genotype(
            weights["normal"], weights["reduce"], rule=rule, threshold=threshold, primitives=self.primitives
        )
