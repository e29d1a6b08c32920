"""Images held whole in memory as uint8 tensors, and a long-tailed dataset built from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch


@dataclass
class ImageSet:
    """uint8 images (N×C×H×W) and int64 labels (N), on the CPU; batches move to the device later.

    `images` is a tensor, or for folders larger than memory a data.streaming.FileImages that decodes
    the files of each batch when indexed."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 N×C×H×W, got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != self.images.shape[:1]:
            raise ValueError(f"labels must be int64 of shape ({len(self.images)},), got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> ImageSet:
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        if not isinstance(self.images, torch.Tensor):  # streamed files (data/streaming.py) stay undecoded
            return ImageSet(self.images.subset(index), self.labels[index])
        return ImageSet(self.images[index], self.labels[index])

    def counts(self, num_classes: int) -> list[int]:
        """Images per class, classes without images included as 0."""
        return torch.bincount(self.labels, minlength=num_classes).tolist()

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and (population) std on the [0, 1] scale."""
        total = torch.zeros(self.images.shape[1], dtype=torch.float64)
        total_sq = torch.zeros_like(total)
        for chunk in self.images.split(4096):  # chunks: a float64 copy of all of CIFAR would take GBs
            pixels = chunk.to(torch.float64) / 255
            total += pixels.sum(dim=(0, 2, 3))
            total_sq += pixels.square().sum(dim=(0, 2, 3))
        n = max(1, self.images.shape[0] * self.images.shape[2] * self.images.shape[3])
        mean = total / n
        # a constant channel would divide by zero when normalising; a tiny floor keeps it finite
        std = (total_sq / n - mean.square()).clamp_min(0).sqrt().clamp_min(1e-6)
        return tuple(mean.tolist()), tuple(std.tolist())


@dataclass
class LongTailDataset:
    """A source after long-tailing: the imbalanced training set and the balanced (and long-tailed) test sets.

    mean/std are per channel over the long-tailed training set, on the [0, 1] scale; ratio is n_max/n_min
    (1.0 for balanced, None for profile 'none', which keeps the source's own imbalance).
    """

    name: str
    classes: list[str]
    train: ImageSet
    test: ImageSet
    test_longtail: ImageSet | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    profile: str
    ratio: float | None
    val: ImageSet | None = None  # the source's own validation images (split files' val list), kept as they are

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[2]

    @property
    def train_counts(self) -> list[int]:
        return self.train.counts(self.num_classes)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description, for the run folder and the report."""
        return {
            "name": self.name,
            "classes": list(self.classes),
            "profile": self.profile,
            "ratio": self.ratio,
            "image_shape": [self.channels, self.image_size, self.train.images.shape[3]],
            "train_counts": self.train_counts,
            "test_counts": self.test.counts(self.num_classes),
            "longtail_test_counts": (
                self.test_longtail.counts(self.num_classes) if self.test_longtail is not None else None
            ),
            **({"val_counts": self.val.counts(self.num_classes)} if self.val is not None else {}),
            "mean": list(self.mean),
            "std": list(self.std),
        }


class RawSplits(NamedTuple):
    """What a source gives before long-tailing: the training pool, the test set, the class names."""

    train: ImageSet
    test: ImageSet
    classes: list[str]


class RawSplitsWithVal(RawSplits):
    """RawSplits (unpacking to the same three) that also carries the source's own validation set, `val`
    (split files' val list), or None."""

    def __new__(cls, train: ImageSet, test: ImageSet, classes: list[str], val: ImageSet | None = None):
        splits = super().__new__(cls, train, test, classes)
        splits.val = val
        return splits
