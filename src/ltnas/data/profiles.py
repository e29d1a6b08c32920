"""Long-tail profiles: how many images each class keeps (the convention of LDAM-DRW (Cao et al., 2019)).

Class 0 is the head, class C-1 the tail. The arithmetic mirrors the reference code operation for
operation, so float rounding lands the same way and the published set sizes come out exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ltnas.errors import LtnasError

PROFILES = ("exp", "step", "balanced")


def imbalance_factor(ratio: float | None = None, factor: float | None = None) -> float:
    """n_min / n_max from exactly one of ratio (n_max / n_min, >= 1) or factor (in (0, 1])."""
    if (ratio is None) == (factor is None):
        raise LtnasError(
            "give the imbalance as exactly one of ratio or factor; "
            "e.g. ratio=100 or factor=0.01 (factor = 1 / ratio)"
        )
    if ratio is not None:
        if not ratio >= 1:
            raise LtnasError(f"imbalance ratio must be >= 1 (n_max/n_min), got {ratio}; for n_min/n_max use factor")
        return 1.0 / ratio
    assert factor is not None
    if not 0 < factor <= 1:
        raise LtnasError(f"imbalance factor must be in (0, 1] (n_min/n_max), got {factor}; for n_max/n_min use ratio")
    return factor


def longtail_counts(
    n_max: int,
    num_classes: int,
    profile: str = "exp",
    *,
    ratio: float | None = None,
    factor: float | None = None,
) -> list[int]:
    """Images per class: exp decays geometrically from n_max to n_max·factor; step halves the classes."""
    if profile not in PROFILES:
        raise LtnasError(f"unknown long-tail profile '{profile}'; choose one of {', '.join(PROFILES)}")
    if n_max < 1 or num_classes < 1:
        raise LtnasError(f"a long-tailed set needs n_max >= 1 and at least one class, got {n_max} and {num_classes}")
    if profile == "balanced":
        return [n_max] * num_classes
    factor = imbalance_factor(ratio, factor)
    if num_classes == 1:  # a single class is its own head (and exp's c / (C - 1) would divide by zero)
        return [n_max]
    if profile == "step":
        return [n_max if c < num_classes // 2 else int(n_max * factor) for c in range(num_classes)]
    return [int(n_max * factor ** (c / (num_classes - 1))) for c in range(num_classes)]


def longtail_indices(
    labels: Sequence[int] | np.ndarray,
    counts: Sequence[int],
    seed: int,
    *,
    class_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Indices of a long-tailed subset: per class, a seeded shuffle of its images, first counts[c] kept.

    One generator serves the classes in order, so the subset depends on the seed alone. Returned
    sorted, so the subset keeps the dataset's order.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    kept = []
    for c, wanted in enumerate(counts):
        members = np.flatnonzero(labels == c)
        if len(members) < wanted:
            name = f"'{class_names[c]}' ({c})" if class_names is not None else str(c)
            raise LtnasError(
                f"class {name} has {len(members)} images but the long-tail profile asks for {wanted}; "
                "lower data.n_max"
            )
        rng.shuffle(members)
        kept.append(members[:wanted])
    return np.sort(np.concatenate(kept)).astype(np.int64) if kept else np.zeros(0, dtype=np.int64)
