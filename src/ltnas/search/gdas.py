"""GDAS (Dong & Yang, CVPR 2019): one operation per edge, sampled by Gumbel-softmax.

Per edge, with Gumbel noise g_o = −log(E_o), E_o ~ Exp(1), and temperature τ
(authors' code, D-X-Y/AutoDL-Projects `search_model_gdas_nasnet.py`):

    p = softmax((log_softmax(α) + g) / τ),   k = argmax p,   h = one_hot(k) − p.detach() + p

The forward pass runs op_k only, as h_k · op_k(x) + Σ_{o≠k} h_o (the other terms are exactly 0 in
value; the gradient reaches α through p: straight-through). τ falls linearly over the search,
τ_e = τ_max − (τ_max − τ_min) · e / (E − 1), 10 → 0.1. Derivation and the α log use the expected
weights softmax(α), never a sample. Outside training (validation metrics, evaluating the supernet) the
forward pass runs each edge's most likely operation, argmax α, without noise (ltnas's choice: the
authors' model samples there too).

The noise comes from the strategy's own generator, saved in its checkpoint, so a resumed search
draws the same samples as an uninterrupted one.
"""

from __future__ import annotations

import torch

from ltnas.config import SearchConfig
from ltnas.search.darts import DartsSearch
from ltnas.space.relaxation import ForwardWeights, SoftmaxRelaxation

# Offset of the Gumbel generator's seed from the search seed (the batch streams use +1 and +2).
GUMBEL_SEED = 4


def tau_at(epoch: int, epochs: int, tau_max: float, tau_min: float) -> float:
    """τ_e = τ_max − (τ_max − τ_min) · e / (E − 1): τ_max at the first epoch, τ_min at the last."""
    if epochs <= 1:
        return tau_max
    return tau_max - (tau_max - tau_min) * epoch / (epochs - 1)


def gumbel_straight_through(alpha: torch.Tensor, tau: float, generator: torch.Generator | None
                            ) -> tuple[torch.Tensor, list[int]]:
    """(h, k): straight-through one-hot weights (edges, ops) and the sampled operation per edge.

    Redrawn while the noise or p holds an infinity or NaN, as the authors' code does."""
    while True:
        uniform = torch.empty_like(alpha).exponential_(generator=generator)
        gumbels = -uniform.log()
        probs = torch.softmax((alpha.log_softmax(dim=-1) + gumbels) / tau, dim=-1)
        if not (torch.isinf(gumbels).any() or torch.isinf(probs).any() or torch.isnan(probs).any()):
            break
    index = probs.argmax(dim=-1, keepdim=True)
    one_hot = torch.zeros_like(probs).scatter_(-1, index, 1.0)
    return one_hot - probs.detach() + probs, index.flatten().tolist()


class GumbelRelaxation(SoftmaxRelaxation):
    """Reads α as softmax(α); forwards a Gumbel straight-through sample (training) or argmax α (else)."""

    name = "gumbel"

    def __init__(self, tau: float = 10.0):
        self.tau = tau
        self.generator: torch.Generator | None = None  # set by the strategy (on α's device)

    def forward(self, alpha: torch.Tensor, training: bool) -> ForwardWeights:
        if not training:
            index = alpha.detach().argmax(dim=-1, keepdim=True)
            return ForwardWeights(torch.zeros_like(alpha).scatter_(-1, index, 1.0), index.flatten().tolist())
        weights, sampled = gumbel_straight_through(alpha, self.tau, self.generator)
        return ForwardWeights(weights, sampled)

    def __repr__(self) -> str:
        return f"GumbelRelaxation(tau={self.tau})"


class GdasSearch(DartsSearch):
    """DARTS' first-order step on the sampled supernet; τ set per epoch; the noise generator checkpointed."""

    relaxation = "gumbel"

    @classmethod
    def network_options(cls, config: SearchConfig) -> dict:
        return {**super().network_options(config), "relaxation": GumbelRelaxation(config.gdas.tau_max)}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        device = self.alphas[0].device
        self.generator = torch.Generator(device=device).manual_seed(torch.initial_seed() + GUMBEL_SEED)
        self.network.relaxation.generator = self.generator

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        gdas = self.config.gdas
        self.network.relaxation.tau = tau_at(epoch, self.config.epochs, gdas.tau_max, gdas.tau_min)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "gumbel_generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["gumbel_generator"])
