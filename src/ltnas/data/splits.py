"""Seeded per-class splits: the train/val split of bilevel search and held-out test sets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ltnas.errors import LtnasError


def stratified_split(
    labels: Sequence[int] | np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Send round(n_c · fraction) of each class, shuffled, to the second part; return (first, second), sorted.

    A class with >= 2 images keeps at least one image on each side, so a tail class is never missing from
    either part; a class with a single image stays in the first part (the one trained on).
    """
    if not 0 < fraction < 1:
        raise LtnasError(f"split fraction must be in (0, 1), got {fraction}; pick e.g. 0.5")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    first, second = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rng.shuffle(members)
        n = len(members)
        k = min(max(round(n * fraction), 1), n - 1) if n >= 2 else 0
        second.append(members[:k])
        first.append(members[k:])
    return _sorted(first), _sorted(second)


def floor_holdout(
    labels: Sequence[int] | np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out floor(n_c · fraction) shuffled images of each class; return (rest, held_out), sorted.

    Unlike `stratified_split`, a class too small to spare an image (n_c < 1/fraction) keeps all of
    them: a monitoring split must not take half of a two-image tail class away from training.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    rest, held = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rng.shuffle(members)
        k = int(np.floor(len(members) * fraction))
        held.append(members[:k])
        rest.append(members[k:])
    return _sorted(rest), _sorted(held)


def balanced_holdout(
    labels: Sequence[int] | np.ndarray, per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out `per_class` shuffled images of every class; return (rest, held_out), sorted."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    rest, held = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) <= per_class:
            raise LtnasError(
                f"class {c} has {len(members)} images, so holding out {per_class} for the test set leaves none "
                f"to train on; set data.test_per_class below {len(members)}"
            )
        rng.shuffle(members)
        held.append(members[:per_class])
        rest.append(members[per_class:])
    return _sorted(rest), _sorted(held)


def _sorted(parts: list[np.ndarray]) -> np.ndarray:
    return np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
