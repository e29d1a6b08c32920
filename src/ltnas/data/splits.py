"""Seeded per-class splits: the train/val split of bilevel search and held-out test sets."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
    second, first = _per_class(labels, seed, lambda c, n: min(max(round(n * fraction), 1), n - 1) if n >= 2 else 0)
    return first, second


def floor_holdout(
    labels: Sequence[int] | np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out floor(n_c · fraction) shuffled images of each class; return (rest, held_out), sorted.

    Unlike `stratified_split`, a class too small to spare an image (n_c < 1/fraction) keeps all of
    them: a monitoring split must not take half of a two-image tail class away from training.
    """
    held, rest = _per_class(labels, seed, lambda c, n: int(np.floor(n * fraction)))
    return rest, held


def balanced_holdout(
    labels: Sequence[int] | np.ndarray, per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out `per_class` shuffled images of every class; return (rest, held_out), sorted."""
    def count(c: int, n: int) -> int:
        if n <= per_class:
            raise LtnasError(f"class {c} has {n} images, so holding out {per_class} for the test set leaves none "
                             f"to train on; set data.test_per_class below {n}")
        return per_class

    held, rest = _per_class(labels, seed, count)
    return rest, held


def _per_class(labels: Sequence[int] | np.ndarray, seed: int,
               count: Callable[[int, int], int]) -> tuple[np.ndarray, np.ndarray]:
    """(taken, left), sorted: for each class c in label order, its n_c indices shuffled by one seeded
    generator, the first count(c, n_c) taken and the rest left."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    taken, left = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = count(int(c), len(members))
        rng.shuffle(members)
        taken.append(members[:k])
        left.append(members[k:])
    return _sorted(taken), _sorted(left)


def _sorted(parts: list[np.ndarray]) -> np.ndarray:
    return np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
