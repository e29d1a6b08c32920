"""Per-class loss weights and when to apply them."""

from __future__ import annotations

from typing import Sequence

import torch

from ltnas.errors import LtnasError


def class_balanced_weights(counts: Sequence[int], beta: float = 0.9999) -> torch.Tensor:
    """Cui et al.'s effective-number weights `w_c = (1 − β) / (1 − β^{n_c})`, normalised to sum to C.

    A class with no training image gets weight 0 (it never appears in the loss anyway).
    """
    if not 0 < beta < 1:
        raise LtnasError(f"beta must be in (0, 1), got {beta}; the usual value is 0.9999")
    n = torch.as_tensor(list(counts), dtype=torch.float64)
    if n.numel() == 0 or (n < 0).any():
        raise LtnasError("class counts must be a non-empty list of non-negative integers")
    present = n > 0
    weights = torch.zeros_like(n)
    weights[present] = (1.0 - beta) / (1.0 - beta ** n[present])
    return (weights * len(n) / weights.sum()).float()


def inverse_frequency_weights(counts: Sequence[int]) -> torch.Tensor:
    """w_c ∝ 1 / n_c, normalised to sum to C: every class then carries the same total weight."""
    n = torch.as_tensor(list(counts), dtype=torch.float64)
    if n.numel() == 0 or (n < 0).any():
        raise LtnasError("class counts must be a non-empty list of non-negative integers")
    weights = torch.where(n > 0, 1.0 / n.clamp_min(1), torch.zeros_like(n))
    return (weights * len(n) / weights.sum()).float()


class Reweighting:
    """Which class weights the loss uses at a given epoch (None = unweighted)."""

    def weights_at(self, epoch: int) -> torch.Tensor | None:
        return None


class ClassBalanced(Reweighting):
    def __init__(self, counts: Sequence[int], beta: float):
        self.weights = class_balanced_weights(counts, beta)

    def weights_at(self, epoch: int) -> torch.Tensor | None:
        return self.weights


class InverseFrequency(Reweighting):
    def __init__(self, counts: Sequence[int]):
        self.weights = inverse_frequency_weights(counts)

    def weights_at(self, epoch: int) -> torch.Tensor | None:
        return self.weights


class DeferredReweighting(ClassBalanced):
    """DRW (LDAM-DRW): learn features unweighted first, then re-balance the decision boundaries."""

    def __init__(self, counts: Sequence[int], beta: float, switch_epoch: int):
        super().__init__(counts, beta)
        self.switch_epoch = switch_epoch

    def weights_at(self, epoch: int) -> torch.Tensor | None:
        return self.weights if epoch >= self.switch_epoch else None
