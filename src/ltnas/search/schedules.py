"""Mixing-ratio schedules of the two-branch (BBN) search and the HLS learning-rate factor.

The mixing ratio μ_t weights the instance-sampling branch against the class-balanced one:
logits μ·o_ins + (1 − μ)·o_cls and loss μ·CE(·, y_ins) + (1 − μ)·CE(·, y_cls). A schedule maps the
epoch t (counted from 0) of T epochs to μ_t in [0, 1]; each is a small object so the search never
branches on its name (BBN's "combiner" idea).

    parabolic        1 − (t/T)²                           BBN; μ = 1 at t = 0
    reverse_sigmoid  1 − sigmoid(k (t − T/2) / (T/2))     HLS (Tang, 2024), eq. 18
    linear           1 − t/T
    cosine           (1 + cos(π t/T)) / 2
    constant         μ (e.g. 0.5 for continued training)

HLS (Tang, 2024, eq. 17) scales the backbone's α learning rate by 1 − exp(−τ μ_t).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ltnas.errors import LtnasError


@dataclass(frozen=True)
class Parabolic:
    def __call__(self, epoch: int, total_epochs: int) -> float:
        return 1.0 - (epoch / total_epochs) ** 2


@dataclass(frozen=True)
class ReverseSigmoid:
    k: float = 10.0  # steepness; the paper leaves it open

    def __call__(self, epoch: int, total_epochs: int) -> float:
        half = total_epochs / 2
        return 1.0 - 1.0 / (1.0 + math.exp(-self.k * (epoch - half) / half))


@dataclass(frozen=True)
class Linear:
    def __call__(self, epoch: int, total_epochs: int) -> float:
        return 1.0 - epoch / total_epochs


@dataclass(frozen=True)
class Cosine:
    def __call__(self, epoch: int, total_epochs: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * epoch / total_epochs))


@dataclass(frozen=True)
class Constant:
    mu: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.mu <= 1.0:
            raise LtnasError(f"a constant mixing ratio must lie in [0, 1], got {self.mu}; pick a value in between")

    def __call__(self, epoch: int, total_epochs: int) -> float:
        return self.mu


SCHEDULES = {
    "parabolic": Parabolic, "reverse_sigmoid": ReverseSigmoid, "linear": Linear, "cosine": Cosine,
    "constant": Constant,
}


def make_schedule(name: str, **params: float):
    """A schedule by name; `params` are its own (k for reverse_sigmoid, mu for constant)."""
    if name not in SCHEDULES:
        raise LtnasError(f"unknown mixing-ratio schedule '{name}'; choose from {', '.join(SCHEDULES)}")
    try:
        return SCHEDULES[name](**params)
    except TypeError:
        raise LtnasError(f"schedule '{name}' does not take {', '.join(params)}; "
                         "reverse_sigmoid takes k, constant takes mu, the others nothing") from None


def mixing_ratio(schedule: str, epoch: int, total_epochs: int, **params: float) -> float:
    """μ for `epoch` (counted from 0) of `total_epochs`: `mixing_ratio("parabolic", 0, 50)` is 1."""
    if total_epochs < 1:
        raise LtnasError(f"total_epochs must be >= 1, got {total_epochs}")
    return make_schedule(schedule, **params)(epoch, total_epochs)


def hls_factor(mu: float, tau: float) -> float:
    """Heterogeneous LR scheduling: the backbone α learning rate is multiplied by 1 − exp(−τ μ)."""
    if tau <= 0:
        raise LtnasError(f"HLS tau must be > 0, got {tau}; the paper's factor 1 − exp(−τμ) needs τ > 0")
    return 1.0 - math.exp(-tau * mu)
