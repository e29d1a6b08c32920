"""Architecture- and representation-level losses used by the search strategies."""

from __future__ import annotations

from typing import Sequence

import torch

from ltnas.errors import LtnasError


def zero_one_loss(weights: torch.Tensor | Sequence[torch.Tensor], kind: str = "l2") -> torch.Tensor:
    """FairDARTS' zero-one loss on relaxed weights σ(α), pooled over every tensor given.

    l2 (the proposed form): −mean((σ − 0.5)²);  l1 (the paper's control, printed in SSF-NAS):
    −mean(|σ − 0.5|). Minimising it pushes every weight away from 0.5, towards 0 or 1, so that
    discretising the architecture afterwards loses little.
    """
    flat = torch.cat([w.flatten() for w in ([weights] if torch.is_tensor(weights) else weights)])
    if kind == "l2":
        return -(flat - 0.5).pow(2).mean()
    if kind == "l1":
        return -(flat - 0.5).abs().mean()
    raise LtnasError(f"unknown zero-one loss kind '{kind}'; choose l2 (proposed) or l1")


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 0.0051, eps: float = 1e-5) -> torch.Tensor:
    """Barlow Twins: Σ_i (1 − c_ii)² + λ Σ_{i≠j} c_ij², with c = BN(z1)ᵀ BN(z2) / N.

    BN is affine-free batch standardisation (biased variance, as BatchNorm1d in training mode), so
    c is the cross-correlation matrix of the two views' embeddings over the batch.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise LtnasError(f"Barlow Twins needs two (N, D) embeddings of the same shape, got {tuple(z1.shape)} "
                         f"and {tuple(z2.shape)}")
    if z1.shape[0] < 2:
        raise LtnasError("Barlow Twins needs at least 2 samples per batch to normalise over; raise the batch size")

    def standardise(z: torch.Tensor) -> torch.Tensor:
        return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps)

    c = standardise(z1).T @ standardise(z2) / z1.shape[0]
    on_diagonal = (torch.diagonal(c) - 1).pow(2).sum()
    off_diagonal = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on_diagonal + lambd * off_diagonal
