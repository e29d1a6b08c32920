"""Batches straight from device memory: the whole set moves once, each batch is an index, no workers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from ltnas.config import AugmentConfig
from ltnas.data.augment import BatchAugment
from ltnas.data.imageset import ImageSet
from ltnas.data.samplers import class_balanced_indices, instance_indices, reversed_indices
from ltnas.errors import LtnasError

SAMPLERS = ("instance", "class_balanced", "reversed")


class DeviceBatches:
    """Iterate (x, y): x float32 normalised (and augmented) on the device, y int64.

    shuffle=True (training): each epoch's order is drawn from `generator` when iteration starts, by the
    instance, class-balanced or reversed (BBN's, ∝ 1/n_c) sampler; all give the same number of batches. The generator is the only
    source of randomness, so saving and restoring its state reproduces an epoch.
    shard=(rank, ranks) (data-parallel training): every rank draws the same order and augmentation for
    global batches of ranks × batch_size images and yields its own slice of each, so N ranks see exactly
    the batches one process with batch N × batch_size would, and share one generator state.
    shuffle=False (evaluation): dataset order, every image exactly once; drop_last and sampler do not apply.
    """

    def __init__(
        self,
        images: ImageSet,
        batch_size: int,
        *,
        device: torch.device | str,
        mean: Sequence[float],
        std: Sequence[float],
        generator: torch.Generator,
        sampler: str = "instance",
        augment: AugmentConfig | None = None,
        shuffle: bool = True,
        drop_last: bool = True,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        if sampler not in SAMPLERS:
            raise LtnasError(f"unknown sampler '{sampler}'; choose one of {', '.join(SAMPLERS)}")
        if batch_size < 1:
            raise LtnasError(f"batch size must be >= 1, got {batch_size}; set a positive batch_size")
        if len(mean) != images.images.shape[1] or len(std) != images.images.shape[1]:
            raise ValueError(f"mean/std have {len(mean)}/{len(std)} values for {images.images.shape[1]} channels")
        self.device = torch.device(device)
        self.images = images.images.to(self.device)
        self.labels = images.labels.to(self.device)
        self.batch_size = batch_size
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.generator = generator
        self.sampler = sampler
        self.augment = BatchAugment(augment, mean, std) if augment is not None else None
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rank, self.ranks = shard
        if not 0 <= self.rank < self.ranks or (self.ranks > 1 and not shuffle):
            raise ValueError(f"bad shard {shard} (shuffle={shuffle}): sharding is (rank < ranks) for training batches")

    def in_order(self, batch_size: int) -> DeviceBatches:
        """The same images, already on the device, each once in dataset order: for evaluation
        passes over a set that is also trained on, without a second copy on the device."""
        return DeviceBatches(
            ImageSet(self.images, self.labels), batch_size, device=self.device, mean=self.mean.flatten().tolist(),
            std=self.std.flatten().tolist(), generator=self.generator, shuffle=False, drop_last=False,
        )

    @property
    def num_images(self) -> int:
        return len(self.labels)

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.ranks

    def __len__(self) -> int:
        n = self.num_images
        if self.drop_last and self.shuffle:
            # a set smaller than one batch still yields one (smaller) batch rather than none
            return max(1, n // self.global_batch_size) if n else 0
        return -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # Draw the epoch's order now, not lazily at the first batch, so the generator state right after
        # iter() already accounts for it.
        order = self._epoch_order()
        return self._batches(order)

    def _epoch_order(self) -> torch.Tensor:
        n = self.num_images
        if not self.shuffle:
            return torch.arange(n, device=self.device)
        num_samples = min(n, len(self) * self.global_batch_size)
        if self.sampler == "class_balanced":
            return class_balanced_indices(self.labels, num_samples, self.generator)
        if self.sampler == "reversed":
            return reversed_indices(self.labels, num_samples, self.generator)
        return instance_indices(n, num_samples, self.generator, self.device)

    def _batches(self, order: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        indices = order.split(self.global_batch_size)
        # streamed images (data/streaming.py) are decoded on the host, the next batch while this one trains
        decoded = self.images.prefetched(indices) if hasattr(self.images, "prefetched") else map(
            self.images.__getitem__, indices)
        for index, pixels in zip(indices, decoded):
            x = (pixels.to(self.device).float().div_(255) - self.mean) / self.std
            if self.augment is not None:
                x = self.augment(x, self.generator)  # the whole global batch: same draws on every rank
            y = self.labels[index]
            if self.ranks > 1:
                x, y = x.tensor_split(self.ranks)[self.rank], y.tensor_split(self.ranks)[self.rank]
            yield x, y


def batches_of(images: ImageSet, dataset, batch_size: int, device: torch.device | str, seed: int | None = None,
               **options) -> DeviceBatches:
    """The one place ltnas builds batches: `images` normalised with `dataset`'s mean and std on `device`,
    drawn by a generator seeded with `seed` (a stage's seed, see `ltnas.stages.context.SEEDS`).

    With `seed=None` the batches are for evaluation: dataset order, every image once (shuffle and
    drop_last off). `options` are DeviceBatches' (sampler, augment, shard, ...)."""
    generator = torch.Generator(device=device)
    if seed is None:
        options = {"shuffle": False, "drop_last": False, **options}
    else:
        generator.manual_seed(seed)
    return DeviceBatches(images, batch_size, device=device, mean=dataset.mean, std=dataset.std, generator=generator,
                         **options)
