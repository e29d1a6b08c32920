"""Your own images: one sub-folder per class, optionally already split into train/ and test/.

  <root>/<class>/*.png|jpg|...                 → a stratified test split of `test_fraction`
  <root>/train/<class>/..., <root>/test/<class>/...   → used as they are
Every image is fitted to a square `image_size` by `fit_image`: scaled (bilinear, aspect ratio kept) so that
its shorter side is `image_size`, then its centre square is cut out — the same function prepares images for
prediction (ltnas/model_io.py). Without `image_size`, the side is the median of the images' shorter sides,
at most DEFAULT_MAX_SIDE. The set is 1-channel if every image is grayscale, else RGB.
Everything is decoded into memory, unless the decoded pixels would exceed the memory budget
(data.memory_budget_gb): then the files are decoded batch by batch (data/streaming.py), with a note.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ltnas.data.imageset import ImageSet, RawSplits
from ltnas.data.resize import RESIZE_RULE, RESIZE_RULES, fit_image  # noqa: F401 (re-exported)
from ltnas.data.splits import stratified_split
from ltnas.errors import LtnasError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_GRAYSCALE_MODES = ("1", "L", "LA")
# Largest side chosen when data.image_size is not set: compute grows with its square, and DARTS-style
# networks are sized for CIFAR's 32; set data.image_size to go higher.
DEFAULT_MAX_SIDE = 64
MIN_SIDE = 4


def default_image_size(files: list[Path]) -> int:
    """The median of the images' shorter sides (headers only), between MIN_SIDE and DEFAULT_MAX_SIDE."""
    from PIL import Image

    sides = []
    for path in files:
        try:
            with Image.open(path) as image:
                sides.append(min(image.size))
        except (OSError, ValueError, SyntaxError) as exc:
            raise LtnasError(f"cannot read image {path} ({exc}); delete or replace the file") from None
    return int(min(DEFAULT_MAX_SIDE, max(MIN_SIDE, np.median(sides))))


def default_memory_budget() -> int:
    """Bytes of decoded images a folder may take: half the machine's memory (8 GiB where unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):
        return 8 * 2**30


def fits_in_memory(count: int, size: int, budget_gb: float | None) -> bool:
    """Whether count decoded uint8 images of 3×size×size (RGB assumed) fit the budget
    (data.memory_budget_gb; default half the machine's memory)."""
    budget = int(budget_gb * 2**30) if budget_gb is not None else default_memory_budget()
    return count * 3 * size * size <= budget


def load_folder(
    root: str | Path, image_size: int | None = None, test_fraction: float = 0.2, seed: int = 0,
    memory_budget_gb: float | None = None,
) -> RawSplits:
    """(train, test, classes). `seed` drives only the train/test split, fixed by default so every run
    of a study is evaluated on the same test images. image_size None: `default_image_size`."""
    root = Path(root)
    if not root.is_dir():
        raise LtnasError(f"image folder {root} not found; set data.root to a folder with one sub-folder per class")
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = _class_folders(root / "train")
        test_classes = _class_folders(root / "test")
        if test_classes != classes:
            differ = sorted(set(classes) ^ set(test_classes))
            raise LtnasError(
                f"{root}/train and {root}/test have different class folders ({', '.join(differ)}); "
                "give both the same sub-folders"
            )
        train_files, train_labels = _list_images(root / "train", classes)
        test_files, test_labels = _list_images(root / "test", classes)
        # read together so that both splits get the same channel count
        everything = _read_set(train_files + test_files, train_labels + test_labels, image_size, memory_budget_gb, root)
        split = len(train_files)
        return RawSplits(everything.subset(range(split)), everything.subset(range(split, len(everything))), classes)

    classes = _class_folders(root)
    files, labels = _list_images(root, classes)
    for c, name in enumerate(classes):
        if labels.count(c) < 2:
            raise LtnasError(
                f"class folder {root / name} has a single image, too few to split into train and test; "
                f"add images or provide {root}/train and {root}/test"
            )
    everything = _read_set(files, labels, image_size, memory_budget_gb, root)
    train_index, test_index = stratified_split(labels, test_fraction, seed)
    return RawSplits(everything.subset(train_index), everything.subset(test_index), classes)


def _class_folders(root: Path) -> list[str]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise LtnasError(f"no class sub-folders in {root}; put each class's images in {root}/<class name>/")
    if len(classes) < 2:  # one class: every prediction is right, and no metric means anything
        raise LtnasError(f"{root} has a single class folder ({classes[0]}); classification needs at least two "
                         f"class sub-folders in {root}")
    return classes


def _list_images(root: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    files: list[Path] = []
    labels: list[int] = []
    for c, name in enumerate(classes):
        found = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not found:
            raise LtnasError(
                f"class folder {root / name} has no images; add {'/'.join(IMAGE_SUFFIXES)} files or remove it"
            )
        files += found
        labels += [c] * len(found)
    return files, labels


def _read_set(files: list[Path], labels: list[int], size: int | None, budget_gb: float | None,
              root: Path) -> ImageSet:
    """Every file fitted to size×size (`fit_image`); 1 channel if all of them are grayscale, RGB otherwise."""
    from PIL import Image  # Pillow arrives with matplotlib; imported here so other sources never need it

    size = size or default_image_size(files)
    if not fits_in_memory(len(files), size, budget_gb):
        return _streamed_set(files, labels, size, budget_gb, root)
    pixels = np.empty((len(files), size, size, 3), dtype=np.uint8)
    all_gray = True
    for i, path in enumerate(files):
        try:
            with Image.open(path) as image:
                all_gray &= image.mode in _GRAYSCALE_MODES
                # gray → three equal channels, so channel 0 is the gray image
                pixels[i] = np.asarray(fit_image(image.convert("RGB"), size))
        except (OSError, ValueError, SyntaxError) as exc:  # PIL signals broken files with all three
            raise LtnasError(f"cannot read image {path} ({exc}); delete or replace the file") from None
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2)
    images = images[:, :1] if all_gray else images
    return ImageSet(images.contiguous(), torch.tensor(labels, dtype=torch.int64))


def _streamed_set(files: list[Path], labels: list[int], size: int, budget_gb: float | None, root: Path) -> ImageSet:
    """The files as a FileImages set decoded per batch; 1 channel if every header says grayscale."""
    import sys

    from PIL import Image

    from ltnas.data.streaming import FileImages

    all_gray = True
    for path in files:
        try:
            with Image.open(path) as image:  # reads the header only
                all_gray &= image.mode in _GRAYSCALE_MODES
        except (OSError, ValueError, SyntaxError) as exc:
            raise LtnasError(f"cannot read image {path} ({exc}); delete or replace the file") from None
    need = len(files) * 3 * size * size / 2**30
    budget = budget_gb if budget_gb is not None else default_memory_budget() / 2**30
    print(f"ltnas: note: image folder {root} decodes to {need:.2f} GiB ({len(files)} images at {size}×{size}), over "
          f"the memory budget of {budget:.2f} GiB (data.memory_budget_gb); its images are decoded batch by batch "
          "(slower than in memory)", file=sys.stderr)
    return ImageSet(FileImages(files, size, 1 if all_gray else 3), torch.tensor(labels, dtype=torch.int64))
