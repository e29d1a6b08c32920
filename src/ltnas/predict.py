"""Predict classes of image files with a trained run: `ltnas predict RUN_DIR IMAGE|FOLDER...`."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ltnas.atomic import atomic_write_text
from ltnas.data.folder import IMAGE_SUFFIXES
from ltnas.errors import LtnasError
from ltnas.model_io import LoadedModel


def collect_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Files as given; folders → their image files (IMAGE_SUFFIXES), recursively, sorted."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise LtnasError(f"folder {path} holds no images ({'/'.join(IMAGE_SUFFIXES)}); pass images or "
                                 "folders of images")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise LtnasError(f"{path} not found; pass existing image files or folders")
    if not files:
        raise LtnasError("no images given; pass image files or folders")
    return files


@torch.no_grad()
def predict_images(loaded: LoadedModel, images: Sequence[Any], top_k: int = 1,
                   batch_size: int = 64) -> list[dict[str, Any]]:
    """Per image: the predicted class, its softmax probability, and the top-k (class, probability) pairs."""
    model, preprocess, classes = loaded
    if top_k < 1:
        raise LtnasError(f"--top-k must be at least 1, got {top_k}")
    top_k = min(top_k, len(classes))
    device = next(model.parameters()).device
    rows = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        probabilities = model(preprocess(list(chunk)).to(device)).softmax(1).cpu()
        values, indices = probabilities.topk(top_k, dim=1)
        for item, value, index in zip(chunk, values.tolist(), indices.tolist()):
            top = [(classes[c], p) for c, p in zip(index, value)]
            rows.append({"image": str(item) if isinstance(item, (str, Path)) else None, "class": top[0][0],
                         "probability": top[0][1], "top": top})
    return rows


def format_row(row: dict[str, Any]) -> str:
    """`path  class  0.9120` plus `(top-k: a 0.9120, b 0.0510)` when k > 1."""
    line = f"{row['image']}\t{row['class']}\t{row['probability']:.4f}"
    if len(row["top"]) > 1:
        line += "\t(top-" + str(len(row["top"])) + ": " + ", ".join(f"{c} {p:.4f}" for c, p in row["top"]) + ")"
    return line


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    """image, class, probability, then class_i / probability_i for each of the top k (atomically)."""
    k = max(len(row["top"]) for row in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["image", "class", "probability"]
                    + [name for i in range(1, k + 1) for name in (f"class_{i}", f"probability_{i}")])
    for row in rows:
        writer.writerow([row["image"], row["class"], f"{row['probability']:.6f}"]
                        + [value for c, p in row["top"] for value in (c, f"{p:.6f}")])
    path = Path(path)
    if not path.parent.is_dir():
        raise LtnasError(f"cannot write {path}: folder {path.parent} does not exist; create it or choose another --out")
    atomic_write_text(buffer.getvalue(), path)

