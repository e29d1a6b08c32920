"""Training criteria built from a `LongTailConfig`: a loss plus a re-weighting schedule.

The criterion is the one object search, retrain and adaptation share, so a long-tail technique
written here is available to all of them.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ltnas.config import LongTailConfig, SearchConfig
from ltnas.longtail.weights import ClassBalanced, DeferredReweighting, InverseFrequency, Reweighting


class LongTailLoss:
    """Cross-entropy whose class weights follow a schedule; call `set_epoch` before each epoch."""

    def __init__(self, reweighting: Reweighting, device: torch.device | str = "cpu"):
        self.reweighting = reweighting
        self.device = torch.device(device)
        self.weight: torch.Tensor | None = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        weight = self.reweighting.weights_at(epoch)
        self.weight = None if weight is None else weight.to(self.device)

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.to(logits.dtype)
        return F.cross_entropy(logits, targets, weight=weight)


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
    return LongTailLoss(reweighting, device)


class LogitAdjustedLoss:
    """Logit-adjusted cross-entropy (Menon et al., 2021): CE(logits + τ·log π, y), π the class prior.

    Adding the log prior during training lets the raw logits fit the *balanced* error, so the loss
    stops rewarding a model for simply favouring frequent classes. A class without training images
    has prior 0; it gets log π = log(1 / (2N)) instead of −∞ so the loss stays finite.
    """

    def __init__(self, counts: Sequence[int], tau: float = 1.0, device: torch.device | str = "cpu"):
        n = torch.as_tensor(list(counts), dtype=torch.float64)
        prior = torch.where(n > 0, n, torch.full_like(n, 0.5)) / n.sum()
        self.tau = tau
        self.offset = (tau * prior.log()).float().to(device)

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits + self.offset.to(logits.dtype), targets)


def build_arch_criterion(config: SearchConfig, counts: Sequence[int], device: torch.device | str = "cpu"):
    """The α step's validation loss (`search.arch_objective`).

    Plain CE on a long-tailed validation set is an average dominated by the head classes, so the
    architecture is chosen for them. The other objectives weigh every class alike (re-weighted CE)
    or score the balanced error directly (logit-adjusted CE). The papers use plain CE.
    """
    kind = config.arch_objective
    if kind == "ce":
        return LongTailLoss(Reweighting(), device)
    if kind == "balanced":
        return LongTailLoss(InverseFrequency(counts), device)
    if kind == "class_balanced":
        return LongTailLoss(ClassBalanced(counts, config.longtail.beta), device)
    return LogitAdjustedLoss(counts, config.arch_tau, device)
