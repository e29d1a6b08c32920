"""DARTS's cures for its skip collapse, as FairDARTS (Chu et al., 2020) reviews them in its Section 6.3, as options of
the DARTS strategy (`search.cures`):

- dropout on the skip connections: P-DARTS (Chen et al., 2019) puts an operation-level dropout after every
  stride-1 skip connection (its `Identity` ops; a reducing skip is a factorized reduction), of rate
  p_e = p · exp(−decay · e) at search epoch e;
- dropout on every operation: RobustDARTS (Zela et al., 2020) regularises every operation; FairDARTS reads it as
  dropout "to all operations", which is what this does (element dropout on every operation's output, same p_e);
- early stopping by skip count: DARTS+ (Liang et al., 2019)'s criterion 1 stops the search once the derived normal
  cell has ≥ M skip connections (M = 2), and keeps that epoch's cell;
- early stopping by curvature: RobustDARTS's DARTS-ES tracks λ_max, the dominant eigenvalue of ∇²_α L_val, and
  stops at epoch i once λ̄_i / λ̄_(i−k) > 1/0.75, λ̄ the mean of λ_max over the last w epochs (k = w = 5),
  returning the architecture of epoch i − k.

Dropout is element-wise and inverted (kept values × 1/(1 − p)), drawn from torch's generator (which the
checkpoint saves), only while training. λ_max comes from power iteration with exact Hessian-vector products
(double backward) on the epoch's last validation batch (RobustDARTS: one validation batch), with BatchNorm
normalising by that batch's statistics and leaving its running statistics alone. The rules decide from state the
checkpoint holds (α, the λ_max history, the power iteration's generator), so a resumed search stops where an
uninterrupted one does.
"""

from __future__ import annotations

import math
from statistics import fmean
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ltnas import distributed
from ltnas.space.mixing import EdgeInput, EdgeMixing, MixedEdge

SKIP = "skip_connect"


def dropout_rate(rate: float, decay: float, epoch: int) -> float:
    """p_e = p · exp(−decay · e) (P-DARTS's schedule with decay 0.2; decay 0: constant p)."""
    return rate * math.exp(-decay * epoch)


class DropoutEdge(MixedEdge):
    """A DARTS edge whose chosen operations' outputs pass through dropout while training: the skip connection
    (when stride 1) at its mixing's `skip_rate`, every operation at its `op_rate` (the two compose)."""

    def __init__(self, channels: int, stride: int, primitives: tuple[str, ...], mixing: "DropoutMixing"):
        super().__init__(channels, stride, primitives)
        self.mixing = mixing  # shared by every edge: the current rates
        self.skip = self.primitives.index(SKIP) if SKIP in self.primitives and stride == 1 else None

    def _run(self, i: int, inputs: EdgeInput) -> torch.Tensor:
        out = super()._run(i, inputs)
        if not self.training:
            return out
        if i == self.skip and self.mixing.skip_rate > 0:
            out = F.dropout(out, self.mixing.skip_rate)
        if self.mixing.op_rate > 0:
            out = F.dropout(out, self.mixing.op_rate)
        return out


class DropoutMixing(EdgeMixing):
    """DARTS' weighted sum with dropout on skip connections and/or every operation (`DropoutEdge`); no parameters
    besides α."""

    name = "dropout"

    def __init__(self, skip_rate: float = 0.0, op_rate: float = 0.0):
        self.skip_rate = skip_rate
        self.op_rate = op_rate

    def make_edge(self, channels: int, stride: int, primitives: tuple[str, ...]) -> nn.Module:
        return DropoutEdge(channels, stride, primitives, self)


# --- early stopping -------------------------------------------------------------------------------
def skip_count(genotype) -> int:
    """Skip connections in the normal cell of a derived genotype."""
    return sum(1 for edge in genotype.normal if edge.op == SKIP)


def skip_count_stop(genotype, limit: int, epoch: int) -> dict[str, Any] | None:
    """DARTS+'s criterion 1: a stop record once the normal cell of `genotype` (derived after `epoch`, 1-based) has
    ≥ `limit` skip connections; that epoch's genotype is kept."""
    count = skip_count(genotype)
    if count < limit:
        return None
    return {"rule": "skip_count", "epoch": epoch, "genotype_epoch": epoch,
            "reason": f"the normal cell derived after epoch {epoch} has {count} skip connections (limit "
                      f"search.cures.stop_skips = {limit}; DARTS+'s early stopping)"}


def dominant_eigenvalue(grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor], iterations: int,
                        generator: torch.Generator) -> float:
    """λ of largest |λ| of H = ∂grads/∂params (a Hessian when `grads` = ∇L computed with create_graph) by power
    iteration: v₀ ~ N(0, I)/‖·‖, then Hv by one backward pass, λ = vᵀHv, v ← Hv/‖Hv‖. Under torchrun every
    Hv is averaged over ranks: the Hessian of the mean loss. Returns 0 when H = 0."""
    pairs = [(g, p) for g, p in zip(grads, params) if g is not None and g.requires_grad]
    if not pairs:
        return 0.0
    grads, params = [g for g, _ in pairs], [p for _, p in pairs]
    vector = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params]
    vector = _normalised(vector)
    value = 0.0
    for _ in range(iterations):
        product = torch.autograd.grad(grads, params, grad_outputs=vector, retain_graph=True, allow_unused=True,
                                      materialize_grads=True)
        product = distributed.average_tensors(product)
        value = float(sum((v * h).sum() for v, h in zip(vector, product)))
        if _norm(product) == 0:
            return 0.0
        vector = _normalised(product)
    return value


def _norm(tensors: Sequence[torch.Tensor]) -> float:
    return math.sqrt(sum(float((t * t).sum()) for t in tensors))


def _normalised(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    norm = _norm(tensors)
    return [t.detach() / norm for t in tensors]


class HessianStop:
    """RobustDARTS's DARTS-ES rule on a λ_max history: at epoch i (1-based) with λ̄_i = mean(λ_(i−w+1) … λ_i),
    stop once i ≥ w + k and λ̄_i / λ̄_(i−k) > `threshold`; the genotype kept is epoch i − k's (`rollback`) or i's."""

    def __init__(self, threshold: float, lag: int, window: int, rollback: bool):
        self.threshold, self.lag, self.window, self.rollback = threshold, lag, window, rollback
        self.values: list[float] = []

    def mean(self, end: int) -> float:
        """λ̄ at epoch `end` (1-based): the mean of the `window` values up to it."""
        return fmean(self.values[end - self.window:end])

    def update(self, value: float) -> dict[str, Any] | None:
        """Record λ_max of the epoch just finished; a stop record if the rule fires."""
        self.values.append(value)
        epoch = len(self.values)
        if epoch < self.window + self.lag:
            return None
        now, before = self.mean(epoch), self.mean(epoch - self.lag)
        if before <= 0 or now / before <= self.threshold:
            return None
        kept = epoch - self.lag if self.rollback else epoch
        return {"rule": "hessian", "epoch": epoch, "genotype_epoch": kept,
                "reason": f"the mean dominant eigenvalue of the α Hessian of the validation loss grew from "
                          f"{before:.4g} (epoch {epoch - self.lag}) to {now:.4g} (epoch {epoch}), ratio "
                          f"{now / before:.3f} > search.cures.stop_hessian = {self.threshold:g} (RobustDARTS's "
                          f"DARTS-ES); the genotype of epoch {kept} is kept"}

    def state_dict(self) -> dict:
        return {"values": list(self.values)}

    def load_state_dict(self, state: dict) -> None:
        self.values = list(state["values"])
