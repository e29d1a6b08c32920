"""How an edge of the supernet mixes its candidate operations, and which architecture parameters
besides α the mixing has: the seam through which a search strategy shapes the space.

DARTS' mixing (`EdgeMixing`) is the weighted sum Σ_i w_i · op_i(x) on every channel, with α alone.
A strategy that changes the mixed operation supplies its own (PC-DARTS: a partial-channel edge and
per-edge β, see search/pcdarts.py) and passes it to `SearchNetwork(mixing=...)`.
"""

from __future__ import annotations

import torch
from torch import nn

from ltnas.space.convolutions import is_nhwc
from ltnas.space.primitives import make_op


class EdgeMixing:
    """The weighted sum of every candidate operation on every channel; no parameters besides α."""

    name = "weighted_sum"

    def make_edge(self, channels: int, stride: int, primitives: tuple[str, ...]) -> nn.Module:
        """One edge's module, with DARTS' `mix(inputs, weights, constant)` interface."""
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

    def read_symbol(self, relaxed: str) -> str:
        """The name of what `read` gives, given the relaxation's (`relaxed`, e.g. "softmax(α)")."""
        return relaxed

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


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
        self._partial: dict[int, "EdgeInput"] = {}

    def partial(self, k: int) -> "EdgeInput":
        """The first C/k channels, as every partial-channel edge leaving this node sees them (PC-DARTS),
        with their own shared ReLU and poolings."""
        if k not in self._partial:
            part = self.x[:, : self.x.shape[1] // k]
            if is_nhwc(self.x):
                part = part.contiguous(memory_format=torch.channels_last)  # a channel slice of NHWC is strided
            self._partial[k] = EdgeInput(part)
        return self._partial[k]

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
        self.channels = channels
        self.primitives = tuple(primitives)
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

    def op(self, name: str) -> nn.Module:
        """The candidate operation `name` of this edge (pooling: with the BatchNorm that follows it)."""
        return self.ops[self.primitives.index(name)]

    def pick(self, inputs: EdgeInput, weights: torch.Tensor, index: int) -> torch.Tensor:
        """One sampled operation (GDAS): w_k · op_k(x) + Σ_{j≠k} w_j, only op_k run.

        With straight-through one-hot weights the sum is exactly 0 in value; it is the authors' code
        (AutoDL-Projects `forward_gdas`), where every w_j also receives the output's summed gradient."""
        out = weights[index] * self._run(index, inputs)
        others = [i for i in range(len(self.ops)) if i != index]
        return out + weights[others].sum() if others else out

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
        """op_i(x); `none` (never in `active`) only when a sampler picks it."""
        op, kind = self.ops[i], self._kinds[i]
        if kind == "relu":
            return op.forward_after_relu(inputs.relu())
        if kind == "pool":
            return op[1](inputs.pooled(op[0]))
        return op(inputs.x)
