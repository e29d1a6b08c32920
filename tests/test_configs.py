"""The shipped configs: valid, faithful to the papers' settings, and runnable at smoke scale."""

from __future__ import annotations

import json
import math

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
    # the paper's printed zero-one loss and its architecture-step Barlow Twins (README, SSF-NAS)
    assert (search.fairdarts.zero_one_kind, search.ssl.enabled, search.ssl.placement) == ("l1", True, "arch")

    spec = read_comparison_file(shipped_configs()["ssf_cifar10_lt_table"], resolve_config_path)
    settings = {tuple(changes) for changes in spec.variants.values()}
    assert len(settings) == 12
    for method in ("darts", "fairdarts", "ssf"):
        for profile in ("exp", "step"):
            for factor in (0.01, 0.1):
                assert (f"search.method={method}", f"data.profile={profile}", f"data.factor={factor}") in settings
    # SSF-NAS's long-tailed-test numbers (factor 0.1) beside its balanced-test ones, in both table files
    for name in ("ssf_cifar10_lt_table", "ssf_cifar10_lt_table_smoke"):
        published = read_comparison_file(shipped_configs()[name], resolve_config_path).published
        assert published.metric == "balanced_test.overall"
        assert published.metrics == {"longtail_test.overall": {"DARTS exp 0.1": 46.28, "FairDARTS exp 0.1": 50.43,
                                                               "SSF-NAS exp 0.1": 52.51}}


PLACEMENT_VARIANTS = {
    "FairDARTS": ("fairdarts", False, None), "SSF-NAS add": ("ssf", True, "add"),
    "SSF-NAS replace": ("ssf", True, "replace"), "SSF-NAS arch": ("ssf", True, "arch"),
    "DARTS": ("darts", False, None), "DARTS + BT arch": ("darts", True, "arch"),
}


def test_ssf_placement_comparison_runs_the_readings_side_by_side(tmp_path):
    """ssf_cifar10_lt_placement (+ _smoke): SSF-NAS with Barlow Twins added, replacing, in the α step, beside
    FairDARTS, DARTS and DARTS + BT; the smoke file runs end to end (one search and one training epoch)."""
    for name, base, seeds in (("ssf_cifar10_lt_placement", "ssf_cifar10_lt", 3),
                              ("ssf_cifar10_lt_placement_smoke", "ssf_cifar10_lt_smoke", 1)):
        spec = read_comparison_file(shipped_configs()[name], resolve_config_path)
        assert list(spec.variants) == list(PLACEMENT_VARIANTS) and len(spec.seeds) == seeds
        for variant, (method, ssl, placement) in PLACEMENT_VARIANTS.items():
            config = load_config(shipped_configs()[base], spec.variants[variant])
            assert (config.search.method, config.search.ssl.enabled) == (method, ssl), variant
            if ssl:
                assert config.search.ssl.placement == placement, variant
    # Six whole runs: on 8x8 synthetic images of 4 classes (the CIFAR files' path is run by
    # test_issue3_smoke_configs_run_on_cifar_format_files) to keep the suite short.
    small = ["data.source=synthetic", "data.num_classes=4", "data.image_size=8", "data.n_max=20",
             "data.test_per_class=5", "data.factor=0.1", "search.epochs=1", "train.epochs=1",
             "search.ssl.projector=[16,16]"]
    out = tmp_path / "compare"
    code = main(["compare", "ssf_cifar10_lt_placement_smoke", *[arg for key in small for arg in ("--set", key)],
                 "--out", str(out), "--device", "cpu", "--no-progress"])
    assert code == 0
    comparison = json.loads((out / "comparison.json").read_text())
    assert sorted(comparison["runs"]) == sorted(PLACEMENT_VARIANTS)
    for variant, (method, ssl, placement) in PLACEMENT_VARIANTS.items():
        folder = out / comparison["runs"][variant][0]
        rows = [json.loads(line) for line in (folder / "search" / "metrics.jsonl").read_text().splitlines()]
        assert ("train_ssl_loss" in rows[-1]) == ssl, variant  # the Barlow Twins term ran (DARTS + BT too)
        assert all(math.isfinite(row["train_loss"]) for row in rows), variant
        saved = yaml.safe_load((folder / "config.yaml").read_text())["search"]
        assert (saved["method"], saved["ssl"]["enabled"]) == (method, ssl), variant  # the base sets ssl: kept
        if ssl:
            assert saved["ssl"]["placement"] == placement, variant
        assert (folder / "eval.json").is_file(), variant


def test_fairdarts_cifar10_config_uses_the_authors_settings():
    config = load_config(shipped_configs()["fairdarts_cifar10"])
    search = config.search
    primitives = search.cell.primitives
    assert config.data.profile == "balanced" and "none" not in primitives and len(primitives) == 7
    assert (search.batch_size, search.sgd.lr, search.sgd.lr_min, search.arch_lr) == (128, 0.005, 0.001, 3e-3)
    assert (search.order, search.derive, search.threshold, search.fairdarts.zero_one_weight) == ("first", "threshold", 0.85, 10)
    # FairDARTS' Table 1: its 7-run mean ± std, FairDARTS-a's 97.46 % with 2.8M parameters and 373M multiply-adds,
    # and the comparators' published cells, each a name `--methods` resolves (a method or a published genotype)
    from ltnas.compare import method_variant
    from ltnas.report.comparison import published_fractions, published_value

    published = config.published
    assert published.values["fairdarts"].model_dump() == {"mean": 97.46, "std": 0.05, "runs": 7}
    assert published.values["fairdarts_a"] == 97.46
    assert (published.metrics["params"]["fairdarts_a"], published.metrics["madds"]["fairdarts_a"]) == (2.8e6, 373e6)
    assert published.metrics["madds"]["fairdarts"].model_dump() == {"mean": 458e6, "std": 61e6, "runs": 7}
    variants = {key: method_variant(key)[0] for key in published.values}
    assert variants["fairdarts"] == "FairDARTS" and variants["gdas_v1"] == "GDAS_V1"
    assert all(set(numbers) <= set(variants) for numbers in published.metrics.values())
    result = {"published": published_fractions(published.for_variants(variants).model_dump())}
    assert published_value(result, "FairDARTS") == "97.46 ± 0.05"
    assert published_value(result, "FairDARTS", "params") == "3.32M ± 460.00K"
    assert published_value(result, "FairDARTS_a", "madds") == "373.00M"


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
    # One search and one retraining epoch instead of the file's 2 + 2: what is checked (the CIFAR files read,
    # the long tail drawn, every stage run, evaluated and reported) is all there after one epoch of each.
    code = main(["run", "darts_cifar10_lt_smoke", "--set", f"data.root={tmp_path / 'cifar'}", "--out", str(out),
                 "--device", "cpu", "--no-progress", "--set", "search.epochs=1", "--set", "train.epochs=1"])
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
