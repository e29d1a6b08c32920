"""DARTS (Liu et al., 2019): bilevel search with first- or second-order architecture gradients.

One `step` = an α step on a validation batch, then a weight step on a training batch, as in the
original code. The second-order α gradient (DARTS's, with its finite-difference Hessian-vector product):

    w' = w − ξ (momentum·buf + ∇w L_train(w, α) + wd·w)
    ∇α ≈ ∇α L_val(w', α) − ξ · (∇α L_train(w⁺, α) − ∇α L_train(w⁻, α)) / 2ε
    w± = w ± ε ∇w' L_val(w', α),  ε = r / ‖∇w' L_val(w', α)‖,  r = `hvp_radius` (0.01)

with ξ the current weight learning rate. As in the original code, the forward passes at w, w⁺ and w⁻
update the supernet's BatchNorm running statistics; the one at w' does not (it runs on a copy).

`search.cures` adds the cures for DARTS's skip collapse that FairDARTS (Chu et al., 2020) reviews (its Section
6.3): dropout on skip connections or on every operation, early stopping by skip count or by the α Hessian's
dominant eigenvalue (search/cures.py). A rule that fires sets `stop`, which ends the search after that epoch.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.func import functional_call

from ltnas import distributed
from ltnas.config import CuresConfig, SearchConfig
from ltnas.search.cures import (DropoutMixing, HessianStop, dominant_eigenvalue, dropout_rate, skip_count,
                                skip_count_stop)
from ltnas.space.search_network import SearchNetwork
from ltnas.train.precision import autocast

# Offset of the power iteration's generator seed from the search seed (batch streams +1..+3, GDAS +4, noise +5,
# random cells +6).
HESSIAN_SEED = 7

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]


def gradients(loss: torch.Tensor, inputs) -> tuple[torch.Tensor, ...]:
    """Gradients of `loss` w.r.t. `inputs` only; zeros for inputs it does not use (a cell type
    absent from a very small network, a classifier row of an unseen class)."""
    return torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True)


class DartsSearch:
    """The DARTS strategy: softmax relaxation, SGD on weights, Adam on α."""

    relaxation = "softmax"

    def __init__(self, network: SearchNetwork, config: SearchConfig, criterion: Criterion,
                 arch_criterion: Criterion | None = None):
        self.network = network
        self.config = config
        self.criterion = criterion
        # The α objective may differ from the weights' (e.g. class-balanced validation loss).
        self.arch_criterion = arch_criterion or criterion
        self.weights = self.weight_parameters()
        self.alphas = network.arch_parameters()
        self.w_optimizer = torch.optim.SGD(
            self.weights, config.sgd.lr, momentum=config.sgd.momentum, weight_decay=config.sgd.weight_decay
        )
        self.w_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_optimizer, T_max=config.epochs, eta_min=config.sgd.lr_min
        )
        self.a_optimizer = torch.optim.Adam(
            self.alphas, config.arch_lr, betas=tuple(config.arch_betas), weight_decay=config.arch_weight_decay
        )
        self.epoch = 0
        self.stop: dict | None = None  # set by an early-stopping rule (search.cures) at the end of an epoch
        self.last_val: Batch | None = None  # the epoch's last validation batch (the Hessian's)
        self.measured: dict[str, float] = {}  # what the rules measured this epoch, for the metrics row
        # search.cures is DARTS's own (methods.py: only darts reads it); strategies built on this one ignore it
        self.cures = cures = config.cures if type(self) is DartsSearch else CuresConfig()
        self.hessian = (HessianStop(cures.stop_hessian, cures.hessian_lag, cures.hessian_window,
                                    cures.hessian_rollback) if cures.stop_hessian is not None else None)
        self.hessian_generator = torch.Generator().manual_seed(torch.initial_seed() + HESSIAN_SEED)

    @classmethod
    def network_options(cls, config: SearchConfig) -> dict:
        """How this strategy shapes the supernet (`SearchNetwork` keyword arguments): its relaxation,
        and for strategies that change the mixed operation their mixing (space/mixing.py); DARTS's own
        with dropout (search.cures) mixes through `DropoutMixing`."""
        cures = config.cures
        if cls is DartsSearch and (cures.skip_dropout > 0 or cures.op_dropout > 0):
            return {"relaxation": cls.relaxation, "mixing": DropoutMixing()}
        return {"relaxation": cls.relaxation}

    def weight_parameters(self) -> list[nn.Parameter]:
        """What the weight optimizer trains: the supernet's operation weights (never α)."""
        return list(self.network.parameters())

    @property
    def lr(self) -> float:
        return self.w_optimizer.param_groups[0]["lr"]

    def set_epoch(self, epoch: int) -> None:
        """Called by the loop before each epoch (epoch counted from 0)."""
        self.epoch = epoch
        for criterion in {self.criterion, self.arch_criterion}:
            if hasattr(criterion, "set_epoch"):
                criterion.set_epoch(epoch)
        mixing = getattr(self.network, "mixing", None)
        if isinstance(mixing, DropoutMixing):
            cures = self.cures
            mixing.skip_rate = dropout_rate(cures.skip_dropout, cures.dropout_decay, epoch)
            mixing.op_rate = dropout_rate(cures.op_dropout, cures.dropout_decay, epoch)

    def end_epoch(self) -> None:
        self.w_scheduler.step()
        self.measured = {}
        cures, epoch = self.cures, self.epoch + 1
        if self.hessian is not None and self.last_val is not None:
            self.measured["hessian_eigenvalue"] = value = self.hessian_eigenvalue(self.last_val)
            self.stop = self.stop or self.hessian.update(value)
        if cures.stop_skips is not None:
            genotype = self.network.genotype(self.config.derive, self.config.threshold)
            self.measured["normal_skips"] = skip_count(genotype)
            self.stop = self.stop or skip_count_stop(genotype, cures.stop_skips, epoch)

    def epoch_metrics(self) -> dict[str, float]:
        """What the early-stopping rules measured this epoch (λ_max, the normal cell's skips), for its metrics row."""
        return dict(self.measured)

    def hessian_eigenvalue(self, batch: Batch) -> float:
        """λ_max of ∇²_α L_val(w, α) on `batch` by power iteration (search/cures.py), in float32, with BatchNorm
        normalising by the batch but leaving its running statistics as they are."""
        from ltnas.search.oneshot import frozen_bn_statistics

        x, y = batch
        self.network.train()
        with frozen_bn_statistics(self.network), torch.enable_grad():
            loss = self.arch_criterion(self.network(x), y)
            grads = torch.autograd.grad(loss, self.alphas, create_graph=True, allow_unused=True)
            return dominant_eigenvalue(grads, self.alphas, self.cures.hessian_iterations,
                                       self.hessian_generator)

    # --- one search step ----------------------------------------------------------------------
    def step(self, train: Batch, val: Batch) -> dict[str, float]:
        self.network.train()
        self.last_val = val
        with autocast(self.alphas[0].device, self.config.amp):
            self.arch_step(train, val)
            return self.weight_step(train)

    def arch_step(self, train: Batch, val: Batch) -> None:
        # Under torchrun each rank has its own shard: the mean gradient keeps α the same on every rank.
        for alpha, grad in zip(self.alphas, distributed.average_tensors(self.arch_gradients(train, val))):
            alpha.grad = grad
        self.a_optimizer.step()

    def arch_gradients(self, train: Batch, val: Batch) -> list[torch.Tensor]:
        """∇α of the architecture objective; strategies that add α terms extend this."""
        if self.config.order == "second":
            return self.second_order_arch_grads(train, val)
        x_val, y_val = val
        loss = self.arch_criterion(self.network(x_val), y_val)
        return list(gradients(loss, self.alphas))  # α only: no weight gradients computed

    def weight_step(self, train: Batch) -> dict[str, float]:
        x, y = train
        self.w_optimizer.zero_grad(set_to_none=True)
        logits = self.network(x)
        loss = self.criterion(logits, y)
        loss.backward(inputs=self.weights)  # weights only: α gets its gradient in arch_step
        distributed.average_gradients(self.weights)
        nn.utils.clip_grad_norm_(self.weights, self.config.sgd.grad_clip)
        self.w_optimizer.step()
        return {"loss": loss.item(), "correct": (logits.argmax(1) == y).sum().item(), "count": len(y)}

    # --- second order -------------------------------------------------------------------------
    def second_order_arch_grads(self, train: Batch, val: Batch) -> list[torch.Tensor]:
        (x_train, y_train), (x_val, y_val) = train, val

        def train_loss(params: dict[str, torch.Tensor] | None) -> torch.Tensor:
            return self.criterion(self.network(x_train), y_train)

        def val_loss(params: dict[str, torch.Tensor]) -> torch.Tensor:
            # tie_weights=False: torch's tying swaps a module reached by two names (S₂'s `classifier`, also
            # `head.classifier`) back as new Parameter objects, which the weight optimizer would no longer train
            return self.arch_criterion(functional_call(self.network, params, (x_val,), tie_weights=False), y_val)

        return unrolled_arch_gradients(self.network, self.w_optimizer, self.alphas, train_loss, val_loss,
                                       self.config.hvp_radius)

    # --- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "network": self.network.state_dict(),
            "w_optimizer": self.w_optimizer.state_dict(),
            "w_scheduler": self.w_scheduler.state_dict(),
            "a_optimizer": self.a_optimizer.state_dict(),
            "cures": {"stop": self.stop, "hessian": self.hessian.state_dict() if self.hessian else None,
                      "hessian_generator": self.hessian_generator.get_state()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state["network"])
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.w_scheduler.load_state_dict(state["w_scheduler"])
        self.w_scheduler.T_max = self.config.epochs  # `compare --resume --set search.epochs=N` extends the cosine
        self.a_optimizer.load_state_dict(state["a_optimizer"])
        cures = state.get("cures")  # absent from checkpoints written before search.cures
        if cures is not None:
            self.stop = cures["stop"]
            if self.hessian is not None and cures["hessian"] is not None:
                self.hessian.load_state_dict(cures["hessian"])
            self.hessian_generator.set_state(cures["hessian_generator"])


def unrolled_arch_gradients(network: nn.Module, optimizer: torch.optim.Optimizer, alphas: list[torch.Tensor],
                            train_loss: Callable[[None], torch.Tensor],
                            val_loss: Callable[[dict[str, torch.Tensor]], torch.Tensor],
                            hvp_radius: float) -> list[torch.Tensor]:
    """DARTS's second-order α gradient (module docstring) for any strategy, each weight w with the learning
    rate ξ_w, momentum and weight decay of its group in `optimizer` (a virtual SGD step):

        w' = w − ξ_w (momentum·buf + ∇w L_train + wd·w)
        ∇α ≈ ∇α L_val(w', α) − ξ_max (∇α L_train(w⁺, α) − ∇α L_train(w⁻, α)) / 2ε
        w± = w ± ε u,  u = (ξ_w / ξ_max) ∇w' L_val(w', α),  ε = hvp_radius / ‖u‖

    since d/dα L_val(w'(α), α) = ∇α L_val − ∇²_{α,w} L_train · diag(ξ_w) ∇w' L_val. With one ξ for every weight
    (DARTS) u is ∇w' L_val and this is DARTS's formula operation for operation. A weight whose ξ is 0 (a frozen
    part) does not move; with every ξ 0, w' = w and the result is the first-order gradient.

    `train_loss(None)` is the training loss at the network's own weights (its forward passes move the BatchNorm
    statistics, as the original code's do); `val_loss(params)` the validation loss with the weights replaced by
    `params` (name → tensor, BatchNorm buffers included, through `torch.func.functional_call`).
    """
    names = {id(p): name for name, p in network.named_parameters()}
    groups = [(w, group) for group in optimizer.param_groups for w in group["params"]]
    weights = [w for w, _ in groups]
    xi_max = max(group["lr"] for _, group in groups)

    grads = gradients(train_loss(None), weights)  # one virtual SGD step (momentum and weight decay included)
    unrolled = {}
    for (w, group), g in zip(groups, grads):
        buf = optimizer.state.get(w, {}).get("momentum_buffer")
        decay = group["weight_decay"]
        step = g + decay * w if buf is None else group["momentum"] * buf + g + decay * w
        unrolled[names[id(w)]] = (w - group["lr"] * step).detach().requires_grad_(True)

    # The forward pass at w' runs on copies of the BatchNorm buffers, as the original code runs it on a copy of
    # the model: it must not move the supernet's running statistics.
    buffers = {name: b.clone() for name, b in network.named_buffers()}
    grads = gradients(val_loss({**unrolled, **buffers}), [*alphas, *unrolled.values()])
    d_alpha, d_unrolled = grads[: len(alphas)], grads[len(alphas):]
    if xi_max == 0.0:
        return list(d_alpha)
    direction = [g if group["lr"] == xi_max else (group["lr"] / xi_max) * g for (_, group), g in zip(groups, d_unrolled)]
    hessian_vector = _hessian_vector_product(weights, alphas, direction, train_loss, hvp_radius)
    if hessian_vector is None:
        return list(d_alpha)
    return [da - xi_max * hv for da, hv in zip(d_alpha, hessian_vector)]


def _hessian_vector_product(weights: list[torch.Tensor], alphas: list[torch.Tensor], vector: list[torch.Tensor],
                            train_loss: Callable[[None], torch.Tensor], hvp_radius: float) -> list[torch.Tensor] | None:
    """∇²_{α,w} L_train · v by central differences of ∇α L_train around w along v (None when v = 0)."""
    norm = torch.cat([v.flatten() for v in vector]).norm()
    if norm.item() == 0.0:
        return None
    eps = hvp_radius / norm

    def alpha_grads_at(scale: float) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            for w, v in zip(weights, vector):
                w.add_(v, alpha=scale * eps.item())
        return gradients(train_loss(None), alphas)

    grads_plus = alpha_grads_at(+1.0)   # w + εv
    grads_minus = alpha_grads_at(-2.0)  # w − εv
    with torch.no_grad():
        for w, v in zip(weights, vector):
            w.add_(v, alpha=eps.item())  # back to w
    return [(p - m) / (2 * eps) for p, m in zip(grads_plus, grads_minus)]
