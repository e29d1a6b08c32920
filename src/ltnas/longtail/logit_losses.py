"""Losses that reshape the logits of rare classes instead of (or besides) re-weighting them.

Each is a callable `(logits, targets, weight) -> loss`, where `weight` is the per-class weight of the
current re-weighting schedule (None = unweighted). A weighted batch is averaged like PyTorch's
weighted cross-entropy: Σ_i w_{y_i} ℓ_i / Σ_i w_{y_i}, so every loss here equals plain
cross-entropy when its own knob is off (focal γ = 0, LDAM margin 0 and scale 1, τ = 0).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ltnas.errors import LtnasError


def _counts_tensor(counts: Sequence[int]) -> torch.Tensor:
    n = torch.as_tensor(list(counts), dtype=torch.float64)
    if n.numel() == 0 or (n < 0).any():
        raise LtnasError("class counts must be a non-empty list of non-negative integers")
    if not (n > 0).any():
        raise LtnasError("every class count is 0; the loss needs at least one class with training images")
    return n


def _weighted_mean(per_sample: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return per_sample.mean()
    w = weight.to(per_sample.dtype)[targets]
    return (w * per_sample).sum() / w.sum()


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    weight = None if weight is None else weight.to(logits.dtype)
    return F.cross_entropy(logits, targets, weight=weight)


class FocalLoss:
    """Lin et al. (2017): ℓ = −(1 − p_t)^γ log p_t, which fades out the well-classified (mostly head) samples."""

    def __init__(self, gamma: float = 2.0):
        if gamma < 0:
            raise LtnasError(f"focal gamma must be >= 0, got {gamma}; 0 is plain cross-entropy, 2 the usual value")
        self.gamma = gamma

    def __call__(self, logits, targets, weight=None):
        log_p = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        per_sample = -((1 - log_p.exp()) ** self.gamma) * log_p
        return _weighted_mean(per_sample, targets, weight)


def ldam_margins(counts: Sequence[int], max_margin: float = 0.5) -> torch.Tensor:
    """LDAM's per-class margins m_c ∝ n_c^(−1/4), scaled so that the rarest class gets `max_margin`.

    A class without training images is never a target, so its margin never matters; it gets `max_margin`.
    """
    if max_margin <= 0:
        raise LtnasError(f"LDAM max_margin must be > 0, got {max_margin}; LDAM-DRW uses 0.5")
    n = _counts_tensor(counts)
    present = n > 0
    margins = torch.full_like(n, float(max_margin))
    raw = n[present] ** -0.25
    margins[present] = raw * (max_margin / raw.max())
    return margins.float()


class LDAMLoss:
    """Cao et al. (2019): cross-entropy of s · (z − m_y · onehot(y)): the true class must win by a margin
    that grows towards the tail. As in LDAM-DRW's code, z are cosines in [−1, 1]: every network built for a
    stage whose loss is LDAM ends in the normalised classifier (`ltnas.space.heads.NormedLinear`), so that
    s = 30 and the margins keep their meaning as training goes on."""

    def __init__(self, counts: Sequence[int], max_margin: float = 0.5, scale: float = 30.0):
        if scale <= 0:
            raise LtnasError(f"LDAM scale must be > 0, got {scale}; LDAM-DRW uses 30")
        self.margins = ldam_margins(counts, max_margin)
        self.scale = scale

    def __call__(self, logits, targets, weight=None):
        margin = self.margins.to(logits.device, logits.dtype)[targets]
        shifted = logits.scatter_add(1, targets[:, None], -margin[:, None])
        return cross_entropy(self.scale * shifted, targets, weight)


class LogitAdjustedLoss:
    """Menon et al. (2021): cross-entropy of z + τ log π, with π the training class prior. The model
    learns logits free of the prior, so its plain argmax at test time is balanced. τ = 1 is the
    balanced softmax (Ren et al., 2020)."""

    def __init__(self, counts: Sequence[int], tau: float = 1.0):
        n = _counts_tensor(counts)
        # An absent class gets a vanishing (not −∞) prior: its logit is pushed far down, never to NaN.
        self.log_prior = torch.log((n / n.sum()).clamp_min(1e-12)).float()
        self.tau = tau

    def __call__(self, logits, targets, weight=None):
        adjusted = logits + self.tau * self.log_prior.to(logits.device, logits.dtype)
        return cross_entropy(adjusted, targets, weight)
