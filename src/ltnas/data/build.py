"""From a DataConfig to the long-tailed dataset a run trains and evaluates on."""

from __future__ import annotations

from ltnas.config import DataConfig
from ltnas.data.imageset import ImageSet, LongTailDataset
from ltnas.data.profiles import longtail_counts, longtail_indices
from ltnas.data.sources import load_source
from ltnas.errors import LtnasError

# Head-class size when data.n_max is not given: the full CIFAR classes, as in the papers.
_DEFAULT_N_MAX = {"cifar10": 5000, "cifar100": 500}
# Imbalance ratio when neither ratio nor factor is given: CIFAR-LT's 100, but 50 for digits, whose
# ~125-image pool would otherwise leave a tail of a single image.
_DEFAULT_RATIO = {"digits": 50.0}


def build_dataset(cfg: DataConfig, seed: int) -> LongTailDataset:
    """Load cfg.source and long-tail its training pool by cfg.profile; `seed` picks which images are kept.

    The balanced test split is kept whole; for exp/step (and cfg.longtail_test) a long-tailed test set
    applies the same profile to it, with n_max = the smallest test class.
    """
    pool, test, classes = load_source(cfg)
    test_longtail = None
    if cfg.profile == "none":  # already imbalanced (a user's own folder, say): keep the pool as it is
        train, ratio = pool, None
    else:
        ratio, factor = cfg.ratio, cfg.factor
        if cfg.profile == "balanced":
            ratio, factor = 1.0, None
        elif ratio is None and factor is None:
            ratio = _DEFAULT_RATIO.get(cfg.source, 100.0)
        n_max = cfg.n_max or _default_n_max(cfg.source, pool.counts(len(classes)))
        train = _longtail(pool, classes, n_max, cfg.profile, ratio, factor, seed)
        if cfg.longtail_test and cfg.profile in ("exp", "step"):
            n_test = min(test.counts(len(classes)))
            test_longtail = _longtail(test, classes, n_test, cfg.profile, ratio, factor, seed, train=False)
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
    )


def _default_n_max(source: str, pool_counts: list[int]) -> int:
    if source in _DEFAULT_N_MAX:
        return _DEFAULT_N_MAX[source]
    # a folder's largest class uses the user's data fully; digits and synthetic have near-equal
    # pools, and their smallest keeps every class able to be the head
    return max(pool_counts) if source == "folder" else min(pool_counts)


def _longtail(
    images: ImageSet,
    classes: list[str],
    n_max: int,
    profile: str,
    ratio: float | None,
    factor: float | None,
    seed: int,
    train: bool = True,
) -> ImageSet:
    counts = longtail_counts(n_max, len(classes), profile, ratio=ratio, factor=factor)
    if train and 0 in counts:  # a class without training images would still "score" on the test set
        empty = classes[counts.index(0)]
        imbalance = f"ratio {ratio:g}" if ratio is not None else f"factor {factor:g}"
        raise LtnasError(f"the {profile} profile with n_max {n_max} and {imbalance} leaves class '{empty}' without "
                         f"a training image (counts {counts}); lower data.ratio or raise data.n_max")
    return images.subset(longtail_indices(images.labels.numpy(), counts, seed, class_names=classes))
