"""From a DataConfig to the long-tailed dataset a run trains and evaluates on."""

from __future__ import annotations

from ltnas.config import DataConfig
from ltnas.data.imageset import ImageSet, LongTailDataset
from ltnas.data.profiles import longtail_counts, longtail_indices
from ltnas.data.sources import load_source
from ltnas.errors import LtnasError

# Head-class size when data.n_max is not given: the full CIFAR classes, as in the papers.
_DEFAULT_N_MAX = {"cifar10": 5000, "cifar100": 500}
# Sources whose classes come in a published order with (near-)equal pools. Any other source (a folder, or
# a source added later, CSV-like say) is a user's own, already uneven data: its profile ranks the classes
# by size and its largest class is the head, so that no such source is cut down to its rarest class.
BENCHMARK_SOURCES = ("cifar10", "cifar100", "digits", "synthetic")
# Imbalance ratio when neither ratio nor factor is given: CIFAR-LT's 100, but 50 for digits, whose
# ~125-image pool would otherwise leave a tail of a single image.
_DEFAULT_RATIO = {"digits": 50.0}
# The long-tailed test subset is drawn with this fixed seed, never the run's: every seed of a comparison
# is scored on the same long-tailed test images (as on the same balanced test split).
LONGTAIL_TEST_SEED = 0


def build_dataset(cfg: DataConfig, seed: int) -> LongTailDataset:
    """Load cfg.source and long-tail its training pool by cfg.profile; `seed` picks which images are kept.

    The balanced test split (and a source's own validation set) is kept whole; for exp/step (and
    cfg.longtail_test) a long-tailed test set applies the same profile to the test split, with n_max = the
    smallest test class, drawn with LONGTAIL_TEST_SEED (not `seed`), so that runs with different seeds are
    scored on the same test images.
    """
    splits = load_source(cfg)
    pool, test, classes = splits
    val = getattr(splits, "val", None)  # a source's own validation set (RawSplitsWithVal)
    test_longtail = None
    if cfg.profile == "none":  # already imbalanced (a user's own folder, say): keep the pool as it is
        train, ratio = pool, None
    else:
        ratio, factor = cfg.ratio, cfg.factor
        if cfg.profile == "balanced":
            ratio, factor = 1.0, None
        elif ratio is None and factor is None:
            ratio = _DEFAULT_RATIO.get(cfg.source, 100.0)
        pool_counts = pool.counts(len(classes))
        n_max = cfg.n_max or _default_n_max(cfg.source, pool_counts)
        rank = class_rank(cfg.source, pool_counts)
        train = _longtail(pool, classes, n_max, cfg.profile, ratio, factor, seed, rank)
        if cfg.longtail_test and cfg.profile in ("exp", "step"):
            n_test = min(test.counts(len(classes)))
            test_longtail = _longtail(test, classes, n_test, cfg.profile, ratio, factor, LONGTAIL_TEST_SEED, rank,
                                      train=False)
        if ratio is None:
            ratio = 1 / factor  # the dataset reports its imbalance one way, however it was given

    mean, std = train.channel_stats()
    return LongTailDataset(
        name=cfg.source,
        classes=classes,
        train=train,
        test=test,
        test_longtail=test_longtail,
        mean=mean,
        std=std,
        profile=cfg.profile,
        ratio=ratio,
        val=val,
    )


def _default_n_max(source: str, pool_counts: list[int]) -> int:
    if source in _DEFAULT_N_MAX:
        return _DEFAULT_N_MAX[source]
    # digits and synthetic have near-equal pools, and their smallest keeps every class able to be the
    # head; a user's own data (a folder, any other source) is used fully: its largest class is the head
    return min(pool_counts) if source in BENCHMARK_SOURCES else max(pool_counts)


def class_rank(source: str, pool_counts: list[int]) -> list[int]:
    """Which class gets the profile's k-th count: benchmark sources keep their published class order; any
    other source's classes (a folder's come in alphabetical order) are ranked from the most images to the
    fewest (ties keep the class order), so its largest class is the head."""
    if source in BENCHMARK_SOURCES:
        return list(range(len(pool_counts)))
    return sorted(range(len(pool_counts)), key=lambda c: -pool_counts[c])


def _longtail(
    images: ImageSet,
    classes: list[str],
    n_max: int,
    profile: str,
    ratio: float | None,
    factor: float | None,
    seed: int,
    rank: list[int],
    train: bool = True,
) -> ImageSet:
    """The profile's k-th count goes to class rank[k]; too few images → an error naming the n_max that fits."""
    by_rank = longtail_counts(n_max, len(classes), profile, ratio=ratio, factor=factor)
    counts = [0] * len(classes)
    for k, c in enumerate(rank):
        counts[c] = by_rank[k]
    if train and 0 in counts:  # a class without training images would still "score" on the test set
        empty = classes[counts.index(0)]
        imbalance = f"ratio {ratio:g}" if ratio is not None else f"factor {factor:g}"
        raise LtnasError(f"the {profile} profile with n_max {n_max} and {imbalance} leaves class '{empty}' without "
                         f"a training image (counts {by_rank}); lower data.ratio or raise data.n_max")
    have = images.counts(len(classes))
    short = [c for c in rank if have[c] < counts[c]]
    if short:
        c = short[0]
        fits = _largest_n_max(have, rank, n_max, profile, ratio, factor)
        advice = f"set data.n_max to at most {fits}" if fits else "use fewer classes"
        place = f", the number {rank.index(c) + 1} of {len(classes)} by size," if rank != sorted(rank) else ""
        raise LtnasError(
            f"class '{classes[c]}' ({c}){place} has {have[c]} images but the {profile} profile (n_max {n_max}) asks "
            f"for {counts[c]}; {advice}, or set data.profile: none to keep the data as it is"
        )
    return images.subset(longtail_indices(images.labels.numpy(), counts, seed, class_names=classes))


def _largest_n_max(have: list[int], rank: list[int], n_max: int, profile: str, ratio, factor) -> int | None:
    """The largest n_max <= `n_max` whose profile every class can fill (None if not even 1)."""
    for candidate in range(n_max, 0, -1):
        wanted = longtail_counts(candidate, len(rank), profile, ratio=ratio, factor=factor)
        if all(have[c] >= wanted[k] for k, c in enumerate(rank)):
            return candidate
    return None
