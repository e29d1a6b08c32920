"""The run report, built from a complete fake run folder and from a search-only one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.image import imread
from rich.console import Console

from ltnas.errors import LtnasError
from ltnas.metrics import classification_metrics
from ltnas.report import print_summary, summary_rows, write_report
from ltnas.report.summary import format_params, format_percent, format_seconds

PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
              "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# CIFAR-10-LT style exp profile, n_max 500, ratio 100: 4 many-, 3 medium-, 3 few-shot classes.
TRAIN_COUNTS = [int(500 * 0.01 ** (c / 9)) for c in range(10)]
TEST_PER_CLASS = 20
LONGTAIL_TEST_COUNTS = [max(1, n // 25) for n in TRAIN_COUNTS]

DARTS_V2 = {
    "normal": [["sep_conv_3x3", 2, 0], ["sep_conv_3x3", 2, 1], ["sep_conv_3x3", 3, 0], ["sep_conv_3x3", 3, 1],
               ["sep_conv_3x3", 4, 1], ["skip_connect", 4, 0], ["skip_connect", 5, 0], ["dil_conv_3x3", 5, 2]],
    "normal_concat": [2, 3, 4, 5],
    "reduce": [["max_pool_3x3", 2, 0], ["max_pool_3x3", 2, 1], ["skip_connect", 3, 2], ["max_pool_3x3", 3, 1],
               ["max_pool_3x3", 4, 0], ["skip_connect", 4, 2], ["skip_connect", 5, 2], ["max_pool_3x3", 5, 1]],
    "reduce_concat": [2, 3, 4, 5],
}
# FairDARTS-style: node 4 of the normal cell kept no edge above the threshold, so it was dropped.
FAIR_WITH_DROPPED_NODE = {
    "name": "fair_pruned",
    "normal": [["sep_conv_3x3", 2, 0], ["dil_conv_5x5", 2, 1], ["skip_connect", 3, 2], ["sep_conv_5x5", 3, 1],
               ["sep_conv_3x3", 5, 3], ["avg_pool_3x3", 5, 0]],
    "normal_concat": [2, 3, 5],
    "reduce": [["max_pool_3x3", 2, 0], ["avg_pool_3x3", 2, 1], ["skip_connect", 3, 2], ["max_pool_3x3", 4, 3],
               ["dil_conv_3x3", 5, 4]],
    "reduce_concat": [2, 3, 4, 5],
}
PARAMS = 1_234_567


def fake_predictions(rng: np.random.Generator, counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Labels with `counts` per class, predicted well for head classes and badly for tail ones."""
    labels = np.repeat(np.arange(len(counts)), counts)
    hit_rate = np.linspace(0.95, 0.3, len(counts))[labels]
    wrong = rng.integers(0, len(counts), size=labels.size)
    return np.where(rng.random(labels.size) < hit_rate, labels, wrong), labels


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def make_search(run: Path, rng: np.random.Generator, epochs: int = 4) -> None:
    write_jsonl(run / "search" / "metrics.jsonl", [
        {"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.3 + 0.1 * e, "val_loss": 2.2 / e,
         "val_acc": 0.25 + 0.1 * e, "lr": 0.025, "seconds": 12.5, "extra_key": "ignored"}
        for e in range(1, epochs + 1)
    ])

    def relaxed() -> list[list[float]]:
        logits = rng.normal(size=(14, len(PRIMITIVES)))
        weights = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return weights.round(4).tolist()

    write_jsonl(run / "search" / "alpha.jsonl", [
        {"epoch": e, "primitives": PRIMITIVES, "normal": relaxed(), "reduce": relaxed()}
        for e in range(1, epochs + 1)
    ])
    write_json(run / "search" / "genotype.json", DARTS_V2)


def make_common(run: Path, name: str) -> None:
    run.mkdir(parents=True)
    config = {"name": name, "seed": 0, "device": "cpu", "data": {"source": "synthetic", "profile": "exp"},
              "search": {"epochs": 4}, "train": {"epochs": 3}, "eval": {}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    write_json(run / "data.json", {
        "name": "synthetic", "classes": CLASSES, "profile": "exp", "ratio": 100.0, "image_shape": [3, 32, 32],
        "train_counts": TRAIN_COUNTS, "test_counts": [TEST_PER_CLASS] * 10,
        "longtail_test_counts": LONGTAIL_TEST_COUNTS, "mean": [0.5] * 3, "std": [0.25] * 3,
    })


@pytest.fixture(autouse=True)
def full_quality_plots(monkeypatch) -> None:
    """The plot tests render as users get them: the suite's conftest sets LTNAS_PLOTS=draft elsewhere."""
    monkeypatch.delenv("LTNAS_PLOTS", raising=False)


@pytest.fixture
def complete_run(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    run = tmp_path / "runs" / "complete"
    make_common(run, "cifar10lt-smoke")
    make_search(run, rng)
    write_jsonl(run / "train" / "metrics.jsonl", [
        {"epoch": e, "train_loss": 1.5 / e, "train_acc": 0.4 + 0.1 * e, "test_acc": 0.35 + 0.1 * e,
         "test_balanced_acc": 0.3 + 0.1 * e, "lr": 0.025, "seconds": 30.0}
        for e in range(1, 4)
    ])
    write_json(run / "train" / "genotype.json", FAIR_WITH_DROPPED_NODE)
    balanced = classification_metrics(*fake_predictions(rng, [TEST_PER_CLASS] * 10), 10, TRAIN_COUNTS)
    longtail = classification_metrics(*fake_predictions(rng, LONGTAIL_TEST_COUNTS), 10, TRAIN_COUNTS)
    write_json(run / "eval.json", {
        "genotype": "fair_pruned", "params": PARAMS, "seconds": {"search": 50.0, "train": 90.0, "eval": 1.5},
        "balanced_test": balanced, "longtail_test": longtail,
    })
    return run


COMPLETE_RUN_PLOTS = {
    "search_curves.png", "search_genotype.png", "alpha_heatmap.png", "alpha_history.png", "alpha_edges.png",
    "sigma_histogram.png", "dominant_ops.png", "train_curves.png", "train_genotype.png", "per_class.png", "confusion.png", "confusion_longtail.png",
    "predicted_classes.png",
}


def referenced_plots(report: Path) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report.read_text())


def assert_valid_png(path: Path) -> None:
    assert path.is_file(), f"{path} is referenced but missing"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = imread(path).shape
    assert height > 200 and width > 200


def test_complete_run_report(complete_run: Path) -> None:
    report = write_report(complete_run)

    assert report == complete_run / "report.md"
    text = report.read_text()
    evaluation = json.loads((complete_run / "eval.json").read_text())
    balanced, longtail = evaluation["balanced_test"], evaluation["longtail_test"]
    assert text.startswith("# Run report: cifar10lt-smoke")
    for number in (balanced["overall"], balanced["balanced"], balanced["many"], balanced["few"],
                   longtail["overall"], longtail["balanced"]):
        assert format_percent(number) in text
    assert "1.23M" in text
    assert "fair_pruned" in text
    assert "65.00%" in text  # final search val accuracy
    assert "node 2: no input (dropped)" in text  # the retrained genotype's pruned node
    assert "node 0 ← `sep_conv_3x3(c_{k-2}), sep_conv_3x3(c_{k-1})`" in text
    for name, count in zip(CLASSES, TRAIN_COUNTS):
        assert f"| {name} | {count} |" in text

    plots = referenced_plots(report)
    assert {Path(p).name for p in plots} == COMPLETE_RUN_PLOTS
    for plot in plots:
        assert plot.startswith("plots/")
        assert_valid_png(complete_run / plot)


def test_draft_plots_draw_the_same_report_small(complete_run: Path, monkeypatch, capsys) -> None:
    """LTNAS_PLOTS=draft (the test suite's setting) writes the report with every plot of the full-quality
    one (test_complete_run_report: > 200 pixels a side), each a valid PNG drawn at 10 dpi without the
    layout pass, its text built but not rasterised; any other value is a one-line error, from the CLI before a
    run starts."""
    monkeypatch.setenv("LTNAS_PLOTS", "draft")
    plots = referenced_plots(write_report(complete_run))
    assert {Path(p).name for p in plots} == COMPLETE_RUN_PLOTS
    for plot in plots:
        assert (complete_run / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = imread(complete_run / plot).shape
        assert 0 < height < 200 and 0 < width < 200, plot
    from ltnas.report.plots import _new_figure, _save  # text is built but not rasterised: a text-only figure is blank

    figure = _new_figure(4, 3)
    figure.suptitle("a title")
    figure.text(0.5, 0.5, "some text", fontsize=40)
    assert (imread(_save(figure, complete_run / "text.png"))[..., :3] == 1.0).all()
    monkeypatch.setenv("LTNAS_PLOTS", "fast")
    message = "LTNAS_PLOTS='fast' is not 'draft'; set it to draft or unset it"
    with pytest.raises(LtnasError, match=message):
        write_report(complete_run)
    from ltnas.cli import main  # the CLI says so before it starts a run, not when the run's report is due

    assert main(["run", "quickstart", "--out", str(complete_run.parent / "new")]) == 2
    assert capsys.readouterr().err == f"ltnas: error: environment variable {message}\n"
    assert not (complete_run.parent / "new").exists()


def test_search_only_run_report(tmp_path: Path) -> None:
    run = tmp_path / "search-only"
    make_common(run, "search-only")
    make_search(run, np.random.default_rng(1))

    text = write_report(run).read_text()

    assert "No evaluation yet" in text
    assert "## Retrain" not in text and "## Evaluation" not in text
    plots = referenced_plots(run / "report.md")
    assert {Path(p).name for p in plots} == {
        "search_curves.png", "search_genotype.png", "alpha_heatmap.png", "alpha_history.png", "alpha_edges.png",
        "sigma_histogram.png", "dominant_ops.png"}
    for plot in plots:
        assert_valid_png(run / plot)


def test_train_only_run_report(tmp_path: Path) -> None:
    run = tmp_path / "train-only"
    make_common(run, "train-only")
    write_json(run / "train" / "genotype.json", {**DARTS_V2, "name": "DARTS_V2"})
    balanced = classification_metrics(*fake_predictions(np.random.default_rng(3), [TEST_PER_CLASS] * 10), 10,
                                      TRAIN_COUNTS)
    write_json(run / "eval.json", {"genotype": "DARTS_V2", "params": 3_349_578,
                                   "seconds": {"search": None, "train": 12.0, "eval": 0.5},
                                   "balanced_test": balanced, "longtail_test": None})

    text = write_report(run).read_text()

    assert "## Search" not in text
    assert "| accuracy | balanced test |\n" in text  # no long-tailed column without that test
    assert "Retrained genotype **DARTS_V2**" in text and "3.35M" in text
    for plot in referenced_plots(run / "report.md"):
        assert_valid_png(run / plot)


def test_torn_last_line_of_a_killed_run_is_ignored(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LTNAS_PLOTS", "draft")  # the report's text is tested here; its plots at full quality above
    run = tmp_path / "killed"
    write_jsonl(run / "search" / "metrics.jsonl", [{"epoch": 1, "train_loss": 2.0, "val_acc": 0.4}])
    with open(run / "search" / "metrics.jsonl", "a") as metrics:
        metrics.write('{"epoch": 2, "train_lo')

    text = write_report(run).read_text()

    assert text.startswith("# Run report: killed")  # no config.yaml: the folder names the run
    assert "| 1 | 2.0000 | 40.00% |" in text  # the last complete epoch is reported


def test_corrupt_line_inside_a_jsonl_file_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "metrics.jsonl").write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n')

    with pytest.raises(LtnasError, match="metrics.jsonl line 2 is not valid JSON"):
        write_report(tmp_path)


def test_not_a_run_folder_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(LtnasError, match="does not exist"):
        write_report(tmp_path / "missing")
    with pytest.raises(LtnasError, match="holds none of"):
        write_report(tmp_path)


def test_summary_rows_format() -> None:
    evaluation = {
        "genotype": "DARTS_V2", "params": 3_349_578, "seconds": {"search": None, "train": 754.0, "eval": 2.0},
        "balanced_test": {"overall": 0.87123, "balanced": 0.8, "many": 0.9, "medium": 0.755, "few": None},
        "longtail_test": {"overall": 0.9, "balanced": 0.81234},
    }

    assert summary_rows(evaluation) == [
        ("Genotype", "DARTS_V2"),
        ("Parameters", "3.35M"),
        ("Balanced test: overall", "87.12%"),
        ("Balanced test: balanced", "80.00%"),
        ("Balanced test: many", "90.00%"),
        ("Balanced test: medium", "75.50%"),
        ("Balanced test: few", "—"),
        ("Long-tailed test: overall", "90.00%"),
        ("Long-tailed test: balanced", "81.23%"),
        ("Search time", "—"),
        ("Train time", "12m 34s"),
    ]
    without_longtail = summary_rows({**evaluation, "longtail_test": None})
    assert not any(name.startswith("Long-tailed") for name, _ in without_longtail)


def test_formatters() -> None:
    assert format_params(950) == "950"
    assert format_params(12_400) == "12.40K"
    assert format_params(1_234_567) == "1.23M"
    assert format_seconds(42.54) == "42.5s"
    assert format_seconds(7384) == "2h 03m"
    assert format_percent(1.0) == "100.00%"


def test_print_summary_shows_table_and_folder(tmp_path: Path) -> None:
    console = Console(record=True, width=100)
    evaluation = {"genotype": "[weird]", "params": 5000, "balanced_test": {"overall": 0.5}}

    print_summary(evaluation, tmp_path / "run[1]", console=console)

    output = console.export_text()
    assert "50.00%" in output and "5.00K" in output and "[weird]" in output
    assert f"Run folder: {tmp_path / 'run[1]'}" in output


# ------------------------------------------------------------------ search diagnostics (issue 3)


def test_dominant_operations_follow_the_darts_derivation(tmp_path: Path) -> None:
    from ltnas.report.plots import dominant_operations, plot_dominant_operations, polarised_fraction

    primitives = ["none", "skip_connect", "sep_conv_3x3"]
    # Two nodes: node 2 has edges 0-1 (both kept), node 3 has edges 2-4 (the two strongest kept).
    normal = [[0.9, 0.05, 0.05], [0.1, 0.6, 0.3],                     # none never dominates
              [0.0, 0.2, 0.1], [0.0, 0.1, 0.7], [0.0, 0.5, 0.1]]     # edge 2 (0.2) is dropped
    row = {"epoch": 1, "primitives": primitives, "relaxation": "softmax", "normal": normal, "reduce": normal}
    assert dominant_operations(row, "normal") == ["skip_connect", "skip_connect", "sep_conv_3x3", "skip_connect"]
    assert polarised_fraction([0.05, 0.5, 0.95, 0.2]) == 0.5
    path = plot_dominant_operations([row, {**row, "epoch": 2}], tmp_path / "dominant.png")
    assert path.stat().st_size > 0


def test_dominant_operations_are_each_methods_own(tmp_path: Path, monkeypatch) -> None:
    """FairDARTS and SSF-NAS count an operation dominant when σ > 0.75 (FairDARTS' footnote 5), every other method
    by the top-2-per-node rule (FairDARTS Sec. 3.1); the run report uses the run's method's rule, read from the
    method table (ltnas.methods), not from the method's name."""
    from ltnas.methods import METHODS
    from ltnas.report.plots import dominant_operations

    assert {name for name, entry in METHODS.items() if entry.dominant_threshold is not None} == {"fairdarts", "ssf"}
    assert METHODS["fairdarts"].dominant_threshold == METHODS["ssf"].dominant_threshold == 0.75
    primitives = ["skip_connect", "sep_conv_3x3"]
    # node 2: edges 0-1; node 3: edges 2-4. σ over 0.75: both ops of edge 0, none of edge 1, skip of edges 2, 3, 4;
    # top-2: edge 0's skip, edge 1's sep_conv, and node 3's two strongest edges 2 and 3 (skip, skip).
    normal = [[0.9, 0.8], [0.5, 0.7], [0.95, 0.1], [0.8, 0.3], [0.76, 0.75]]
    row = {"epoch": 2, "primitives": primitives, "relaxation": "sigmoid", "normal": normal, "reduce": normal}
    assert dominant_operations(row, "normal", threshold=0.75) == ["skip_connect", "sep_conv_3x3", "skip_connect",
                                                                  "skip_connect", "skip_connect"]
    assert dominant_operations(row, "normal") == ["skip_connect", "sep_conv_3x3", "skip_connect", "skip_connect"]
    layers = {"epoch": 1, "primitives": primitives, "layers": [[0.8, 0.9], [0.1, 0.2]]}
    assert dominant_operations(layers, "layers", threshold=0.75) == ["skip_connect", "sep_conv_3x3"]
    assert dominant_operations(layers, "layers") == ["sep_conv_3x3", "sep_conv_3x3"]

    texts = {}
    monkeypatch.setenv("LTNAS_PLOTS", "draft")  # the reports' text is tested here; their plots at full quality above
    for method in ("darts", "fairdarts"):
        run = tmp_path / method
        make_common(run, method)
        config = yaml.safe_load((run / "config.yaml").read_text())
        (run / "config.yaml").write_text(yaml.safe_dump({**config, "search": {"method": method, "epochs": 2}}))
        write_jsonl(run / "search" / "alpha.jsonl", [{**row, "epoch": 1, "normal": [[0.5, 0.5]] * 5,
                                                      "reduce": [[0.5, 0.5]] * 5}, row])
        texts[method] = write_report(run).read_text()
        assert (run / "plots" / "dominant_ops.png").stat().st_size > 0
    # the last epoch: 3 dominant skips per cell by the top-2 rule, 4 above 0.75; the first (all 0.5): 4 by the top-2
    # rule (a tie keeps the first op, skip, on the first two edges of each node) and none above 0.75
    assert ("Dominant skip connections (2 strongest inputs per node, the method's rule) after epoch 2: normal cell "
            "**3**, reduction cell **3** (4, 4 after epoch 1).") in texts["darts"]
    assert ("Dominant skip connections (weight > 0.75, the method's rule) after epoch 2: normal cell **4**, "
            "reduction cell **4** (0, 0 after epoch 1).") in texts["fairdarts"]


def test_per_edge_trajectories_and_skips_over_seeds_from_synthetic_logs(tmp_path: Path) -> None:
    """FairDARTS Fig. 3 (every edge's weights per epoch, one panel per edge, one line per operation) in a run's
    report, and Fig. 2 over seeds (dominant skip connections per epoch, mean ± std) in a comparison's, each
    variant by its method's dominance rule; baselines (no α) are left out, shorter seeds cut the variant."""
    from ltnas.report.comparison import dominant_skip_series
    from ltnas.report.plots import plot_comparison_dominant_skips, plot_edge_trajectories

    primitives = ["skip_connect", "sep_conv_3x3"]

    def rows(skip_weights: list[float], relaxation: str) -> list[dict]:
        """One row per epoch; every edge's skip weight is that epoch's value (sep_conv: 1 − it)."""
        return [{"epoch": e + 1, "primitives": primitives, "relaxation": relaxation,
                 "normal": [[w, 1 - w]] * 14, "reduce": [[0.5, 0.5]] * 14} for e, w in enumerate(skip_weights)]

    cells = plot_edge_trajectories(rows([0.2, 0.6, 0.9], "softmax"), tmp_path / "edges.png")
    layers = plot_edge_trajectories([{"epoch": 1, "primitives": primitives, "layers": [[0.4, 0.6]] * 19}],
                                    tmp_path / "layers.png")
    assert_valid_png(cells) and assert_valid_png(layers)
    # 2 cells × 14 edges in rows of 7: 4 rows of panels; 19 layers: 3 rows
    assert imread(cells).shape[0] > imread(layers).shape[0]
    with pytest.raises(ValueError):
        plot_edge_trajectories([], tmp_path / "none.png")

    members = []
    for variant, method, seeds, relaxation in (("DARTS", "darts", {0: [0.2, 0.6, 0.9], 1: [0.2, 0.2, 0.9],
                                                                   2: [0.6, 0.9]}, "softmax"),
                                               ("FairDARTS", "fairdarts", {0: [0.7, 0.8, 0.9]}, "sigmoid"),
                                               ("CNN", None, {0: None}, None)):
        for seed, weights in seeds.items():
            run = tmp_path / variant / f"seed_{seed}"
            run.mkdir(parents=True)
            (run / "config.yaml").write_text(yaml.safe_dump({"search": {"method": method}} if method else {}))
            if weights:
                write_jsonl(run / "search" / "alpha.jsonl", rows(weights, relaxation))
            members.append((variant, seed, run))
    series = dominant_skip_series(members)
    assert list(series) == ["DARTS", "FairDARTS"]
    # DARTS, top-2 per node: skip dominates all 8 kept edges of the normal cell where its weight beats 0.5, and
    # on ties (0.5: the reduction cell) the first operation, skip, wins too; seed 2 logged 2 epochs: cut to 2
    assert series["DARTS"]["rule"] == "2 strongest inputs per node" and series["DARTS"]["epochs"] == [1, 2]
    assert series["DARTS"]["panels"] == {"Normal cell": [[0, 8], [0, 0], [8, 8]], "Reduction cell": [[8, 8]] * 3}
    # FairDARTS, σ > 0.75: only epochs 2 and 3 (0.8, 0.9), on all 14 edges; the reduction cell's 0.5 never
    assert series["FairDARTS"]["rule"] == "weight > 0.75"
    assert series["FairDARTS"]["panels"] == {"Normal cell": [[0, 14, 14]], "Reduction cell": [[0, 0, 0]]}
    assert_valid_png(plot_comparison_dominant_skips(series, tmp_path / "skips.png"))


def test_weight_histogram_plot(tmp_path: Path) -> None:
    from ltnas.report.plots import plot_weight_histogram

    row = {"epoch": 3, "primitives": ["skip_connect", "sep_conv_3x3"], "relaxation": "sigmoid",
           "normal": [[0.01, 0.99], [0.5, 0.97]], "reduce": [[0.02, 0.98], [0.03, 0.6]]}
    assert plot_weight_histogram(row, tmp_path / "hist.png").stat().st_size > 0
    from ltnas.report.plots import weights_symbol

    # a row names what its weights are (PC-DARTS: softmax(α)·β̂); rows logged before, by their relaxation
    assert weights_symbol({**row, "relaxation": "softmax", "weights": "softmax(α)·β̂"}) == "softmax(α)·β̂"
    assert (weights_symbol(row), weights_symbol({"relaxation": "gumbel"})) == ("σ(α)", "softmax(α)")
    with pytest.raises(ValueError):
        plot_weight_histogram({"primitives": []}, tmp_path / "none.png")


def test_genotype_dot_source_and_fallback_drawing(tmp_path: Path, monkeypatch) -> None:
    import ltnas.report.plots as plots
    from ltnas.space import load_genotype

    genotype = load_genotype("DARTS_V2").to_dict()
    dot = plots.genotype_dot(genotype)
    assert dot.startswith("digraph") and "cluster_normal" in dot and "cluster_reduce" in dot
    assert dot.count("->") == 2 * 8 + 2 * 4  # 8 edges per cell + 4 concatenated nodes per cell
    monkeypatch.setattr(plots.shutil, "which", lambda name: None)  # no graphviz: matplotlib draws
    assert plots.plot_genotype(genotype, tmp_path / "cells.png").stat().st_size > 0


def test_misclassified_images_are_laid_out_row_by_row_in_one_mosaic(tmp_path: Path) -> None:
    from ltnas.report.plots import image_mosaic, plot_misclassified

    grey = np.stack([np.full((1, 6, 6), 10 * (i + 1), dtype=np.uint8) for i in range(5)])
    mosaic, corners = image_mosaic(grey, columns=3)
    # cells of (6 + 1 + 2) × (6 + 1) pixels: 2 rows × 3 columns, each image below its 2-pixel title room
    assert mosaic.shape == (18, 21) and corners == [(2, 0), (2, 7), (2, 14), (11, 0), (11, 7)]
    for i, (top, left) in enumerate(corners):
        assert (mosaic[top:top + 6, left:left + 6] == 10 * (i + 1)).all()
    assert (mosaic[11:17, 14:20] == 255).all() and (mosaic[:2] == 255).all()  # no 6th image; title rows white
    colour = np.random.default_rng(0).integers(0, 255, (2, 3, 4, 4), dtype=np.uint8)
    mosaic, corners = image_mosaic(colour)
    assert mosaic.shape == (4 + 1 + 2, 2 * (4 + 1), 3)
    assert (mosaic[2:6, 5:9] == colour[1].transpose(1, 2, 0)).all()
    path = plot_misclassified(grey, [0, 1, 2, 3, 4], [1, 2, 3, 4, 0], [str(c) for c in range(5)], tmp_path / "m.png")
    assert path.stat().st_size > 0
