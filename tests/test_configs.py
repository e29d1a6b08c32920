"""The shipped configs: valid, faithful to the papers' settings, and runnable at smoke scale."""

from __future__ import annotations

import json

import pytest
import yaml

from ltnas.cli import main, resolve_config_path, shipped_configs
from ltnas.compare import is_comparison_file, read_comparison_file
from ltnas.config import load_config
from test_data import make_cifar10


# Comparison files (a `compare:` section, run by `ltnas compare`) live beside the run configs.
RUN_CONFIGS = sorted(name for name, path in shipped_configs().items() if "compare" not in yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("name", RUN_CONFIGS)
def test_every_shipped_config_is_valid(name):
    """A run config validates; a comparison file's every variant does."""
    path = shipped_configs()[name]
    if not is_comparison_file(path):
        load_config(path)
        return
    spec = read_comparison_file(path, resolve_config_path)
    for changes in spec.variants.values():
        load_config(spec.base, changes)
    if spec.published:
        for numbers in spec.published.by_metric().values():
            assert set(numbers) <= set(spec.variants)


def test_ssf_configs_follow_paper_000():
    config = load_config(shipped_configs()["ssf_cifar10_lt"])
    data, search, train = config.data, config.search, config.train
    assert (data.source, data.profile, data.factor, data.longtail_test) == ("cifar10", "exp", 0.01, True)
    assert (search.method, search.cell.layers, search.epochs, len(search.cell.primitives)) == ("ssf", 8, 40, 8)
    assert (search.batch_size, search.sgd.lr, search.arch_lr, search.derive) == (128, 0.005, 3e-3, "threshold")
    assert train.epochs == 150
    assert config.published.values == {"darts": 78.26, "fairdarts": 79.35, "ssf": 82.64}

    spec = read_comparison_file(shipped_configs()["ssf_cifar10_lt_table"], resolve_config_path)
    settings = {tuple(changes) for changes in spec.variants.values()}
    assert len(settings) == 12
    for method in ("darts", "fairdarts", "ssf"):
        for profile in ("exp", "step"):
            for factor in (0.01, 0.1):
                assert (f"search.method={method}", f"data.profile={profile}", f"data.factor={factor}") in settings


def test_fairdarts_cifar10_config_uses_the_authors_settings():
    config = load_config(shipped_configs()["fairdarts_cifar10"])
    search = config.search
    primitives = search.cell.primitives
    assert config.data.profile == "balanced" and "none" not in primitives and len(primitives) == 7
    assert (search.batch_size, search.sgd.lr, search.sgd.lr_min, search.arch_lr) == (128, 0.005, 0.001, 3e-3)
    assert (search.order, search.derive, search.threshold, search.fairdarts.zero_one_weight) == ("first", "threshold", 0.85, 10)
    assert config.published.values == {"fairdarts": 97.46}


# n_max 20 with the paper's factor 0.01 would leave the tail classes without an image (refused), so the
# long-tailed smoke runs take factor 0.1 (ratio 10) on these small files.
@pytest.mark.parametrize("name,extra", [("ssf_cifar10_lt_smoke", ["--set", "data.factor=0.1"]),
                                        ("fairdarts_cifar10_smoke", []),
                                        ("pcdarts_cifar10_lt_smoke", ["--set", "data.ratio=10",
                                                                      "--set", "search.pcdarts.arch_start_epoch=0"]),
                                        ("gdas_cifar10_lt_smoke", ["--set", "data.ratio=10"])])
def test_issue3_smoke_configs_run_on_cifar_format_files(name, extra, tmp_path, capsys):
    make_cifar10(tmp_path / "cifar", per_batch=20)
    out = tmp_path / "run"
    code = main(["run", name, *extra, "--set", f"data.root={tmp_path / 'cifar'}", "--set", "data.n_max=20",
                 "--set", "train.epochs=1", "--set", "search.epochs=1", "--out", str(out), "--device", "cpu",
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert (out / "eval.json").is_file()


def test_paper_scale_darts_config_uses_the_darts_settings():
    config = load_config(shipped_configs()["darts_cifar10_lt"])
    data, search, train = config.data, config.search, config.train
    assert (data.source, data.profile, data.ratio, data.val_fraction) == ("cifar10", "exp", 100, 0.5)
    assert (search.cell.init_channels, search.cell.layers, search.batch_size, search.epochs) == (16, 8, 64, 50)
    assert (search.sgd.lr, search.sgd.lr_min, search.arch_lr, tuple(search.arch_betas)) == (0.025, 0.001, 3e-4,
                                                                                          (0.5, 0.999))
    assert (train.cell.init_channels, train.cell.layers, train.auxiliary_weight, train.drop_path) == (36, 20, 0.4,
                                                                                                        0.2)
    assert train.augment.cutout == 16


def test_cifar_smoke_config_runs_end_to_end_on_cifar_format_files(tmp_path, capsys):
    make_cifar10(tmp_path / "cifar", per_batch=20)  # 100 training images per class, as n_max asks
    out = tmp_path / "run"
    code = main(["run", "darts_cifar10_lt_smoke", "--set", f"data.root={tmp_path / 'cifar'}", "--out", str(out),
                 "--device", "cpu", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    data = json.loads((out / "data.json").read_text())
    assert data["train_counts"] == [100, 59, 35, 21, 12, 7, 4, 2, 1, 1]  # exp, ratio 100, n_max 100
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["balanced_test"]["num_samples"] == 30
    assert (out / "report.md").is_file()


def test_pcdarts_and_gdas_configs_use_the_authors_settings():
    pc = load_config(shipped_configs()["pcdarts_cifar10_lt"]).search
    assert (pc.method, pc.batch_size, pc.sgd.lr, pc.sgd.lr_min, pc.arch_lr, pc.epochs) == ("pcdarts", 256, 0.1, 0.0,
                                                                                          6e-4, 50)
    assert (pc.pcdarts.k, pc.pcdarts.arch_start_epoch, pc.sgd.weight_decay, pc.arch_weight_decay) == (4, 15, 3e-4, 1e-3)
    gd = load_config(shipped_configs()["gdas_cifar10_lt"]).search
    assert (gd.method, gd.epochs, gd.batch_size, gd.sgd.lr, gd.sgd.lr_min, gd.sgd.weight_decay) == ("gdas", 250, 256,
                                                                                                   0.025, 0.001, 5e-4)
    assert (gd.arch_lr, gd.arch_weight_decay, gd.gdas.tau_max, gd.gdas.tau_min) == (3e-4, 1e-3, 10.0, 0.1)
