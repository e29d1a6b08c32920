"""Your own images: one sub-folder per class, optionally already split into train/ and test/.

  <root>/<class>/*.png|jpg|...                 → a stratified test split of `test_fraction`
  <root>/train/<class>/..., <root>/test/<class>/...   → used as they are
Images are resized to a square `image_size`; the set is 1-channel if every image is grayscale, else RGB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ltnas.data.imageset import ImageSet, RawSplits
from ltnas.data.splits import stratified_split
from ltnas.errors import LtnasError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_GRAYSCALE_MODES = ("1", "L", "LA")


def load_folder(
    root: str | Path, image_size: int = 32, test_fraction: float = 0.2, seed: int = 0
) -> RawSplits:
    """(train, test, classes). `seed` drives only the train/test split, fixed by default so every run
    of a study is evaluated on the same test images."""
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
        everything = _read_set(train_files + test_files, train_labels + test_labels, image_size)
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
    everything = _read_set(files, labels, image_size)
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


def _read_set(files: list[Path], labels: list[int], size: int) -> ImageSet:
    """Every file resized to size×size; 1 channel if all of them are grayscale, RGB otherwise."""
    from PIL import Image  # Pillow arrives with matplotlib; imported here so other sources never need it

    pixels = np.empty((len(files), size, size, 3), dtype=np.uint8)
    all_gray = True
    for i, path in enumerate(files):
        try:
            with Image.open(path) as image:
                all_gray &= image.mode in _GRAYSCALE_MODES
                rgb = image.convert("RGB")  # gray → three equal channels, so channel 0 is the gray image
                if rgb.size != (size, size):
                    rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
                pixels[i] = np.asarray(rgb)
        except (OSError, ValueError, SyntaxError) as exc:  # PIL signals broken files with all three
            raise LtnasError(f"cannot read image {path} ({exc}); delete or replace the file") from None
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2)
    images = images[:, :1] if all_gray else images
    return ImageSet(images.contiguous(), torch.tensor(labels, dtype=torch.int64))
