"""Split files: an image root plus text lists of "relative/path label" lines, one per image — the format
of the standard ImageNet-LT split (Liu et al., 2019, "Large-Scale Long-Tailed Recognition in an Open World":
ImageNet_LT_train.txt, ImageNet_LT_val.txt, ImageNet_LT_test.txt, e.g. "train/n01440764/n01440764_190.JPEG 0").

  data.source: split_files
  data.root: the folder the listed paths are relative to
  data.train_list / data.test_list: the training pool and the test set (both required)
  data.val_list: optional held-out validation images; retraining monitors them instead of holding out
                 train.val_fraction of the training list

Labels are integers 0..K−1, K the number of classes, every one of which the training list must hold. A
class is named after the folder its training images lie in when that folder is the same for all of them and
differs between classes (ImageNet's wnids), else after its label. Images are fitted to `data.image_size` as a
folder's are (`fit_image`), held in memory or decoded batch by batch over the memory budget (data/folder.py).
"""

from __future__ import annotations

from pathlib import Path

from ltnas.data.folder import _read_set
from ltnas.data.imageset import RawSplitsWithVal
from ltnas.errors import LtnasError

LIST_KEYS = ("train_list", "val_list", "test_list")


def read_split_list(path: str | Path, root: Path) -> tuple[list[Path], list[int]]:
    """(files under `root`, labels) of one list file; a one-line error naming the file and line for a
    missing list, a line that is not "path label" with a non-negative integer label, or a missing image."""
    path = Path(path)
    if not path.is_file():
        raise LtnasError(f"split list {path} not found; set data.train_list / data.val_list / data.test_list to "
                         "text files of 'relative/path label' lines (ImageNet_LT_train.txt, ...)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LtnasError(f"cannot read split list {path} ({exc}); pass a UTF-8 text file") from None
    files: list[Path] = []
    labels: list[int] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise LtnasError(f"{path}, line {number}: {line.strip()!r} is not 'relative/path label' with a label "
                             "0, 1, 2, ...; fix or remove the line")
        file = root / parts[0]
        if not file.is_file():
            raise LtnasError(f"{path}, line {number}: image {file} not found; set data.root to the folder the "
                             "listed paths are relative to, or remove the line")
        files.append(file)
        labels.append(int(parts[1]))
    if not files:
        raise LtnasError(f"split list {path} lists no images; give it 'relative/path label' lines")
    return files, labels


def class_names(files: list[Path], labels: list[int], num_classes: int) -> list[str]:
    """Each class's folder name if all its training images share one and the names differ between classes,
    else the labels as text."""
    folders: list[set[str]] = [set() for _ in range(num_classes)]
    for file, label in zip(files, labels):
        folders[label].add(file.parent.name)
    names = [next(iter(found)) if len(found) == 1 else "" for found in folders]
    if all(names) and len(set(names)) == num_classes:
        return names
    return [str(label) for label in range(num_classes)]


def load_split_files(root: str | Path, train_list: str | Path, test_list: str | Path,
                     val_list: str | Path | None = None, image_size: int | None = None,
                     memory_budget_gb: float | None = None) -> RawSplitsWithVal:
    """(train pool, test set, class names, validation set or None) from the lists' images under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise LtnasError(f"image root {root} not found; set data.root to the folder the split lists' paths are "
                         "relative to")
    lists = [("train", train_list), ("test", test_list)] + ([("val", val_list)] if val_list else [])
    read = {name: read_split_list(path, root) for name, path in lists}
    train_labels = read["train"][1]
    num_classes = max(train_labels) + 1
    missing = sorted(set(range(num_classes)) - set(train_labels))
    if missing:
        raise LtnasError(f"{train_list} has no image of class {missing[0]} (labels run 0..{num_classes - 1}); "
                         "number the classes 0..K-1 without gaps")
    if num_classes < 2:
        raise LtnasError(f"{train_list} has a single class; classification needs at least two labels")
    for name, path in lists[1:]:
        outside = [label for label in read[name][1] if label >= num_classes]
        if outside:
            raise LtnasError(f"{path} has label {outside[0]}, outside the training list's 0..{num_classes - 1}; "
                             "give every split the same classes")
    files = [file for name, _ in lists for file in read[name][0]]
    labels = [label for name, _ in lists for label in read[name][1]]
    # read together so that every split gets the same channel count
    everything = _read_set(files, labels, image_size, memory_budget_gb, root)
    bounds, start = {}, 0
    for name, _ in lists:
        bounds[name] = range(start, start + len(read[name][0]))
        start += len(read[name][0])
    val = everything.subset(bounds["val"]) if "val" in bounds else None
    return RawSplitsWithVal(everything.subset(bounds["train"]), everything.subset(bounds["test"]),
                            class_names(*read["train"], num_classes), val)
