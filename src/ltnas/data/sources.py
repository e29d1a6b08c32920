"""Where images come from, before any long-tailing: each source gives (train pool, test set, class names).

CIFAR and image folders live in their own modules; digits and the synthetic set are small enough to
live here. Test sets are fixed (seed 0, never the run seed) so every run of a study is scored alike.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ltnas.config import SOURCES, DataConfig
from ltnas.data.cifar import load_cifar10, load_cifar100
from ltnas.data.folder import load_folder
from ltnas.data.imageset import ImageSet, RawSplits
from ltnas.data.split_files import load_split_files
from ltnas.data.splits import balanced_holdout
from ltnas.errors import LtnasError

TEST_SPLIT_SEED = 0


def load_digits(test_per_class: int = 50) -> RawSplits:
    """scikit-learn's 1,797 8×8 handwritten digits (0..16 → 0..255), with a balanced held-out test set."""
    images, target = digits_arrays()
    pixels = np.rint(images * 255 / 16).astype(np.uint8)[:, None]  # N×1×8×8
    everything = ImageSet(torch.from_numpy(pixels), torch.from_numpy(target.astype(np.int64)))
    train_index, test_index = balanced_holdout(target, test_per_class, TEST_SPLIT_SEED)
    return RawSplits(everything.subset(train_index), everything.subset(test_index), [str(d) for d in range(10)])


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images N×8×8 of 0..16, labels N) of scikit-learn's digits, read from the file scikit-learn ships
    (sklearn/datasets/data/digits.csv.gz: a row of 64 pixels and the label per image), as its `load_digits`
    reads it. Importing `sklearn.datasets` for that (SciPy and more) cost ~0.95 CPU s of every process that
    used digits (the quickstart's members), the read itself 10 ms. Where the file is not found (another
    scikit-learn layout), scikit-learn's loader."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits as sklearn_digits

        digits = sklearn_digits()
        return digits.images, digits.target
    data = np.loadtxt(path, delimiter=",")  # a .gz file is decompressed as it is read
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


def make_synthetic(
    num_classes: int = 10, channels: int = 3, image_size: int = 16, per_class: int = 100, test_per_class: int = 20
) -> RawSplits:
    """A learnable toy set in milliseconds: per class a smooth random prototype; samples add pixel noise.

    The prototypes are smooth (a 4×4 pattern upsampled) so they survive crop and flip augmentation, and
    they, the pool and the test set each have their own fixed seed: changing the pool size or the run
    seed leaves the prototypes and the test set as they are.
    """
    coarse = max(2, image_size // 4)
    pattern = torch.rand(num_classes, channels, coarse, coarse, generator=torch.Generator().manual_seed(0))
    prototypes = F.interpolate(pattern * 255, size=image_size, mode="bilinear", align_corners=False)

    def samples(per: int, seed: int) -> ImageSet:
        shape = (num_classes, per, channels, image_size, image_size)
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
        pixels = noise.mul_(48).add_(prototypes[:, None]).round_().clamp_(0, 255).to(torch.uint8)
        labels = torch.arange(num_classes).repeat_interleave(per)
        return ImageSet(pixels.flatten(0, 1), labels)

    return RawSplits(samples(per_class, 1), samples(test_per_class, 2), [f"class_{c}" for c in range(num_classes)])


def load_source(cfg: DataConfig) -> RawSplits:
    """The source named by cfg.source, configured from the rest of cfg."""
    if cfg.source == "digits":
        return load_digits(cfg.test_per_class or 50)
    if cfg.source == "synthetic":
        return make_synthetic(
            cfg.num_classes or 10, cfg.channels or 3, cfg.image_size or 16, cfg.n_max or 100, cfg.test_per_class or 20
        )
    if cfg.root is None:
        where = {"folder": "your image folder", "split_files": "the folder the split lists' paths are relative to"
                 }.get(cfg.source, "the folder holding (or to hold) the CIFAR pickles")
        raise LtnasError(f"data.root is not set for source '{cfg.source}'; set data.root to {where}")
    if cfg.source == "cifar10":
        return load_cifar10(cfg.root, cfg.download)
    if cfg.source == "cifar100":
        return load_cifar100(cfg.root, cfg.download)
    if cfg.source == "folder":
        return load_folder(cfg.root, cfg.image_size, cfg.test_fraction, TEST_SPLIT_SEED, cfg.memory_budget_gb)
    if cfg.source == "split_files":
        if not cfg.train_list or not cfg.test_list:
            raise LtnasError("source split_files needs data.train_list and data.test_list (text files of "
                             "'relative/path label' lines, e.g. ImageNet_LT_train.txt and ImageNet_LT_test.txt)")
        return load_split_files(cfg.root, cfg.train_list, cfg.test_list, cfg.val_list, cfg.image_size,
                                cfg.memory_budget_gb)
    raise LtnasError(f"unknown data source '{cfg.source}'; choose one of {', '.join(SOURCES)}")
