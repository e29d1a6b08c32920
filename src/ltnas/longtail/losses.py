"""Training criteria built from a `LongTailConfig`: a loss plus a re-weighting schedule.

The criterion is the one object search, retrain and adaptation share, so a long-tail technique
written here is available to all of them.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ltnas.config import LongTailConfig, SearchConfig
from ltnas.longtail.logit_losses import FocalLoss, LDAMLoss, LogitAdjustedLoss, cross_entropy
from ltnas.longtail.weights import ClassBalanced, DeferredReweighting, InverseFrequency, Reweighting

LossFunction = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


class LongTailLoss:
    """A loss L (cross-entropy by default) whose class weights w_t follow a schedule; call `set_epoch`
    before each epoch. With `rw_lambda` = λ it is IMB-NAS (Yao, 2024)'s eq. 1,

        L_total = L(z, y) + λ · L_RW(z, y),   L_RW = L with the class weights w_t,

    where L_RW is there only while the schedule gives weights (DRW: from its switch epoch; before it,
    L_total = L). Without λ the loss is L_RW alone (L itself while no weights apply)."""

    def __init__(self, reweighting: Reweighting, device: torch.device | str = "cpu",
                 loss: LossFunction = cross_entropy, rw_lambda: float | None = None):
        self.reweighting = reweighting
        self.device = torch.device(device)
        self.loss = loss
        self.rw_lambda = rw_lambda
        self.weight: torch.Tensor | None = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        weight = self.reweighting.weights_at(epoch)
        self.weight = None if weight is None else weight.to(self.device)

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.rw_lambda is None or self.weight is None:
            return self.loss(logits, targets, self.weight)
        return self.loss(logits, targets, None) + self.rw_lambda * self.loss(logits, targets, self.weight)


def drw_switch_epoch(config: LongTailConfig, epochs: int) -> int:
    """The configured DRW epoch, or 80% of training (160 of 200 in LDAM-DRW)."""
    return config.drw_epoch if config.drw_epoch is not None else int(0.8 * epochs)


def build_criterion(config: LongTailConfig, counts: Sequence[int], epochs: int,
                    device: torch.device | str = "cpu") -> LongTailLoss:
    if config.reweight == "class_balanced":
        reweighting: Reweighting = ClassBalanced(counts, config.beta)
    elif config.reweight == "drw":
        reweighting = DeferredReweighting(counts, config.beta, drw_switch_epoch(config, epochs))
    else:
        reweighting = Reweighting()
    return LongTailLoss(reweighting, device, loss_function(config, counts), config.rw_lambda)


def loss_function(config: LongTailConfig, counts: Sequence[int]) -> LossFunction:
    """The `loss` of a long-tail section: ce, focal, ldam, logit_adjusted (τ) or balanced_softmax (τ = 1)."""
    if config.loss == "focal":
        return FocalLoss(config.focal_gamma)
    if config.loss == "ldam":
        return LDAMLoss(counts, config.ldam_max_margin, config.ldam_scale)
    if config.loss == "logit_adjusted":
        return LogitAdjustedLoss(counts, config.tau)
    if config.loss == "balanced_softmax":
        return LogitAdjustedLoss(counts, 1.0)
    return cross_entropy


def build_arch_criterion(config: SearchConfig, counts: Sequence[int], device: torch.device | str = "cpu"):
    """The α step's validation loss (`search.arch_objective`).

    Plain CE on a long-tailed validation set is an average dominated by the head classes, so the
    architecture is chosen for them. The other objectives weigh every class alike (re-weighted CE)
    or score the balanced error directly (logit-adjusted CE). The papers use plain CE.
    """
    kind = config.arch_objective
    if kind == "balanced":
        return LongTailLoss(InverseFrequency(counts), device)
    if kind == "class_balanced":
        return LongTailLoss(ClassBalanced(counts, config.longtail.beta), device)
    if kind == "logit_adjusted":
        return LongTailLoss(Reweighting(), device, LogitAdjustedLoss(counts, config.arch_tau))
    return LongTailLoss(Reweighting(), device)
