"""Training criteria built from a `LongTailConfig`: a loss plus a re-weighting schedule.

The criterion is the one object search, retrain and adaptation share, so a long-tail technique
written here is available to all of them.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ltnas.config import LongTailConfig
from ltnas.longtail.weights import ClassBalanced, DeferredReweighting, Reweighting


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
