"""The shipped configs: valid, faithful to the papers' settings, and runnable at smoke scale."""

from __future__ import annotations

import json

import pytest
import yaml

from ltnas.cli import main, shipped_configs
from ltnas.config import load_config
from test_data import make_cifar10


# Comparison files (a `compare:` section, run by `ltnas compare`) live beside the run configs.
RUN_CONFIGS = sorted(name for name, path in shipped_configs().items() if "compare" not in yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("name", RUN_CONFIGS)
def test_every_shipped_config_is_valid(name):
    load_config(shipped_configs()[name])


def test_paper_scale_darts_config_uses_the_darts_settings():
    config = load_config(shipped_configs()["darts_cifar10_lt"])
    data, search, train = config.data, config.search, config.train
    assert (data.source, data.profile, data.ratio, data.val_fraction) == ("cifar10", "exp", 100, 0.5)
    assert (search.init_channels, search.layers, search.batch_size, search.epochs) == (16, 8, 64, 50)
    assert (search.lr, search.lr_min, search.arch_lr, tuple(search.arch_betas)) == (0.025, 0.001, 3e-4, (0.5, 0.999))
    assert (train.init_channels, train.layers, train.auxiliary_weight, train.drop_path) == (36, 20, 0.4, 0.2)
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
