"""Data layer: long-tail profiles, sources, splits, samplers, augmentation and on-device batches."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ltnas.config import AugmentConfig, DataConfig
from ltnas.data import (
    CIFAR_ARCHIVES,
    Archive,
    BatchAugment,
    DeviceBatches,
    ImageSet,
    build_dataset,
    class_balanced_indices,
    class_probabilities,
    instance_indices,
    load_cifar10,
    load_cifar100,
    load_digits,
    load_folder,
    longtail_counts,
    longtail_indices,
    make_synthetic,
    reversed_indices,
    stratified_split,
)
from ltnas.data.build import LONGTAIL_TEST_SEED
from ltnas.errors import LtnasError

# ---------------------------------------------------------------- profiles


@pytest.mark.parametrize(
    ("n_max", "num_classes", "ratio", "total"),
    [(5000, 10, 100, 12_406), (5000, 10, 10, 20_431), (500, 100, 100, 10_847)],
)
def test_exp_profile_matches_published_sizes(n_max, num_classes, ratio, total):
    assert sum(longtail_counts(n_max, num_classes, "exp", ratio=ratio)) == total
    assert sum(longtail_counts(n_max, num_classes, "exp", factor=1 / ratio)) == total


def test_exp_profile_per_class():
    assert longtail_counts(5000, 10, ratio=100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def test_step_and_balanced_profiles():
    assert longtail_counts(5000, 10, "step", ratio=100) == [5000] * 5 + [50] * 5
    assert longtail_counts(100, 5, "step", factor=0.1) == [100, 100, 10, 10, 10]  # C // 2 = 2 head classes
    assert longtail_counts(7, 3, "balanced") == [7, 7, 7]
    assert longtail_counts(7, 3, "balanced", ratio=10) == [7, 7, 7]  # imbalance ignored


def test_single_class_profile():
    assert longtail_counts(40, 1, "exp", ratio=10) == [40]
    assert longtail_counts(40, 1, "step", ratio=10) == [40]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ratio": 10, "factor": 0.1},  # both
        {},  # neither
        {"ratio": 0.5},
        {"factor": 0.0},
        {"factor": -0.1},
        {"factor": 1.5},
    ],
)
def test_bad_imbalance_raises(kwargs):
    with pytest.raises(LtnasError):
        longtail_counts(100, 10, "exp", **kwargs)


def test_unknown_profile_lists_choices():
    with pytest.raises(LtnasError, match="exp, step, balanced"):
        longtail_counts(100, 10, "zipf", ratio=10)


def test_longtail_indices_counts_and_determinism():
    labels = np.repeat(np.arange(4), 50)
    counts = [50, 20, 8, 3]
    chosen = longtail_indices(labels, counts, seed=0)
    assert chosen.dtype == np.int64
    assert np.all(np.diff(chosen) > 0)  # sorted, no repeats
    assert np.bincount(labels[chosen], minlength=4).tolist() == counts
    assert np.array_equal(chosen, longtail_indices(labels, counts, seed=0))
    assert not np.array_equal(chosen, longtail_indices(labels, counts, seed=1))


def test_longtail_indices_draws_from_a_shuffle():
    labels = np.zeros(100, dtype=np.int64)
    chosen = longtail_indices(labels, [10], seed=0)
    assert not np.array_equal(chosen, np.arange(10))  # not simply the first ten
    assert chosen.max() > 20


def test_longtail_indices_too_few_images_names_class():
    labels = np.repeat(np.arange(2), [5, 3])
    with pytest.raises(LtnasError, match=r"'dog' \(1\) has 3 images.*asks for 4.*data\.n_max"):
        longtail_indices(labels, [5, 4], seed=0, class_names=["cat", "dog"])


# ---------------------------------------------------------------- CIFAR pickles

CIFAR10_PER_BATCH = 2  # images per class in each of the 5 training batches → 10 per class


def _dump(path: Path, obj: dict) -> None:
    # Protocol 2 with the numpy module path of the official (Python 2) files.
    data = pickle.dumps(obj, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path.write_bytes(data)


def _cifar_rows(num_classes: int, per_class: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    labels = [c for c in range(num_classes) for _ in range(per_class)]
    rng.shuffle(labels)
    return rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8), labels


def make_cifar10(root: Path, meta: bool = True, per_batch: int = CIFAR10_PER_BATCH) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        data, labels = _cifar_rows(10, per_batch, seed=i)
        if i == 3:  # a known pixel: image 5 of batch 3, channel 2 (blue), row 7, column 11
            data[5] = 0
            data[5, 2 * 1024 + 7 * 32 + 11] = 201
        _dump(folder / f"data_batch_{i}", {b"batch_label": b"batch", b"data": data, b"labels": labels})
    data, labels = _cifar_rows(10, 3, seed=0)
    _dump(folder / "test_batch", {b"batch_label": b"test", b"data": data, b"labels": labels})
    if meta:
        names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
        _dump(folder / "batches.meta", {b"label_names": names, b"num_vis": 3072})
    return folder


def make_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, per_class in (("train", 10), ("test", 2)):
        data, labels = _cifar_rows(100, per_class, seed=per_class)
        coarse = [c // 5 for c in labels]
        _dump(folder / name, {b"data": data, b"fine_labels": labels, b"coarse_labels": coarse})
    _dump(folder / "meta", {b"fine_label_names": [f"fine{c}".encode() for c in range(100)]})
    return folder


def test_cifar10_loads_real_layout(tmp_path):
    make_cifar10(tmp_path)
    train, test, classes = load_cifar10(tmp_path)
    assert train.images.shape == (100, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (30, 3, 32, 32)
    assert train.counts(10) == [10] * 10 and test.counts(10) == [3] * 10
    assert classes[0] == "airplane" and classes[9] == "truck"
    known = train.images[2 * 10 * CIFAR10_PER_BATCH + 5]  # batches are concatenated in order
    assert known[2, 7, 11] == 201 and int(known.sum()) == 201
    _, labels = _cifar_rows(10, CIFAR10_PER_BATCH, seed=1)
    assert train.labels[: len(labels)].tolist() == labels


def test_cifar10_without_meta_uses_numbers(tmp_path):
    make_cifar10(tmp_path, meta=False)
    assert load_cifar10(tmp_path).classes == [str(c) for c in range(10)]


def test_cifar100_loads_real_layout(tmp_path):
    make_cifar100(tmp_path)
    train, test, classes = load_cifar100(tmp_path)
    assert train.images.shape == (1000, 3, 32, 32) and len(test) == 200
    assert train.counts(100) == [10] * 100
    assert classes[42] == "fine42"
    data, labels = _cifar_rows(100, 10, seed=10)
    assert torch.equal(train.images[3, 1], torch.from_numpy(data[3, 1024:2048].reshape(32, 32)))
    assert train.labels.tolist() == labels


def test_cifar_missing_folder_says_where_and_how(tmp_path):
    with pytest.raises(LtnasError, match="data.download=true") as error:
        load_cifar10(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(error.value)
    with pytest.raises(LtnasError, match="cifar-100-python"):
        load_cifar100(tmp_path)


def test_cifar_missing_file_named(tmp_path):
    folder = make_cifar10(tmp_path)
    (folder / "data_batch_4").unlink()
    with pytest.raises(LtnasError, match="data_batch_4 is missing"):
        load_cifar10(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        b"not a pickle at all",
        pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}),  # wrong shape
        pickle.dumps({b"labels": [0]}),  # no data
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}),  # label out of range
        pickle.dumps(os.getcwd),  # would import and call code: refused
    ],
)
def test_cifar_corrupt_file_named(tmp_path, content):
    folder = make_cifar10(tmp_path)
    (folder / "data_batch_2").write_bytes(content)
    with pytest.raises(LtnasError, match="corrupt") as error:
        load_cifar10(tmp_path)
    assert str(folder / "data_batch_2") in str(error.value)


def _tarball(source: Path, out: Path) -> str:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(source, arcname=source.name)
    return hashlib.md5(out.read_bytes()).hexdigest()


def test_cifar_download_from_local_tarball(tmp_path, monkeypatch):
    folder = make_cifar10(tmp_path / "made")
    tarball = tmp_path / "cifar-10-python.tar.gz"
    md5 = _tarball(folder, tarball)
    monkeypatch.setitem(CIFAR_ARCHIVES, "cifar10", Archive(tarball.as_uri(), md5))
    root = tmp_path / "root"
    train, test, classes = load_cifar10(root, download=True)
    assert len(train) == 100 and len(test) == 30 and classes[3] == "cat"
    assert (root / "cifar-10-batches-py" / "test_batch").is_file()


def test_cifar_download_wrong_md5_removes_file(tmp_path, monkeypatch):
    folder = make_cifar10(tmp_path / "made")
    tarball = tmp_path / "cifar-10-python.tar.gz"
    _tarball(folder, tarball)
    monkeypatch.setitem(CIFAR_ARCHIVES, "cifar10", Archive(tarball.as_uri(), "0" * 32))
    root = tmp_path / "root"
    with pytest.raises(LtnasError, match="md5"):
        load_cifar10(root, download=True)
    assert list(root.iterdir()) == []  # neither the corrupt download nor anything extracted from it


def test_cifar_download_refuses_escaping_member(tmp_path, monkeypatch):
    tarball = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    md5 = hashlib.md5(tarball.read_bytes()).hexdigest()
    monkeypatch.setitem(CIFAR_ARCHIVES, "cifar10", Archive(tarball.as_uri(), md5))
    with pytest.raises(LtnasError, match="unsafe"):
        load_cifar10(tmp_path / "root", download=True)
    assert not (tmp_path / "escaped.txt").exists()


def test_build_dataset_from_cifar10(tmp_path):
    make_cifar10(tmp_path)
    cfg = DataConfig(source="cifar10", root=str(tmp_path), n_max=10, ratio=10)
    data = build_dataset(cfg, seed=0)
    assert data.train_counts == longtail_counts(10, 10, ratio=10)
    assert data.test.counts(10) == [3] * 10
    assert data.test_longtail.counts(10) == longtail_counts(3, 10, ratio=10)
    assert (data.channels, data.image_size, data.num_classes) == (3, 32, 10)


def test_build_dataset_cifar_without_root():
    with pytest.raises(LtnasError, match="data.root"):
        build_dataset(DataConfig(source="cifar10"), seed=0)


# ---------------------------------------------------------------- image folders


def _png(path: Path, color, mode: str = "RGB", size=(10, 12)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


def test_folder_with_stratified_split(tmp_path):
    for i in range(5):
        _png(tmp_path / "cat" / f"{i}.png", (200, 10, 30))
        _png(tmp_path / "dog" / f"{i}.jpg", (0, 0, 255))
    _png(tmp_path / "dog" / "5.png", (0, 0, 255))
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    train, test, classes = load_folder(tmp_path, image_size=8, test_fraction=0.2)
    assert classes == ["cat", "dog"]
    assert train.images.shape[1:] == (3, 8, 8)
    assert train.counts(2) == [4, 5] and test.counts(2) == [1, 1]
    cat = train.images[train.labels == 0]
    assert cat[:, 0].eq(200).all() and cat[:, 1].eq(10).all()  # a solid colour survives the resize


def test_folder_with_train_and_test_and_grayscale(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for name in ("a", "b"):
            for i in range(n):
                _png(tmp_path / split / name / f"{i}.png", 77, mode="L")
    train, test, classes = load_folder(tmp_path, image_size=6)
    assert classes == ["a", "b"]
    assert train.images.shape == (6, 1, 6, 6) and test.images.shape == (4, 1, 6, 6)
    assert train.images.eq(77).all()


def test_folder_mixed_modes_become_rgb(tmp_path):
    _png(tmp_path / "a" / "0.png", 50, mode="L")
    _png(tmp_path / "a" / "1.png", 50, mode="L")
    _png(tmp_path / "b" / "0.png", (1, 2, 3))
    _png(tmp_path / "b" / "1.png", (1, 2, 3))
    train, _, _ = load_folder(tmp_path, image_size=4, test_fraction=0.5)
    assert train.images.shape[1] == 3


def test_folder_errors(tmp_path):
    with pytest.raises(LtnasError, match="not found"):
        load_folder(tmp_path / "missing")
    (tmp_path / "empty_root").mkdir()
    with pytest.raises(LtnasError, match="no class sub-folders"):
        load_folder(tmp_path / "empty_root")
    _png(tmp_path / "set" / "a" / "0.png", 1, mode="L")
    _png(tmp_path / "set" / "a" / "1.png", 1, mode="L")
    (tmp_path / "set" / "b").mkdir()
    with pytest.raises(LtnasError, match="has no images"):
        load_folder(tmp_path / "set")
    (tmp_path / "set" / "b" / "broken.png").write_bytes(b"definitely not a png")
    (tmp_path / "set" / "b" / "fine.png").write_bytes((tmp_path / "set" / "a" / "0.png").read_bytes())
    with pytest.raises(LtnasError, match="broken.png"):
        load_folder(tmp_path / "set")


def test_folder_build_with_profile_none_keeps_pool(tmp_path):
    for name, n in (("a", 6), ("b", 3)):
        for i in range(n):
            _png(tmp_path / "train" / name / f"{i}.png", 9, mode="L")
            _png(tmp_path / "test" / name / f"{i}.png", 9, mode="L")
    data = build_dataset(DataConfig(source="folder", root=str(tmp_path), profile="none", image_size=4), seed=0)
    assert data.train_counts == [6, 3] and data.ratio is None and data.test_longtail is None


# ---------------------------------------------------------------- digits and synthetic


def test_digits_source():
    train, test, classes = load_digits()
    assert len(train) + len(test) == 1797
    assert test.counts(10) == [50] * 10
    assert train.images.shape[1:] == (1, 8, 8) and int(train.images.max()) == 255


def test_digits_are_scikit_learns_read_without_importing_sklearn_datasets(monkeypatch):
    """ltnas reads the digits file scikit-learn ships (an import of sklearn.datasets costs ~1 CPU s): the same
    images and labels as `sklearn.datasets.load_digits`, without importing sklearn.datasets; where the file is
    not found, scikit-learn's loader gives them."""
    import sys

    from sklearn.datasets import load_digits as sklearn_digits

    from ltnas.data import sources

    reference = sklearn_digits()
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "sklearn.datasets", None)  # importing it now raises ImportError
        images, target = sources.digits_arrays()
        train, test, _ = load_digits()
    assert np.array_equal(images, reference.images) and np.array_equal(target, reference.target)
    assert images.dtype == reference.images.dtype and images.shape == (1797, 8, 8)
    assert len(train) + len(test) == 1797
    monkeypatch.setattr(sources.importlib.util, "find_spec", lambda name: None)
    fallback_images, fallback_target = sources.digits_arrays()
    assert np.array_equal(fallback_images, images) and np.array_equal(fallback_target, target)


def test_digits_build_follows_exp_ratio_50():
    pool, _, _ = load_digits()
    data = build_dataset(DataConfig(source="digits"), seed=0)
    assert data.ratio == 50
    assert data.train_counts == longtail_counts(min(pool.counts(10)), 10, ratio=50)
    other_seed = build_dataset(DataConfig(source="digits"), seed=1)
    assert torch.equal(data.test.images, other_seed.test.images)  # the test split ignores the run seed
    assert not torch.equal(data.train.labels, other_seed.train.labels) or not torch.equal(
        data.train.images, other_seed.train.images
    )


def test_longtail_test_set_does_not_depend_on_the_run_seed():
    """Every seed of a comparison is scored on the same long-tailed test images; the training subset moves."""
    runs = [build_dataset(DataConfig(source="digits"), seed=seed) for seed in (0, 1, 7)]
    for run in runs[1:]:
        assert torch.equal(run.test_longtail.images, runs[0].test_longtail.images)
        assert torch.equal(run.test_longtail.labels, runs[0].test_longtail.labels)
        assert not torch.equal(run.train.images, runs[0].train.images)
    # it is the subset the fixed seed draws from the balanced test split (a seeded shuffle, not its head)
    counts = runs[0].test_longtail.counts(10)
    expected = runs[0].test.subset(longtail_indices(runs[0].test.labels.numpy(), counts, LONGTAIL_TEST_SEED))
    assert torch.equal(runs[2].test_longtail.images, expected.images)
    synthetic = [build_dataset(DataConfig(source="synthetic", profile="step", ratio=10), seed=s) for s in (2, 5)]
    assert torch.equal(synthetic[0].test_longtail.images, synthetic[1].test_longtail.images)


def test_build_n_max_too_large_names_class_and_fix():
    with pytest.raises(LtnasError, match=r"class '0' \(0\) has \d+ images.*data\.n_max"):
        build_dataset(DataConfig(source="digits", n_max=500), seed=0)


def test_synthetic_is_fixed_and_learnable():
    train, test, classes = make_synthetic(num_classes=10, channels=3, image_size=16, per_class=100, test_per_class=20)
    assert train.images.shape == (1000, 3, 16, 16) and test.counts(10) == [20] * 10
    again = make_synthetic(per_class=30)
    assert torch.equal(again.test.images, test.images)  # the pool size does not move the test set
    # nearest class mean: chance is 10 %
    means = torch.stack([train.images[train.labels == c].float().mean(0) for c in range(10)])
    distances = torch.cdist(test.images.float().flatten(1), means.flatten(1))
    accuracy = (distances.argmin(1) == test.labels).float().mean().item()
    assert accuracy > 0.8


def test_build_synthetic_summary_and_profiles():
    data = build_dataset(DataConfig(source="synthetic", ratio=10), seed=3)
    assert data.train_counts == longtail_counts(100, 10, ratio=10)
    assert data.test_longtail.counts(10) == longtail_counts(20, 10, ratio=10)
    summary = json.loads(json.dumps(data.summary()))
    assert summary["image_shape"] == [3, 16, 16] and summary["ratio"] == 10
    mean, std = data.mean, data.std
    pixels = data.train.images.double() / 255
    assert np.allclose(mean, pixels.mean(dim=(0, 2, 3)).tolist())
    assert np.allclose(std, pixels.std(dim=(0, 2, 3), unbiased=False).tolist())
    assert torch.equal(build_dataset(DataConfig(source="synthetic", ratio=10), seed=3).train.images, data.train.images)

    by_factor = build_dataset(DataConfig(source="synthetic", profile="step", factor=0.1, longtail_test=False), 0)
    assert by_factor.ratio == 10 and by_factor.test_longtail is None
    assert by_factor.train_counts == [100] * 5 + [10] * 5
    balanced = build_dataset(DataConfig(source="synthetic", profile="balanced", n_max=30), 0)
    assert balanced.train_counts == [30] * 10 and balanced.ratio == 1.0 and balanced.test_longtail is None


# ---------------------------------------------------------------- splits and samplers


def test_stratified_split_proportions_and_minimum():
    labels = np.repeat(np.arange(4), [10, 7, 2, 1])
    first, second = stratified_split(labels, 0.5, seed=0)
    assert np.array_equal(np.sort(np.concatenate([first, second])), np.arange(len(labels)))
    assert np.all(np.diff(first) > 0) and np.all(np.diff(second) > 0)
    assert np.bincount(labels[second], minlength=4).tolist() == [5, round(3.5), 1, 0]
    assert np.bincount(labels[first], minlength=4).tolist() == [5, 3, 1, 1]
    _, small = stratified_split(labels, 0.01, seed=0)
    assert np.bincount(labels[small], minlength=4).tolist() == [1, 1, 1, 0]  # at least one on each side
    big_first, _ = stratified_split(labels, 0.99, seed=0)
    assert np.bincount(labels[big_first], minlength=4).tolist() == [1, 1, 1, 1]
    assert np.array_equal(stratified_split(labels, 0.5, seed=0)[1], second)
    assert np.array_equal(stratified_split(torch.from_numpy(labels), 0.5, seed=0)[1], second)  # tensors too


def test_class_balanced_sampler_is_uniform_over_classes():
    counts = longtail_counts(500, 10, ratio=50)
    labels = torch.arange(10).repeat_interleave(torch.tensor(counts))
    generator = torch.Generator().manual_seed(0)
    drawn = labels[class_balanced_indices(labels, 20_000, generator)]
    histogram = torch.bincount(drawn, minlength=10)
    assert histogram.min() > 0.75 * 2000 and histogram.max() < 1.25 * 2000
    order = instance_indices(len(labels), len(labels), generator, "cpu")
    assert torch.equal(order.sort().values, torch.arange(len(labels)))  # a permutation
    assert torch.bincount(labels[order], minlength=10).tolist() == counts


def test_class_probabilities_of_the_two_re_samplers_by_hand():
    labels = torch.tensor([0] * 8 + [1] * 4 + [3] * 2 + [4] * 1)  # class 2 has no image
    # reversed (BBN's): w_c = n_max / n_c = 1, 2, –, 4, 8 → P = w / 15
    expected = torch.tensor([1, 2, 0, 4, 8], dtype=torch.float64) / 15
    torch.testing.assert_close(class_probabilities(labels, "reversed"), expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(class_probabilities(labels, "class_balanced"),
                               torch.tensor([0.25, 0.25, 0.0, 0.25, 0.25], dtype=torch.float64), rtol=0, atol=1e-15)


def test_reversed_sampler_draws_class_c_in_proportion_to_one_over_n_c():
    """BBN's "reverse" sampler: empirical class frequencies (fixed generator) against P(c) = (1/n_c) / Σ 1/n."""
    counts = [400, 100, 25, 5]
    labels = torch.arange(4).repeat_interleave(torch.tensor(counts))
    n = 100_000
    index = reversed_indices(labels, n, torch.Generator().manual_seed(0))
    frequencies = torch.bincount(labels[index], minlength=4).double() / n
    expected = torch.tensor([1 / c for c in counts], dtype=torch.float64)
    expected /= expected.sum()
    assert torch.all((frequencies - expected).abs() < 4 * (expected * (1 - expected) / n).sqrt()), frequencies
    assert frequencies[3] > 0.75 > frequencies[0] * 70  # the tail is drawn most: the reverse of the data
    # within a class every image is equally likely: class 1's 100 images about equally often
    within = torch.bincount(index[labels[index] == 1] - 400, minlength=100).double()
    assert within.min() > 0.5 * within.mean() and within.max() < 1.5 * within.mean()
    again = reversed_indices(labels, n, torch.Generator().manual_seed(0))
    assert torch.equal(index, again)  # the generator is the only source of randomness


def test_instance_sampler_cycles():
    generator = torch.Generator().manual_seed(0)
    drawn = instance_indices(10, 25, generator, "cpu")
    times = torch.bincount(drawn, minlength=10)
    assert len(drawn) == 25 and times.min() == 2 and times.max() == 3
    assert torch.equal(drawn[:10].sort().values, torch.arange(10))


# ---------------------------------------------------------------- augmentation


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_augment_shape_and_identity():
    x = torch.rand(8, 3, 16, 16)
    assert BatchAugment(AugmentConfig(cutout=4))(x, _generator()).shape == x.shape
    off = BatchAugment(AugmentConfig(crop_padding=0, flip=False, cutout=0))
    assert torch.equal(off(x, _generator()), x)


def test_augment_flip():
    x = torch.rand(64, 2, 5, 7)
    out = BatchAugment(AugmentConfig(crop_padding=0, flip=True))(x, _generator())
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert torch.all(same | mirrored) and same.any() and mirrored.any()


def test_augment_crop_is_a_window_of_the_padded_image():
    x = torch.rand(16, 3, 8, 8)
    out = BatchAugment(AugmentConfig(crop_padding=2, flip=False))(x, _generator())
    padded = F.pad(x, (2, 2, 2, 2))
    for n in range(len(x)):
        windows = [padded[n, :, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[n], w) for w in windows)


def test_augment_crop_pads_with_normalised_black():
    x = torch.ones(32, 1, 6, 6)
    out = BatchAugment(AugmentConfig(crop_padding=3, flip=False), mean=[0.5], std=[0.25])(x, _generator())
    assert set(out.unique().tolist()) == {-2.0, 1.0}  # raw 0 → (0 - 0.5) / 0.25


def test_augment_cutout_square():
    side, size = 6, 16
    x = torch.ones(200, 1, size, size)
    out = BatchAugment(AugmentConfig(crop_padding=0, flip=False, cutout=side))(x, _generator())
    zeros = out[:, 0] == 0
    inside = 0
    for mask in zeros:
        rows, cols = mask.nonzero(as_tuple=True)
        assert 0 < len(rows) <= side * side
        if rows.min() > 0 and cols.min() > 0 and rows.max() < size - 1 and cols.max() < size - 1:
            inside += 1  # not clipped by a border: a full side×side square
            assert len(rows) == side * side
            assert rows.max() - rows.min() + 1 == side and cols.max() - cols.min() + 1 == side
    assert inside > 10


def test_augment_reproducible_from_generator():
    x = torch.rand(8, 3, 12, 12)
    augment = BatchAugment(AugmentConfig(crop_padding=2, flip=True, cutout=4))
    assert torch.equal(augment(x, _generator(5)), augment(x, _generator(5)))
    assert not torch.equal(augment(x, _generator(5)), augment(x, _generator(6)))


# ---------------------------------------------------------------- on-device batches


def _indexed_set(n: int, num_classes: int = 3) -> ImageSet:
    """Image i holds the value i in every pixel, so a batch reveals which images it took."""
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    return ImageSet(images, torch.arange(n) % num_classes)


def _indices(x: torch.Tensor) -> list[int]:
    return (x[:, 0, 0, 0] * 255).round().long().tolist()  # mean 0, std 1: x = value / 255


def _batches(images: ImageSet, batch_size: int, seed: int = 0, **kwargs) -> DeviceBatches:
    return DeviceBatches(
        images, batch_size, device="cpu", mean=[0.0], std=[1.0], generator=_generator(seed), **kwargs
    )


def test_batches_in_order_without_shuffle():
    loader = _batches(_indexed_set(30), 7, shuffle=False)
    assert len(loader) == 5
    seen = [i for x, _ in loader for i in _indices(x)]
    assert seen == list(range(30))
    labels = torch.cat([y for _, y in loader])
    assert labels.dtype == torch.int64 and torch.equal(labels, torch.arange(30) % 3)


def test_batches_shuffled_reproducibly():
    loader = _batches(_indexed_set(30), 7)
    assert len(loader) == 4  # drop_last
    state = loader.generator.get_state()
    first = [_indices(x) for x, _ in loader]
    assert all(len(b) == 7 for b in first) and len({i for b in first for i in b}) == 28
    assert [i for b in first for i in b] != list(range(28))
    loader.generator.set_state(state)
    assert [_indices(x) for x, _ in loader] == first
    assert [_indices(x) for x, _ in loader] != first  # the next epoch is another order


def test_batches_len():
    assert len(_batches(_indexed_set(5), 8)) == 1
    assert [len(x) for x, _ in _batches(_indexed_set(5), 8)] == [5]
    assert len(_batches(_indexed_set(30), 7, drop_last=False)) == 5
    assert sum(len(x) for x, _ in _batches(_indexed_set(30), 7, drop_last=False)) == 30
    balanced = _batches(_indexed_set(30), 7, sampler="class_balanced")
    assert len(balanced) == 4 and [len(x) for x, _ in balanced] == [7] * 4


def test_batches_normalise_and_augment():
    images = ImageSet(torch.full((6, 2, 4, 4), 51, dtype=torch.uint8), torch.zeros(6, dtype=torch.int64))
    loader = DeviceBatches(
        images, 3, device="cpu", mean=[0.1, 0.2], std=[0.5, 0.25], generator=_generator(), shuffle=False
    )
    x, _ = next(iter(loader))
    assert x.dtype == torch.float32
    assert torch.allclose(x[:, 0], torch.tensor(0.2)) and torch.allclose(x[:, 1], torch.tensor(0.0), atol=1e-6)
    augmented = DeviceBatches(
        images, 3, device="cpu", mean=[0.1, 0.2], std=[0.5, 0.25], generator=_generator(), augment=AugmentConfig()
    )
    assert [x.shape for x, _ in augmented] == [(3, 2, 4, 4)] * 2


def test_batches_unknown_sampler():
    with pytest.raises(LtnasError, match="instance, class_balanced, reversed"):
        _batches(_indexed_set(4), 2, sampler="balanced")


def test_in_order_view_shares_the_device_copy_and_covers_every_image_once():
    images = ImageSet(torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8), torch.arange(10) % 3)
    training = DeviceBatches(images, 4, device="cpu", mean=[0.5], std=[0.25], generator=torch.Generator(),
                             augment=AugmentConfig(crop_padding=1, flip=True))
    view = training.in_order(3)
    assert view.images.data_ptr() == training.images.data_ptr()  # no second copy
    xs, ys = zip(*view)
    assert [len(y) for y in ys] == [3, 3, 3, 1]
    torch.testing.assert_close(torch.cat(ys), images.labels)
    torch.testing.assert_close(torch.cat(xs), (images.images.float() / 255 - 0.5) / 0.25)  # no augmentation


def test_a_source_of_users_data_is_not_cut_to_its_rarest_class(monkeypatch):
    """Only the benchmark sources (published class order, near-equal pools) take their smallest class as
    the head; any other source (here a stand-in for a CSV-like one) ranks classes by size and keeps its
    largest class whole."""
    from ltnas.config import DataConfig
    from ltnas.data import build as build_module
    from ltnas.data.build import BENCHMARK_SOURCES, class_rank

    counts = [12, 40, 25]  # class 1 is the largest; class 0 the rarest
    labels = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in enumerate(counts)])
    pool = ImageSet(torch.zeros(len(labels), 1, 4, 4, dtype=torch.uint8), labels)
    test = ImageSet(torch.zeros(6, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 0, 1, 1, 2, 2]))
    monkeypatch.setattr(build_module, "load_source", lambda cfg: (pool, test, ["a", "b", "c"]))
    cfg = DataConfig.model_construct(**{**DataConfig().model_dump(), "source": "table", "ratio": 4.0,
                                        "augment": DataConfig().augment})
    assert "table" not in BENCHMARK_SOURCES and class_rank("table", counts) == [1, 2, 0]
    data = build_dataset(cfg, seed=0)
    assert data.train.counts(3) == [longtail_counts(40, 3, ratio=4.0)[k] for k in (2, 0, 1)] == [10, 40, 20]
    assert class_rank("synthetic", counts) == [0, 1, 2]  # benchmark sources keep their order


def test_rotation_and_zoom_turn_each_image_about_its_centre_with_black_outside():
    from ltnas.data.augment import BatchAugment

    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 6] = 1.0  # right of the centre: at (x, y) = (2 / 4.5, 0) in [-1, 1]² coordinates
    coords = (torch.arange(9) + 0.5) / 4.5 - 1
    augment = BatchAugment(AugmentConfig(crop_padding=0, flip=False, rotate=90.0))
    for seed in range(5):
        out = augment(x, torch.Generator().manual_seed(seed))[0, 0]
        u = torch.rand(1, generator=torch.Generator().manual_seed(seed))  # the generator's first draw: the angle
        a = torch.deg2rad((2 * u - 1) * 90)
        # output p reads the input at R(a) p, so the pixel lands at R(-a) (r, 0) = (r cos a, -r sin a)
        mass = out.clamp(min=0)
        centre_x = (mass.sum(0) * coords).sum() / mass.sum()
        centre_y = (mass.sum(1) * coords).sum() / mass.sum()
        assert centre_x == pytest.approx(float(2 / 4.5 * torch.cos(a)), abs=0.08)
        assert centre_y == pytest.approx(float(-2 / 4.5 * torch.sin(a)), abs=0.08)
    # raw black outside: normalised with mean 0.5, std 0.25, a mid-grey image zoomed out shows black corners
    normalised = BatchAugment(AugmentConfig(crop_padding=0, flip=False, zoom=0.5), mean=[0.5], std=[0.25])
    out = normalised(torch.zeros(64, 1, 8, 8), torch.Generator().manual_seed(0))
    assert out.min() == pytest.approx(-2.0) and out.max() == pytest.approx(0.0, abs=1e-6)
    # off by default: no random number drawn, the batch unchanged
    generator = torch.Generator().manual_seed(0)
    plain = BatchAugment(AugmentConfig(crop_padding=0, flip=False))
    assert torch.equal(plain(x, generator), x)
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(0).get_state())
