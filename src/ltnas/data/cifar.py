"""CIFAR-10 / CIFAR-100 from the official python-pickle folders, with optional verified download.

Layout (as extracted from the official tarballs):
  <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}   labels: b"labels"
  <root>/cifar-100-python/{train, test, meta}                               labels: b"fine_labels"
Each batch is a pickled dict whose b"data" is N×3072 uint8: the R, G and B planes, each 32×32 row-major.
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch

from ltnas.data.imageset import ImageSet, RawSplits
from ltnas.errors import LtnasError


@dataclass(frozen=True)
class Archive:
    url: str
    md5: str


# Module-level so tests (or a mirror) can point them elsewhere.
CIFAR_ARCHIVES: dict[str, Archive] = {
    "cifar10": Archive("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
    "cifar100": Archive(
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"
    ),
}


@dataclass(frozen=True)
class _Layout:
    title: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    label_key: bytes
    meta_file: str
    names_key: bytes
    num_classes: int


_LAYOUTS = {
    "cifar10": _Layout(
        title="CIFAR-10",
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_file="test_batch",
        label_key=b"labels",
        meta_file="batches.meta",
        names_key=b"label_names",
        num_classes=10,
    ),
    "cifar100": _Layout(
        title="CIFAR-100",
        folder="cifar-100-python",
        train_files=("train",),
        test_file="test",
        label_key=b"fine_labels",
        meta_file="meta",
        names_key=b"fine_label_names",
        num_classes=100,
    ),
}


def load_cifar10(root: str | Path, download: bool = False) -> RawSplits:
    return _load("cifar10", Path(root), download)


def load_cifar100(root: str | Path, download: bool = False) -> RawSplits:
    return _load("cifar100", Path(root), download)


def _load(name: str, root: Path, download: bool) -> RawSplits:
    layout = _LAYOUTS[name]
    folder = root / layout.folder
    required = [folder / f for f in (*layout.train_files, layout.test_file)]
    if download and not all(path.is_file() for path in required):
        download_archive(CIFAR_ARCHIVES[name], root)
    if not folder.is_dir():
        expected = (
            f"{folder}/data_batch_1..5 and test_batch" if name == "cifar10" else f"{folder}/train and test"
        )
        raise LtnasError(
            f"{layout.title} not found in {root}: expected {expected}; download it there or set data.download=true"
        )
    for path in required:
        if not path.is_file():
            raise LtnasError(
                f"{layout.title} in {folder} is incomplete: {path} is missing; "
                f"delete {folder} and download it again (data.download=true does it)"
            )
    train = [_read_batch(path, layout) for path in required[:-1]]
    test = _read_batch(required[-1], layout)
    train_set = ImageSet(torch.cat([b.images for b in train]), torch.cat([b.labels for b in train]))
    return RawSplits(train_set, test, _class_names(folder / layout.meta_file, layout))


def _read_batch(path: Path, layout: _Layout) -> ImageSet:
    batch = _unpickle(path, layout)
    data, labels = batch.get(b"data"), batch.get(layout.label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        _corrupt(path, layout, "b'data' is not an N×3072 uint8 array")
    labels = _valid_labels(labels, len(data), layout.num_classes)
    if labels is None:
        _corrupt(path, layout, f"{layout.label_key!r} is not {len(data)} labels in 0..{layout.num_classes - 1}")
    # b"data" rows are the R, G, B planes back to back, each 32×32 row-major: exactly C×H×W.
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return ImageSet(images, torch.from_numpy(labels))


def _valid_labels(raw: Any, count: int, num_classes: int) -> np.ndarray | None:
    try:
        labels = np.asarray(raw, dtype=np.int64)
    except (TypeError, ValueError):
        return None
    if labels.shape != (count,) or (count and not 0 <= labels.min() <= labels.max() < num_classes):
        return None
    return labels


def _class_names(path: Path, layout: _Layout) -> list[str]:
    if not path.is_file():
        return [str(c) for c in range(layout.num_classes)]
    names = _unpickle(path, layout).get(layout.names_key)
    if not isinstance(names, list) or len(names) != layout.num_classes:
        _corrupt(path, layout, f"{layout.names_key!r} is not a list of {layout.num_classes} names")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR files hold (dicts, lists, bytes, numpy arrays): a tampered file runs no code."""

    _NUMPY_NAMES = {"_reconstruct", "ndarray", "dtype", "_frombuffer", "scalar"}

    def find_class(self, module: str, name: str) -> Any:
        numpy_array = module.split(".")[0] == "numpy" and name in self._NUMPY_NAMES
        python3_bytes = (module, name) == ("_codecs", "encode")  # how Python 3 pickles bytes at protocol 2
        if numpy_array or python3_bytes:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name}")


def _unpickle(path: Path, layout: _Layout) -> dict:
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()  # bytes: the files were pickled by Python 2
    except Exception as exc:  # any failure to unpickle means the same thing to the user: a bad file
        _corrupt(path, layout, f"not a valid pickle: {exc}")
    if not isinstance(batch, dict):
        _corrupt(path, layout, "not a pickled dict")
    return batch


def _corrupt(path: Path, layout: _Layout, reason: str) -> NoReturn:
    raise LtnasError(
        f"{path} is corrupt ({reason}); delete {path.parent} and download {layout.title} again (data.download=true)"
    )


def download_archive(archive: Archive, root: Path) -> None:
    """Fetch the tarball into root (unless a verified copy is there) and extract it safely."""
    root.mkdir(parents=True, exist_ok=True)
    target = root / archive.url.rsplit("/", 1)[-1]
    if not (target.is_file() and _md5(target) == archive.md5):
        partial = target.with_name(target.name + ".part")  # a killed download never looks complete
        try:
            with urllib.request.urlopen(archive.url, timeout=60) as response, open(partial, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
        except (urllib.error.URLError, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise LtnasError(
                f"could not download {archive.url} ({exc}); check the connection or put the file in {root} by hand"
            ) from None
        partial.replace(target)
        digest = _md5(target)
        if digest != archive.md5:
            target.unlink()
            raise LtnasError(
                f"downloaded {target.name} has md5 {digest}, expected {archive.md5}; "
                "the corrupt file was deleted, try the download again"
            )
    _extract(target, root)


def _extract(tarball: Path, root: Path) -> None:
    """Extract, refusing members that would land outside root (absolute paths, '..', links, devices)."""
    base = root.resolve()
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                inside = (base / member.name).resolve().is_relative_to(base)
                if not inside or not (member.isfile() or member.isdir()):
                    raise LtnasError(
                        f"{tarball} holds an unsafe entry '{member.name}'; delete the file and download it again"
                    )
            # the "data" filter (Python >= 3.11.4 / 3.10.12) re-checks the same, and drops odd permissions
            tar.extractall(base, members=members, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise LtnasError(f"cannot extract {tarball} ({exc}); delete it and download it again") from None


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # a checksum, not security
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
