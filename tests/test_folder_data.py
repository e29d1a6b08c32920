"""Your own image folder, honestly handled: its distribution kept, profiles ranked by class size, sizes
derived from the data, quickstart keys not carried over, absolute roots, honest test-set names, and
folders larger than the memory budget streamed batch by batch."""

from __future__ import annotations

import copy
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ltnas.cli import main, resolve_config_path
from ltnas.config import DataConfig, load_config, validate_config
from ltnas.data import DeviceBatches, build_dataset, load_folder, longtail_counts
from ltnas.data.folder import DEFAULT_MAX_SIDE
from ltnas.data.streaming import FileImages
from ltnas.errors import LtnasError
from ltnas.report import write_report
from ltnas.report.naming import few_test_images, name_of_test_set
from ltnas.report.summary import summary_rows

from conftest import TINY_RUN


def _image(path: Path, size: tuple[int, int], value, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(str(path.name).encode()))
    channels = () if mode == "L" else (3,)
    pixels = (np.asarray(value) + rng.integers(-20, 20, (size[1], size[0], *channels))).clip(0, 255)
    Image.fromarray(pixels.astype(np.uint8)).convert(mode).save(path)


def _folder(root: Path, counts: dict[str, int], size=(14, 10), mode: str = "RGB") -> Path:
    for c, (name, n) in enumerate(counts.items()):
        for i in range(n):
            _image(root / name / f"{i}.png", size, 60 * c + 30 if mode == "L" else (60 * c + 30, 90, 200 - 50 * c),
                   mode)
    return root


# ------------------------------------------------------------------------------- sizes and profiles


def test_default_size_is_the_median_shorter_side(tmp_path):
    for i, size in enumerate([(20, 12), (15, 16), (30, 14), (14, 40)]):
        _image(tmp_path / "a" / f"{i}.png", size, 100)
        _image(tmp_path / "b" / f"{i}.png", size, 50)
    train, _, _ = load_folder(tmp_path, test_fraction=0.25)
    assert train.images.shape[2:] == (14, 14)  # shorter sides 12, 15, 14, 14 → median 14
    big = tmp_path / "big"
    for name in ("a", "b"):
        for i in range(2):
            _image(big / name / f"{i}.png", (300, 200), 10)
    assert load_folder(big, test_fraction=0.5).train.images.shape[2] == DEFAULT_MAX_SIDE


def test_folder_keeps_its_distribution_by_default(tmp_path):
    _folder(tmp_path, {"a": 3, "b": 9, "c": 6})
    config = DataConfig(source="folder", root=str(tmp_path), image_size=4)
    assert config.profile == "none" and DataConfig(source="digits").profile == "exp"
    data = build_dataset(config, seed=0)
    assert data.train_counts == data.train.counts(3) and sum(data.train_counts) + sum(data.test.counts(3)) == 18


def test_a_profile_on_a_folder_ranks_classes_by_size(tmp_path):
    """a 3, b 9, c 6 images as train/test given: exp ratio 3 gives b (the largest) 9, c 5, a 3."""
    for split in ("train", "test"):
        _folder(tmp_path / split, {"a": 3, "b": 9, "c": 6})
    data = build_dataset(DataConfig(source="folder", root=str(tmp_path), image_size=4, profile="exp", ratio=3), 0)
    head, middle, tail = longtail_counts(9, 3, "exp", ratio=3)
    assert data.train_counts == [tail, head, middle] == [3, 9, 5]


def test_a_profile_too_steep_for_a_class_names_the_n_max_that_fits(tmp_path):
    for split in ("train", "test"):
        _folder(tmp_path / split, {"a": 2, "b": 9, "c": 8})  # exp ratio 2 from 9 asks c for 6 and a for 4
    config = DataConfig(source="folder", root=str(tmp_path), image_size=4, profile="exp", ratio=2)
    with pytest.raises(LtnasError) as error:
        build_dataset(config, 0)
    message = str(error.value)
    assert "class 'a' (0), the number 3 of 3 by size, has 2 images" in message
    assert "set data.n_max to at most 5" in message and "data.profile: none" in message
    fitted = build_dataset(DataConfig(source="folder", root=str(tmp_path), image_size=4, profile="exp", ratio=2,
                                      n_max=5), 0)
    assert fitted.train_counts == [2, 5, 3]
    with pytest.raises(LtnasError):
        build_dataset(DataConfig(source="folder", root=str(tmp_path), image_size=4, profile="exp", ratio=2,
                                 n_max=6), 0)


# ----------------------------------------------------------------------------------------- config


def test_quickstart_keys_do_not_follow_a_switch_to_folder(tmp_path, monkeypatch):
    _folder(tmp_path / "mine", {"a": 2, "b": 2})
    monkeypatch.chdir(tmp_path)
    config = load_config(resolve_config_path("quickstart"), ["data.source=folder", "data.root=mine"])
    data = config.data
    assert (data.profile, data.ratio, data.test_per_class, data.num_classes, data.channels) == (
        "none", None, None, None, None)
    assert data.root == str(tmp_path / "mine")  # saved absolute
    # keys set with --set stay
    kept = load_config(resolve_config_path("quickstart"), ["data.source=folder", "data.root=mine",
                                                            "data.profile=exp", "data.ratio=2"])
    assert (kept.data.profile, kept.data.ratio) == ("exp", 2)


def test_keys_of_another_source_are_refused():
    with pytest.raises(LtnasError, match="test_per_class applies to source digits, synthetic only, not folder"):
        validate_config({"data": {"source": "folder", "root": "x", "test_per_class": 5}})
    with pytest.raises(LtnasError, match="num_classes applies to source synthetic only"):
        validate_config({"data": {"source": "cifar10", "num_classes": 10}})


# ------------------------------------------------------------------------------- a run on a folder


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> Path:
    """A search-free run (DARTS_V2, tiny) on a stratified split of 10/6/3 images, started with a
    relative data.root from the folder above the images."""
    base = tmp_path_factory.mktemp("folder-run")
    _folder(base / "images", {"ant": 10, "bee": 6, "cat": 3})
    raw = copy.deepcopy(TINY_RUN)
    raw["data"] = {"source": "folder", "root": "images", "image_size": 8}
    raw["train"].update(genotype="DARTS_V2", epochs=1)
    (base / "tiny.yaml").write_text(__import__("yaml").safe_dump(raw))
    old = Path.cwd()
    try:
        import os

        os.chdir(base)
        assert main(["run", "tiny.yaml", "--out", "run"]) == 0
    finally:
        os.chdir(old)
    return base / "run"


def test_eval_from_another_directory(folder_run, tmp_path, monkeypatch, capsys):
    assert f"root: {folder_run.parent / 'images'}" in (folder_run / "config.yaml").read_text()
    monkeypatch.chdir(tmp_path)
    assert main(["eval", str(folder_run), "--device", "cpu"]) == 0


def test_report_names_the_stratified_split_and_warns(folder_run, capsys):
    import json

    evaluation = json.loads((folder_run / "eval.json").read_text())
    counts = [sum(row) for row in evaluation["balanced_test"]["confusion"]]
    assert counts == [2, 1, 1]  # 20 % of 10 / 6 / 3, at least one each
    assert name_of_test_set(evaluation["balanced_test"]) == "test"
    rows = dict(summary_rows(evaluation))
    assert "Test: balanced" in rows and not any(name.startswith("Balanced test") for name in rows)
    text = write_report(folder_run).read_text()
    assert "| accuracy | test |" in text and "balanced test" not in text
    assert "| class | train images | group | test images | test |" in text
    assert "| ant | 8 | many | 2 |" in text  # shot thresholds scale with n_max 8 (eval.many_shot)
    assert "**Warning:** 3 of 3 classes have fewer than 5 test images: ant (2), bee (1), cat (1)" in text
    assert main(["eval", str(folder_run), "--device", "cpu"]) == 0
    assert "warning: 3 of 3 classes have fewer than 5 test images" in " ".join(capsys.readouterr().out.split())


def test_test_set_names():
    balanced = {"confusion": [[3, 0], [1, 2]]}
    assert name_of_test_set(balanced) == "balanced test" and few_test_images(balanced, ["x", "y"]).startswith(
        "2 of 2 classes have fewer than 5 test images: x (3), y (3)")
    assert name_of_test_set({"confusion": [[5, 0], [1, 0]]}) == "test"
    assert few_test_images({"confusion": [[5, 0], [0, 5]]}) is None


# --------------------------------------------------------------------------------------- streaming


def test_folder_over_the_memory_budget_is_streamed_with_the_same_pixels(tmp_path, capsys):
    _folder(tmp_path, {"a": 5, "b": 4}, size=(12, 9), mode="L")
    in_memory = load_folder(tmp_path, image_size=6, test_fraction=0.25)
    streamed = load_folder(tmp_path, image_size=6, test_fraction=0.25, memory_budget_gb=1e-7)
    assert "decodes to" in capsys.readouterr().err
    assert isinstance(streamed.train.images, FileImages) and streamed.train.images.shape == (7, 1, 6, 6)
    for part in ("train", "test"):
        memory_set, streamed_set = getattr(in_memory, part), getattr(streamed, part)
        assert torch.equal(streamed_set.images[:], memory_set.images)
        assert torch.equal(streamed_set.labels, memory_set.labels)
    assert streamed.train.channel_stats() == in_memory.train.channel_stats()
    subset = streamed.train.subset([4, 0, 2])
    assert isinstance(subset.images, FileImages)
    assert torch.equal(subset.images[:], in_memory.train.images[[4, 0, 2]])

    def batches(images):
        return list(DeviceBatches(images, 3, device="cpu", mean=[0.5], std=[0.25],
                                  generator=torch.Generator().manual_seed(3), augment=None))

    for (x_memory, y_memory), (x_stream, y_stream) in zip(batches(in_memory.train), batches(streamed.train)):
        assert torch.equal(x_memory, x_stream) and torch.equal(y_memory, y_stream)


def test_streamed_folder_builds_a_dataset(tmp_path):
    _folder(tmp_path, {"a": 5, "b": 4}, size=(12, 9))
    config = DataConfig(source="folder", root=str(tmp_path), image_size=6, memory_budget_gb=1e-7)
    streamed = build_dataset(config, 0)
    in_memory = build_dataset(DataConfig(source="folder", root=str(tmp_path), image_size=6), 0)
    summary, expected = streamed.summary(), in_memory.summary()
    for key in ("mean", "std"):
        assert summary.pop(key) == pytest.approx(expected.pop(key))
    assert summary == expected


def test_a_comparison_of_folder_runs_names_its_test_set_too(folder_run, tmp_path):
    """The comparison table, its verdict and comparison.md call a stratified split "test", as the run
    report does; comparisons of balanced test sets keep "balanced test"."""
    import shutil
    from types import SimpleNamespace

    from ltnas.report.comparison import table_rows, verdict, write_comparison

    members = []
    for variant in ("A", "B"):  # a comparison's members live in its folder
        shutil.copytree(folder_run, tmp_path / variant, ignore=shutil.ignore_patterns(".lock"))
        members.append((variant, 0, tmp_path / variant))
    spec = SimpleNamespace(title="folder", seeds=[0], published=None)
    result = write_comparison(tmp_path, spec, members)
    assert result["test_set"] == "test"
    header, _ = table_rows(result)
    assert header[1] == "test" and "balanced test" not in header
    assert "% test accuracy" in verdict(result)
    assert "on the test set" in (tmp_path / "comparison.md").read_text()
    assert table_rows({**result, "test_set": None})[0][1] == "balanced test"  # comparison.json from before
