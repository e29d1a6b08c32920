"""FairDARTS (Chu et al., 2020)'s ablations (Sections 6.1, 6.2, Fig. 8 right) and Section 6.3's cures as comparison
files: the paper-scale files hold the paper's settings and numbers, the smoke files run, and the comparison report
shows each search's outcome (dominant operations, skips, early stops) and the w01 sweep's plot."""

from __future__ import annotations

import json

import pytest

from ltnas.compare import read_comparison_file
from ltnas.config import load_config, resolve_config_path, shipped_configs
from ltnas.report.search_outcome import dominant_count, numeric_sweep

NO_SKIP = ["none", "max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]


def _configs(name: str):
    spec = read_comparison_file(shipped_configs()[name], resolve_config_path)
    return spec, {variant: load_config(spec.base, changes) for variant, changes in spec.variants.items()}


def _published(spec) -> dict:
    return {variant: value if isinstance(value, float) else (value.mean, value.std, value.runs)
            for variant, value in spec.published.values.items()}


@pytest.mark.parametrize("suffix", ["", "_smoke"])
def test_ablation_files_hold_the_papers_settings(suffix):
    spec, configs = _configs(f"fairdarts_ablation_skip{suffix}")
    assert [(c.search.method, c.search.cell.primitives == NO_SKIP) for c in configs.values()] == [
        ("darts", False), ("darts", True), ("fairdarts", False)]
    spec, configs = _configs(f"fairdarts_ablation_zero_one{suffix}")
    assert [(c.search.method, c.search.fairdarts.zero_one_weight, c.search.fairdarts.zero_one_kind)
            for c in configs.values()] == [("fairdarts", 10, "l2"), ("fairdarts", 0, "l2"), ("fairdarts", 10, "l1")]
    spec, configs = _configs(f"fairdarts_w01_sweep{suffix}")
    weights = list(range(17)) if not suffix else [0, 8, 16]
    assert [c.search.fairdarts.zero_one_weight for c in configs.values()] == weights
    assert {c.eval.model for c in configs.values()} == {"supernet"}  # Fig. 8 is about the search: no retraining
    assert numeric_sweep(spec.variants)["key"] == "search.fairdarts.zero_one_weight"
    spec, configs = _configs(f"darts_cures_cifar10{suffix}")
    assert [(c.search.method, c.search.cures.skip_dropout, c.search.cures.op_dropout, c.search.cures.stop_skips,
             c.search.cures.stop_hessian) for c in configs.values()] == [
        ("darts", 0, 0, None, None), ("darts", 0.4, 0, None, None), ("darts", 0, 0.2, None, None),
        ("darts", 0, 0, 2, None), ("darts", 0, 0, None, pytest.approx(1 / 0.75)), ("fairdarts", 0, 0, None, None)]
    assert numeric_sweep(spec.variants) is None


def test_paper_scale_ablations_publish_the_papers_numbers():
    spec, configs = _configs("fairdarts_ablation_skip")
    assert spec.seeds == list(range(7)) and {c.search.epochs for c in configs.values()} == {50}
    assert _published(spec) == {"DARTS": (96.76, 0.32, None), "DARTS, S1 without skip": (96.88, 0.18, 7),
                                "FairDARTS": (97.41, 0.14, None)}
    spec, _ = _configs("fairdarts_ablation_zero_one")
    assert _published(spec) == {"FairDARTS (L01)": (97.46, 0.05, 7), "FairDARTS without L01": (97.33, 0.15, 7)}
    spec, _ = _configs("darts_cures_cifar10")
    assert _published(spec) == {"DARTS": (96.76, 0.32, None), "FairDARTS": (97.46, 0.05, 7)}
    assert _configs("fairdarts_w01_sweep")[0].published is None  # the paper prints Fig. 8 only as a plot


def test_dominant_operations_are_sigmoid_weights_above_three_quarters():
    row = {"relaxation": "sigmoid", "weights": "σ(α)", "normal": [[0.9, 0.75, 0.2], [0.76, 0.1, 0.99]],
           "reduce": [[0.8, 0.0, 0.0]]}
    assert dominant_count(row) == 4
    assert dominant_count({**row, "relaxation": "softmax", "weights": "softmax(α)"}) is None


def test_numeric_sweep_needs_one_setting_every_variant_sets_to_another_number():
    sweep = {f"w{w}": [f"search.fairdarts.zero_one_weight={w}", "eval.model=supernet"] for w in (0, 4, 8)}
    assert numeric_sweep(sweep) == {"key": "search.fairdarts.zero_one_weight", "values": {"w0": 0, "w4": 4, "w8": 8}}
    assert numeric_sweep({"a": ["x=1"], "b": ["x=1"], "c": ["x=2"]}) is None
    assert numeric_sweep({"a": ["x=1"], "b": ["x=2"]}) is None  # two points are no curve


# The files' base, fairdarts_cifar10_smoke, reads CIFAR-format files: that path is run by test_configs
# (test_issue3_smoke_configs_run_on_cifar_format_files). What these tests prove (each comparison's variants,
# stopping rules, dominant operations, sweep plot) does not depend on the images, so they search on 8×8
# synthetic ones: a 16th of the pixels of 32×32, the same supernet, the same number of steps.
SYNTHETIC = ["data.source=synthetic", "data.profile=balanced", "data.image_size=8", "data.n_max=10",
             "data.test_per_class=5"]  # --set data.source drops the file's data keys tied to CIFAR: profile again


def _compare(name, out, *extra):
    """`ltnas compare NAME` on 10 synthetic 8×8 images per class (5 to train on, 5 to validate: one search step of
    32 images per epoch, which is all these tests need; fifteen supernets are searched); each supernet is
    evaluated as it is (`eval.model: supernet`): the files' retraining is the DARTS recipe every run shares,
    tested elsewhere, and plots make each run slow."""
    from test_cli import call

    code, _, stderr = call(["compare", name, *[arg for key in SYNTHETIC for arg in ("--set", key)], "--set",
                            "eval.model=supernet", "--no-progress", *extra, "--out", str(out)])
    assert code == 0, stderr
    return json.loads((out / "comparison.json").read_text()), (out / "comparison.md").read_text()


def test_w01_sweep_smoke_plots_dominant_operations_against_w01(tmp_path):
    result, markdown = _compare("fairdarts_w01_sweep_smoke", tmp_path / "sweep", "--set", "search.epochs=1")
    assert result["sweep"]["values"] == {"w01 = 0": 0, "w01 = 8": 8, "w01 = 16": 16}
    counts = {variant: stats["dominant_ops"]["mean"] for variant, stats in result["search"].items()}
    assert all(isinstance(count, float) and 0 <= count <= 2 * 14 * 7 for count in counts.values())
    assert (tmp_path / "sweep" / "plots" / "dominant_sweep.png").is_file()
    assert "## Search outcome" in markdown and "plots/dominant_sweep.png" in markdown
    assert not any((tmp_path / "sweep").glob("*/seed_0/train"))  # supernets evaluated, nothing retrained


@pytest.mark.parametrize("name", ["fairdarts_ablation_skip_smoke", "fairdarts_ablation_zero_one_smoke"])
def test_ablation_smokes_run(name, tmp_path):
    result, markdown = _compare(name, tmp_path / "out", "--set", "search.epochs=1")
    assert len(result["variants"]) == 3 and not result["failed"]
    assert "## Search outcome" in markdown


def test_cures_smoke_runs_every_cure_beside_darts_and_fairdarts(tmp_path):
    result, markdown = _compare("darts_cures_cifar10_smoke", tmp_path / "cures", "--set", "search.epochs=2")
    assert len(result["variants"]) == 6 and not result["failed"] and "## Search outcome" in markdown
    search = result["search"]
    assert search["DARTS"]["search_epochs"]["mean"] == 2 and search["DARTS"]["stopped"] == [None]
    for variant, stats in search.items():  # a stopped search ran to its stopping epoch and says which rule stopped it
        stopped = stats["stopped"][0]
        if stopped is None:
            assert stats["search_epochs"]["mean"] == 2
        else:
            assert variant in ("DARTS + stop at 2 skips (DARTS+)", "DARTS + Hessian stop (DARTS-ES)")
            assert stopped.endswith(f"at epoch {int(stats['search_epochs']['mean'])}")
    assert search["FairDARTS"]["dominant_ops"]["mean"] is not None and search["DARTS"]["dominant_ops"]["mean"] is None
