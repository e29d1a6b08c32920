"""Data: sources, long-tailed subsets, splits, samplers and on-device batches with augmentation."""

from ltnas.data.augment import BatchAugment
from ltnas.data.build import build_dataset
from ltnas.data.cifar import CIFAR_ARCHIVES, Archive, load_cifar10, load_cifar100
from ltnas.data.folder import IMAGE_SUFFIXES, load_folder
from ltnas.data.imageset import ImageSet, LongTailDataset, RawSplits
from ltnas.data.loader import SAMPLERS, DeviceBatches, batches_of
from ltnas.data.profiles import PROFILES, imbalance_factor, longtail_counts, longtail_indices
from ltnas.data.samplers import class_balanced_indices, class_probabilities, instance_indices, reversed_indices
from ltnas.data.sources import load_digits, load_source, make_synthetic
from ltnas.data.splits import balanced_holdout, stratified_split

__all__ = [
    "Archive",
    "BatchAugment",
    "CIFAR_ARCHIVES",
    "DeviceBatches",
    "IMAGE_SUFFIXES",
    "ImageSet",
    "LongTailDataset",
    "PROFILES",
    "RawSplits",
    "SAMPLERS",
    "balanced_holdout",
    "batches_of",
    "build_dataset",
    "class_balanced_indices",
    "class_probabilities",
    "imbalance_factor",
    "instance_indices",
    "load_cifar10",
    "load_cifar100",
    "load_digits",
    "load_folder",
    "load_source",
    "longtail_counts",
    "longtail_indices",
    "make_synthetic",
    "reversed_indices",
    "stratified_split",
]
