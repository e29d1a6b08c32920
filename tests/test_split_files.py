"""Split files (data.source: split_files): ImageNet-LT's "relative/path label" lists under an image root,
with every bad input a one-line error (exit 2)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ltnas.cli import main
from ltnas.config import DataConfig, validate_config
from ltnas.data import build_dataset
from ltnas.data.split_files import load_split_files
from ltnas.data.streaming import FileImages
from ltnas.errors import LtnasError

from conftest import TINY_RUN


def write_split(root: Path, name: str, counts: list[int], size=(12, 10), gray: bool = False) -> Path:
    """PNGs root/<split>/n0000c/<i>.png for counts[c] images of class c, and root/<name>.txt listing them
    as ImageNet-LT does ("split/wnid/file label")."""
    split = name.split("_")[-1]
    lines = []
    for c, n in enumerate(counts):
        for i in range(n):
            path = Path(split) / f"n{c:04d}" / f"{i}.png"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            value = np.full((size[1], size[0], 3), (40 * c + 20, 100 + 10 * i, 220 - 30 * c), dtype=np.uint8)
            image = Image.fromarray(value)
            (image.convert("L") if gray else image).save(root / path)
            lines.append(f"{path} {c}")
    listing = root / f"{name}.txt"
    listing.write_text("\n".join(lines) + "\n")
    return listing


@pytest.fixture
def imagenet_lt(tmp_path) -> dict[str, Path]:
    root = tmp_path / "imagenet"
    return {"root": root, "train": write_split(root, "ImageNet_LT_train", [6, 3, 2]),
            "val": write_split(root, "ImageNet_LT_val", [1, 1, 1]),
            "test": write_split(root, "ImageNet_LT_test", [2, 2, 2])}


def data_config(lists: dict[str, Path], **extra) -> DataConfig:
    return DataConfig(source="split_files", root=str(lists["root"]), train_list=str(lists["train"]),
                      val_list=str(lists["val"]), test_list=str(lists["test"]), image_size=8, **extra)


def test_split_files_give_train_val_test_in_list_order(imagenet_lt):
    splits = load_split_files(imagenet_lt["root"], imagenet_lt["train"], imagenet_lt["test"], imagenet_lt["val"],
                              image_size=8)
    assert splits.classes == ["n0000", "n0001", "n0002"]  # the folders of each class's training images
    assert splits.train.labels.tolist() == [0] * 6 + [1] * 3 + [2] * 2
    assert splits.val.labels.tolist() == [0, 1, 2] and splits.test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert splits.train.images.shape == (11, 3, 8, 8)
    assert splits.train.images[:6, 1, 4, 4].tolist() == [100, 110, 120, 130, 140, 150]  # class 0's images in order
    assert splits.test.images[2, 0, 4, 4].item() == 60  # the test list's third image: class 1's red value
    without_val = load_split_files(imagenet_lt["root"], imagenet_lt["train"], imagenet_lt["test"], image_size=8)
    assert without_val.val is None and torch.equal(without_val.train.images, splits.train.images)


def test_dataset_keeps_the_lists_distribution_and_the_val_set(imagenet_lt):
    data = build_dataset(data_config(imagenet_lt), 0)
    assert data.profile == "none" and data.test_longtail is None  # already long-tailed: kept as it is
    assert data.train_counts == [6, 3, 2]
    summary = data.summary()
    assert summary["val_counts"] == [1, 1, 1] and summary["test_counts"] == [2, 2, 2]
    from ltnas.stages.retrain import retrain_split

    trained, monitored = retrain_split(validate_config({"train": {"val_fraction": 0.5}}), data)
    assert trained is data.train and monitored is data.val  # the given val list, not a share of train


def test_labels_not_named_by_one_folder_are_named_by_number(tmp_path):
    root = tmp_path / "r"
    train = write_split(root, "a_train", [2, 2])
    train.write_text("train/n0000/0.png 0\ntrain/n0000/1.png 1\ntrain/n0001/0.png 1\n\n")
    test = write_split(root, "a_test", [1, 1])
    assert load_split_files(root, train, test, image_size=8).classes == ["0", "1"]


def test_over_the_memory_budget_split_files_are_streamed(imagenet_lt, capsys):
    streamed = build_dataset(data_config(imagenet_lt, memory_budget_gb=1e-7), 0)
    assert "decodes to" in capsys.readouterr().err
    in_memory = build_dataset(data_config(imagenet_lt), 0)
    assert isinstance(streamed.train.images, FileImages)
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(streamed, part).images[:], getattr(in_memory, part).images)


@pytest.mark.parametrize("fault,message", [
    ("no_list", "split list .* not found"),
    ("bad_line", r"ImageNet_LT_train.txt, line 2: .* is not 'relative/path label'"),
    ("negative", r"line 1: .* is not 'relative/path label'"),
    ("missing_image", r"line 1: image .*0.png not found"),
    ("out_of_range", "label 7, outside the training list's 0..2"),
    ("gap", "has no image of class 1"),
    ("empty", "lists no images"),
    ("no_root", "image root .* not found"),
])
def test_bad_split_files_are_one_line_errors(imagenet_lt, fault, message):
    lists = dict(imagenet_lt)
    if fault == "no_list":
        lists["val"] = lists["root"] / "nowhere.txt"
    elif fault == "bad_line":
        lines = lists["train"].read_text().splitlines()
        lists["train"].write_text("\n".join([lines[0], "train/n0000/1.png", *lines[2:]]))
    elif fault == "negative":
        lists["test"].write_text("test/n0000/0.png -1\n")
    elif fault == "missing_image":
        (lists["root"] / "test" / "n0000" / "0.png").unlink()
    elif fault == "out_of_range":
        lists["test"].write_text("test/n0000/0.png 7\n")
    elif fault == "gap":
        lists["train"].write_text("train/n0000/0.png 0\ntrain/n0002/0.png 2\n")
    elif fault == "empty":
        lists["train"].write_text("\n")
    elif fault == "no_root":
        lists["root"] = lists["root"] / "missing"
    with pytest.raises(LtnasError, match=message):
        build_dataset(data_config(lists), 0)


def test_split_files_keys_are_checked_up_front():
    with pytest.raises(LtnasError, match="train_list applies to source split_files only, not folder"):
        validate_config({"data": {"source": "folder", "root": "x", "train_list": "a.txt"}})
    with pytest.raises(LtnasError, match="needs data.train_list and data.test_list"):
        build_dataset(DataConfig(source="split_files", root="."), 0)
    with pytest.raises(LtnasError, match="data.root is not set for source 'split_files'"):
        build_dataset(DataConfig(source="split_files", train_list="a", test_list="b"), 0)
    assert Path(DataConfig(source="split_files", root="r", train_list="t.txt").train_list).is_absolute()


def test_cli_run_on_split_files_and_its_bad_input(imagenet_lt, tmp_path, capsys):
    """A whole run (DARTS_V2 in the ImageNet network, retrained on the lists, monitored on the val list);
    then a missing list: one line, exit 2, no traceback."""
    raw = copy.deepcopy(TINY_RUN)
    raw["data"] = {"source": "split_files", "root": str(imagenet_lt["root"]), "image_size": 16,
                   "train_list": str(imagenet_lt["train"]), "val_list": str(imagenet_lt["val"]),
                   "test_list": str(imagenet_lt["test"])}
    raw["train"].update(genotype="DARTS_V2", epochs=1, cell={"init_channels": 4, "layers": 3, "stem": "imagenet"})
    config = tmp_path / "lt.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 0
    data = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]
    assert data["train_list"] == str(imagenet_lt["train"])
    import json

    evaluation = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert evaluation["balanced_test"]["num_samples"] == 6
    assert evaluation["balanced_test"]["top5"] is None  # three classes: top-5 is always right, not reported
    capsys.readouterr()
    code = main(["train", str(config), "--out", str(tmp_path / "run2"), "--set",
                 f"data.test_list={tmp_path / 'missing.txt'}"])
    err = capsys.readouterr().err
    assert code == 2 and "missing.txt not found" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
