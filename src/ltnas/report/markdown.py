"""`report.md` of a run folder: what was searched, how training went, and how every class fared.

The report is rebuilt from the files the run wrote (docs/ARCHITECTURE.md, "A run, from config to report"), so it can be
regenerated at any time, for a finished run or one still going. Whatever is missing (a search-only
run has no `train/` and no `eval.json`; a retrain of a published genotype has no `search/`) is
simply left out. Only `report.md` and `plots/` are written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ltnas.errors import LtnasError
from ltnas.metrics import shot_groups, shot_thresholds, stage_seconds
from ltnas.methods import report_sections, resolve, saved_method
from ltnas.report.evolution import evolution_rows, plot_evolution
from ltnas.report.plots import (
    dominant_operations,
    dominant_rule,
    node_name,
    plot_alpha_heatmap,
    plot_alpha_history,
    plot_confusion,
    plot_curves,
    plot_dominant_operations,
    plot_edge_trajectories,
    plot_genotype,
    plot_alpha_gradient_norms,
    plot_hls_schedule,
    plot_mu_and_losses,
    plot_mu_sweep,
    plot_per_class,
    plot_predicted_histogram,
    plot_shot_group_history,
    plot_weight_histogram,
)
from ltnas.report.naming import count_test_images, few_test_images, name_of_test_set
from ltnas.report.summary import (ACCURACIES, MISSING, format_params, format_peak_memory, format_percent,
                                  format_seconds)

Row = dict[str, Any]
PLOTS_DIR = "plots"
CELL_TITLES = {"normal": "Normal cell", "reduce": "Reduction cell",
               "head_instance": "Instance-sampling head cell", "head_balanced": "Class-balanced head cell"}
def accuracy_titles(many: int, few: int) -> dict[str, str]:
    return {"overall": "Overall", "balanced": "Balanced (mean per-class)",
            "many": f"Many-shot (> {many} train images)", "medium": f"Medium-shot ({few}–{many})",
            "few": f"Few-shot (< {few})"}

CLASSES_PER_COUNTS_TABLE = 10
# Columns of the final-epoch tables, when the rows have them.
SEARCH_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_balanced_acc", "hessian_eigenvalue",
               "normal_skips")
# Retraining is monitored on a validation part held out of the training set; test_* are in the
# rows of runs made before that (shown as they were recorded).
RETRAIN_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_balanced_acc",
                "test_loss", "test_acc", "test_balanced_acc")


@dataclass
class RunFiles:
    """The files of a run folder that the report uses, parsed; absent files are `None` or empty lists."""

    path: Path
    config: Row | None = None
    data: Row | None = None
    search_rows: list[Row] = field(default_factory=list)
    alpha_rows: list[Row] = field(default_factory=list)
    search_genotype: Row | None = None
    train_rows: list[Row] = field(default_factory=list)
    train_genotype: Row | None = None
    evaluation: Row | None = None
    mu_sweep: Row | None = None  # two-branch (BBN) runs: accuracy against the test-time mixing ratio
    search_stop: Row | None = None  # an early-stopped search (search.cures): when, which rule, why

    @property
    def name(self) -> str:
        return str((self.config or {}).get("name") or self.path.name)

    @property
    def class_names(self) -> list[str]:
        if self.data and self.data.get("classes"):
            return [str(name) for name in self.data["classes"]]
        per_class = ((self.evaluation or {}).get("balanced_test") or {}).get("per_class") or []
        return [str(index) for index in range(len(per_class))]

    @property
    def train_counts(self) -> list[int] | None:
        return (self.data or {}).get("train_counts")

    @property
    def shot_thresholds(self) -> tuple[int, int]:
        """(many, few) of the evaluation; an eval.json from before they were recorded used CIFAR's
        100 / 20; without an evaluation, the config's (or the by-size default) for these counts."""
        balanced = (self.evaluation or {}).get("balanced_test") or {}
        if balanced.get("shot_thresholds"):
            return balanced["shot_thresholds"]["many"], balanced["shot_thresholds"]["few"]
        if balanced:
            return 100, 20
        settings = (self.config or {}).get("eval") or {}
        return shot_thresholds(self.train_counts or [], settings.get("many_shot"), settings.get("few_shot"))


def read_run_files(run_dir: str | Path) -> RunFiles:
    """Read whatever of a run folder exists; `LtnasError` if it is not a run folder at all."""
    path = Path(run_dir)
    if not path.is_dir():
        raise LtnasError(f"run folder {path} does not exist; pass the folder a run wrote (it holds config.yaml)")
    run = RunFiles(
        path=path,
        config=_read_yaml(path / "config.yaml"),
        data=_read_json(path / "data.json"),
        search_rows=_read_jsonl(path / "search" / "metrics.jsonl"),
        alpha_rows=_read_jsonl(path / "search" / "alpha.jsonl"),
        search_genotype=_read_json(path / "search" / "genotype.json"),
        train_rows=_read_jsonl(path / "train" / "metrics.jsonl"),
        train_genotype=_read_json(path / "train" / "genotype.json"),
        evaluation=_read_json(path / "eval.json"),
        mu_sweep=_read_json(path / "mu_sweep.json"),
        search_stop=_read_json(path / "search" / "stopped.json"),
    )
    if run == RunFiles(path=path):  # equal to an empty record: not one of the files exists
        raise LtnasError(
            f"{path} holds none of config.yaml, data.json, search/, train/, eval.json; "
            "pass the folder of a run (ltnas prints it when the run starts)"
        )
    return run


def write_report(run_dir: str | Path) -> Path:
    """(Re)draw the plots into RUN/plots/ and write RUN/report.md; returns the report's path."""
    run = read_run_files(run_dir)
    plots = draw_plots(run)
    sections = [
        _title_section(run),
        _summary_section(run),
        _data_section(run),
        _search_section(run, plots),
        *[resolve(section)(run, plots) for section in report_sections("search")],  # the methods' own
        _retrain_section(run, plots),
        _evaluation_section(run, plots),
        *[resolve(section)(run, plots) for section in report_sections("evaluation")],
        _config_section(run),
    ]
    report = run.path / "report.md"
    report.write_text("\n\n".join(section for section in sections if section) + "\n", encoding="utf-8")
    return report


# ------------------------------------------------------------------------------------------ plots


def draw_plots(run: RunFiles) -> set[str]:
    """Draw every plot the run's files allow into RUN/plots/; returns the names drawn (no suffix)."""
    out = run.path / PLOTS_DIR
    drawn: set[str] = set()

    def draw(name: str, plot: Callable[..., Path], *args: Any, **options: Any) -> None:
        plot(*args, path=out / f"{name}.png", **options)
        drawn.add(name)

    if run.search_rows:
        draw("search_curves", plot_curves, run.search_rows, None)
    if run.search_genotype and _is_cell(run.search_genotype):
        draw("search_genotype", plot_genotype, run.search_genotype)
    if run.alpha_rows:
        draw("alpha_heatmap", plot_alpha_heatmap, run.alpha_rows[-1])
        draw("alpha_history", plot_alpha_history, run.alpha_rows)
        draw("alpha_edges", plot_edge_trajectories, run.alpha_rows)
        draw("sigma_histogram", plot_weight_histogram, run.alpha_rows[-1])
        draw("dominant_ops", plot_dominant_operations, run.alpha_rows, threshold=dominant_threshold(run.config))
    if evolution_rows(run.path):
        draw("evolution", plot_evolution, evolution_rows(run.path))
    if run.train_rows:
        draw("train_curves", plot_curves, None, run.train_rows)
    if _retrained_other_genotype(run) and _is_cell(run.train_genotype):
        draw("train_genotype", plot_genotype, run.train_genotype)
    balanced, longtail = _test_metrics(run)
    if balanced and run.train_counts:
        draw("per_class", plot_per_class, balanced, longtail, run.train_counts, run.class_names)
    if balanced and balanced.get("predicted_counts") and run.train_counts:
        draw("predicted_classes", plot_predicted_histogram, balanced, run.train_counts, run.class_names)
    if any(row.get("val_few_acc") is not None or row.get("val_many_acc") is not None
           for row in [*run.search_rows, *run.train_rows]):
        draw("shot_group_history", plot_shot_group_history, run.search_rows, run.train_rows)
    if (out / "misclassified.png").is_file():  # drawn by the evaluation, which has the images
        drawn.add("misclassified")
    if balanced and balanced.get("confusion"):
        draw("confusion", plot_confusion, balanced["confusion"], run.class_names,
             title=f"Confusion matrix, {name_of_test_set(balanced)}")
    if longtail and longtail.get("confusion"):
        draw("confusion_longtail", plot_confusion, longtail["confusion"], run.class_names,
             title="Confusion matrix, long-tailed test")
    if run.mu_sweep:
        draw("mu_sweep", plot_mu_sweep, run.mu_sweep)
    if any(row.get("mu") is not None and row.get("hls_factor") is not None for row in run.search_rows):
        search = (run.config or {}).get("search") or {}  # a two-branch (BBN / HLS) search
        draw("mu_losses", plot_mu_and_losses, run.search_rows)
        draw("hls_schedule", plot_hls_schedule, run.search_rows, search.get("epochs") or len(run.search_rows))
    if any(row.get("alpha_grad_norm_backbone") is not None for row in run.search_rows):
        draw("alpha_grad_norms", plot_alpha_gradient_norms, run.search_rows)
    return drawn


def _image(plots: set[str], name: str, caption: str) -> str:
    return f"![{caption}]({PLOTS_DIR}/{name}.png)" if name in plots else ""


# --------------------------------------------------------------------------------------- sections


def _title_section(run: RunFiles) -> str:
    config = dict(run.config or {})
    if run.evaluation and run.evaluation.get("device"):  # the device it ran on, not just "auto"
        config["device"] = run.evaluation["device"]
    facts = [f"{key} {config[key]}" for key in ("seed", "device") if config.get(key) is not None]
    where = f"Run folder `{run.path}`" + (f" ({', '.join(facts)})" if facts else "")
    return f"# Run report: {run.name}\n\n{where}"


def _summary_section(run: RunFiles) -> str:
    evaluation = run.evaluation
    if evaluation is None:
        return ("## Summary\n\nNo evaluation yet: `eval.json` is missing "
                "(a search-only run, or training has not finished).")
    seconds = evaluation.get("seconds") or {}
    facts = _table(["run", "value"], [
        (["Network", f"`{evaluation['network']}` (baseline)"] if evaluation.get("network") not in (None, "cell")
         else ["Genotype", f"`{evaluation.get('genotype', MISSING)}`"]),
        ["Parameters", format_params(evaluation.get("params"))],
        *([["Multiply-adds per image", format_params(evaluation["madds"])]] if evaluation.get("madds") else []),
        ["Search time", format_seconds(seconds.get("search"))],
        ["Train time", format_seconds(seconds.get("train"))],
        ["Evaluation time", format_seconds(seconds.get("eval"))],
        *([["Peak memory", format_peak_memory(evaluation["peak_memory"])]] if evaluation.get("peak_memory") else []),
    ])
    warning = few_test_images(_test_metrics(run)[0], run.class_names)
    return "\n\n".join(["## Summary", facts, _accuracy_table(*_test_metrics(run), run.shot_thresholds)]
                       + ([f"**Warning:** {warning}."] if warning else []))


def _accuracy_table(balanced: Row | None, longtail: Row | None, thresholds: tuple[int, int] = (100, 20)) -> str:
    test_sets = [(name_of_test_set(balanced), balanced)] + ([("long-tailed test", longtail)] if longtail else [])
    titles = accuracy_titles(*thresholds)
    rows = [[titles[metric]] + [format_percent((m or {}).get(metric)) for _, m in test_sets]
            for metric in ACCURACIES]
    if any((m or {}).get("top5") is not None for _, m in test_sets):  # more than 5 classes
        rows.append(["Top-5 (true class among the 5 highest scores)"]
                    + [format_percent((m or {}).get("top5")) for _, m in test_sets])
    rows.append(["Test images"] + [str((m or {}).get("num_samples", MISSING)) for _, m in test_sets])
    return _table(["accuracy"] + [name for name, _ in test_sets], rows)


def _data_section(run: RunFiles) -> str:
    data = run.data
    if data is None:
        return ""
    counts = data.get("train_counts") or []
    shape = "×".join(str(side) for side in data.get("image_shape") or []) or MISSING
    ratio = data.get("ratio")
    facts = [
        f"- Dataset: **{data.get('name', MISSING)}**, {len(run.class_names)} classes, images {shape} (C×H×W)",
        f"- Training profile: **{data.get('profile', MISSING)}**, "
        f"imbalance ratio {MISSING if ratio is None else f'{ratio:g}'}",
    ]
    if counts:
        groups = shot_groups(counts, *run.shot_thresholds)
        facts.append(f"- Training images: {sum(counts)} (largest class {max(counts)}, smallest {min(counts)}); "
                     + ", ".join(f"{len(members)} {name}-shot" for name, members in groups.items()) + " classes")
    test_title = f"{name_of_test_set(_test_metrics(run)[0]).capitalize()} images"
    for key, title in (("test_counts", test_title), ("longtail_test_counts", "Long-tailed test images")):
        if data.get(key):
            facts.append(f"- {title}: {sum(data[key])}")
    return "\n\n".join(["## Data", "\n".join(facts), _counts_tables(run)])


def _counts_tables(run: RunFiles) -> str:
    """Images per class as narrow tables of up to 10 classes each, so 100 classes stay readable."""
    data = run.data or {}
    count_rows = [(title, data[key]) for key, title in (
        ("train_counts", "train"), ("test_counts", "test"), ("longtail_test_counts", "long-tailed test"))
        if data.get(key)]
    if not count_rows:
        return ""
    names = run.class_names
    tables = []
    for start in range(0, len(names), CLASSES_PER_COUNTS_TABLE):
        chunk = range(start, min(start + CLASSES_PER_COUNTS_TABLE, len(names)))
        tables.append(_table(["images"] + [names[c] for c in chunk],
                             [[title] + [str(counts[c]) for c in chunk] for title, counts in count_rows]))
    return "\n\n".join(tables)


def _search_section(run: RunFiles, plots: set[str]) -> str:
    if not (run.search_rows or run.alpha_rows or run.search_genotype):
        return ""
    parts = ["## Search"]
    if run.search_stop:
        stop = run.search_stop
        parts.append(f"**Stopped early** after epoch {stop.get('epoch')} ({stop.get('rule')}): {stop.get('reason')}. "
                     f"The genotype is epoch {stop.get('genotype_epoch')}'s.")
    if run.search_rows:
        parts += [_final_epoch_table(run.search_rows, SEARCH_KEYS)]
    if run.search_genotype:
        parts += ["### Genotype found" if searched(run.config) else "### Genotype drawn (no search)",
                  _genotype_text(run.search_genotype),
                  _image(plots, "search_genotype", "searched cells")]
    parts += [
        _image(plots, "search_curves", "search loss and accuracy"),
        "### Architecture weights" if run.alpha_rows else "",
        _dominant_skips_text(run.alpha_rows, dominant_threshold(run.config)),
        _image(plots, "alpha_heatmap", "relaxed architecture weights at the last epoch"),
        _image(plots, "alpha_history", "mean relaxed weight per operation during search"),
        _image(plots, "alpha_edges", "relaxed weight of every operation on every edge during search"),
        _image(plots, "sigma_histogram", "distribution of the relaxed weights at the last epoch"),
        _image(plots, "dominant_ops", "dominant operation per edge, and dominant skip connections, per epoch"),
    ]
    return "\n\n".join(part for part in parts if part)


def _retrain_section(run: RunFiles, plots: set[str]) -> str:
    if not (run.train_rows or run.train_genotype):
        return ""
    parts = ["## Retrain"]
    if run.train_genotype:
        name = run.train_genotype.get("name")
        if not _retrained_other_genotype(run):
            parts.append("Retrained the genotype found by the search." if searched(run.config) else
                         "Retrained the genotype drawn above (no search).")
        else:
            parts += [f"Retrained genotype{f' **{name}**' if name else ''}:", _genotype_text(run.train_genotype),
                      _image(plots, "train_genotype", "retrained cells")]
    if run.train_rows:
        parts.append(_final_epoch_table(run.train_rows, RETRAIN_KEYS))
        parts.append("The model evaluated is the one after the last epoch; the validation part is held out of "
                     "the training images, and the test set is evaluated once, at the end.")
    parts.append(_image(plots, "train_curves", "retrain loss and accuracy"))
    parts.append(_image(plots, "shot_group_history", "validation accuracy by shot group against epoch"))
    return "\n\n".join(part for part in parts if part)


def _evaluation_section(run: RunFiles, plots: set[str]) -> str:
    balanced, longtail = _test_metrics(run)
    if balanced is None:
        return ""
    parts = ["## Evaluation", _per_class_table(run, balanced, longtail),
             _image(plots, "per_class", "per-class accuracy against training-set size"),
             _image(plots, "predicted_classes", "how often each class is predicted, beside its test images"),
             _image(plots, "misclassified", "misclassified test images, rarest training classes first"),
             _image(plots, "confusion", f"confusion matrix on the {name_of_test_set(balanced)} set"),
             _image(plots, "confusion_longtail", "confusion matrix on the long-tailed test set")]
    return "\n\n".join(part for part in parts if part)


def mu_sweep_section(run: RunFiles, plots: set[str]) -> str:
    """Two-branch runs: accuracy at every test-time mixing ratio (μ = 1 instance head, 0 balanced head)."""
    if not run.mu_sweep:
        return ""
    sweep = run.mu_sweep
    sets = [name for name in ("val", "balanced_test", "longtail_test") if name in sweep["rows"][0]]
    titles = {"val": "validation", "balanced_test": "balanced test", "longtail_test": "long-tailed test"}
    header = ["μ"] + [f"{titles[name]}: {key}" for name in sets for key in ("overall", "balanced")]
    rows = [[f"{row['mu']:g}"] + [format_percent(row[name].get(key)) for name in sets for key in ("overall", "balanced")]
            for row in sweep["rows"]]
    lines = [
        "## Accuracy against the mixing ratio",
        f"Test-time μ of the evaluation above: {sweep.get('mu_test')}; best μ on the validation part "
        f"(balanced accuracy): {sweep.get('mu_selected_on_val')}. μ = 1 is the instance-sampling head alone, "
        "μ = 0 the class-balanced head alone.",
        _mu_choices_table(run.evaluation or {}),
        _table(header, rows),
        _image(plots, "mu_sweep", "accuracy against the test-time mixing ratio"),
    ]
    return "\n\n".join(line for line in lines if line)


# The first epoch's t in the μ schedule (logged as mu_t), in words
EPOCH_COUNTS = {1: "from 1 (t = 1 … T, the HLS paper's Algorithm 1)",
                0: "from 0 (t = 0 … T − 1, BBN's code)"}


def two_branch_search_section(run: RunFiles, plots: set[str]) -> str:
    """Two-branch (BBN / HLS) searches: μ beside the losses (HLS (Tang, 2024), Fig. 2), μ and the HLS factor
    against the normalised epoch (Fig. 5), and the α-gradient norm per component (Theorem 1)."""
    rows = [row for row in run.search_rows if row.get("mu") is not None]
    if not rows:
        return ""
    search = (run.config or {}).get("search") or {}
    first_t = rows[0].get("mu_t", 0)  # runs logged before mu_t counted from 0
    parts = ["## Two-branch search: mixing ratio, HLS factor, α gradients",
             f"μ_t over the search epochs counts t {EPOCH_COUNTS.get(first_t, f'from {first_t}')}: "
             f"μ = {rows[0]['mu']:.4f} in the "
             f"first epoch, {rows[-1]['mu']:.4f} in the last"
             f"{' (continued training included)' if len(rows) > (search.get('epochs') or len(rows)) else ''}.",
             _image(plots, "mu_losses", "training and validation loss with the mixing ratio (HLS paper, Fig. 2)"),
             _image(plots, "hls_schedule", "mixing ratio and HLS factor against the normalised epoch (HLS paper, Fig. 5)")]
    norms = [row for row in rows if row.get("alpha_grad_norm_backbone") is not None]
    if norms:
        first, last = norms[0], norms[-1]
        table = _table(["epoch", "μ", "‖∇α‖ backbone", "‖∇α‖ instance head", "‖∇α‖ class-balanced head"],
                       [[str(row.get("epoch", "?")), f"{row['mu']:.3f}",
                         *(f"{row[f'alpha_grad_norm_{c}']:.3g}" for c in ("backbone", "instance", "balanced"))]
                        for row in ([first, last] if len(norms) > 1 else [first])])
        parts += ["Mean α-gradient norm per step (Theorem 1 of the HLS paper: the heads' norms carry μ and 1 − μ, the "
                  "backbone's does not, which is why HLS slows the backbone's α late in the search):", table,
                  _image(plots, "alpha_grad_norms", "α-gradient norm per component and epoch (HLS paper, Theorem 1)")]
    return "\n\n".join(part for part in parts if part)


# eval.json entries of a two-branch run: the accuracy at each way of choosing the test-time μ
MU_CHOICES = (("mu_selected_on_val", "chosen on validation"), ("mu_zero", "μ = 0 (class-balanced head)"),
              ("mu_best_on_test", "best on test (the HLS paper's protocol, optimistic)"))


def _mu_choices_table(evaluation: Row) -> str:
    """Test accuracy at μ_test beside μ chosen on validation, μ = 0 and the best test μ."""
    if evaluation.get("mu_test") is None:
        return ""
    sets = [name for name in ("balanced_test", "longtail_test") if evaluation.get(name)]
    titles = {"balanced_test": "balanced test", "longtail_test": "long-tailed test"}
    rows = [["μ_test (fixed before testing)", f"{evaluation['mu_test']:g}",
             *(format_percent(evaluation[name].get("overall")) for name in sets)]]
    for key, title in MU_CHOICES:
        choice = evaluation.get(key)
        if choice:
            rows.append([title, f"{choice['mu']:g}", *(format_percent((choice.get(name) or {}).get("overall"))
                                                       for name in sets)])
    return _table(["test-time μ", "μ", *(f"{titles[name]}: overall" for name in sets)], rows)


def _per_class_table(run: RunFiles, balanced: Row, longtail: Row | None) -> str:
    counts = run.train_counts
    groups = balanced.get("groups") or (shot_groups(counts, *run.shot_thresholds) if counts else {})
    group_of = {c: name for name, members in groups.items() for c in members}
    tested = count_test_images(balanced) or []
    detailed = balanced.get("precision") is not None  # eval.json from before precision/F1 were recorded: recall only
    header = ["class", "train images", "group", "test images", name_of_test_set(balanced)] + (
        ["long-tailed test"] if longtail else [])
    if detailed:
        header += ["precision", "F1", "predicted"]
    rows = []
    for c, name in enumerate(run.class_names):
        row = [name, str(counts[c]) if counts else MISSING, group_of.get(c, MISSING),
               str(_at(tested, c)) if _at(tested, c) is not None else MISSING,
               format_percent(_at(balanced.get("per_class"), c))]
        if longtail:
            row.append(format_percent(_at(longtail.get("per_class"), c)))
        if detailed:
            row += [format_percent(_at(balanced["precision"], c)), format_percent(_at(balanced.get("f1"), c)),
                    str(_at(balanced.get("predicted_counts"), c))]
        rows.append(row)
    intro = "Recall of each class (a class without test images reads —)"
    if detailed:
        intro += (f"; on the {name_of_test_set(balanced)} set also precision, F1 (scikit-learn's; a class never "
                  "predicted has no precision) and how often it was predicted")
    return intro + ":\n\n" + _table(header, rows)


def _config_section(run: RunFiles) -> str:
    if run.config is None:
        return ""
    config = yaml.safe_dump(run.config, sort_keys=False).rstrip()
    return f"## Configuration\n\n<details><summary>config.yaml</summary>\n\n```yaml\n{config}\n```\n\n</details>"


# ---------------------------------------------------------------------------------- small pieces


def _final_epoch_table(rows: list[Row], keys: tuple[str, ...]) -> str:
    """The last epoch's numbers, with the phase's total time."""
    last = rows[-1]
    present = [key for key in keys if last.get(key) is not None]
    seconds = stage_seconds(rows)
    cells = [str(last.get("epoch", len(rows)))]
    cells += [format_percent(last[key]) if key.endswith("_acc") else f"{last[key]:.4f}" for key in present]
    header = ["epochs"] + [key.replace("_", " ") for key in present] + ["time"]
    return "Final epoch:\n\n" + _table(header, [cells + [format_seconds(seconds)]])


def _is_cell(genotype: Row) -> bool:
    """A DARTS-cell genotype (normal/reduce edge lists), not another space's architecture (e.g. S₂'s layers)."""
    return "layers" not in genotype


def _layers_text(genotype: Row) -> str:
    """An S₂ architecture: each layer's summed candidates, and how many layers are removed (skip only)."""
    layers = genotype["layers"]
    removed = sum(list(ops) == ["skip_connect"] for ops in layers)
    lines = [f"**S₂ network** ({genotype.get('layout', '?')} layout, width × {genotype.get('width_mult', '?')}): "
             f"{len(layers)} searchable layers, {removed} removed (skip only), {len(layers) - removed} computing:", ""]
    lines += [f"- layer {index}: `{' + '.join(ops)}`" for index, ops in enumerate(layers)]
    return "\n".join(lines)


def searched(config: Row | None) -> bool:
    """Whether the run's method searched its genotype (`Method.searches`: False for random cells), from its
    saved config."""
    entry = saved_method(config)
    return entry.searches if entry is not None else True


def dominant_threshold(config: Row | None) -> float | None:
    """The dominant-operation rule of the run's search method (`Method.dominant_threshold` in ltnas.methods:
    None for the top-2-per-node rule, a weight threshold for FairDARTS and SSF-NAS), from its saved config."""
    entry = saved_method(config)
    return entry.dominant_threshold if entry is not None else None


def _dominant_skips_text(alpha_rows: list[Row], threshold: float | None = None) -> str:
    """How many dominant operations (the method's rule, `dominant_threshold`) are skip connections at the last
    epoch and at the first: per cell type (DARTS' collapse, FairDARTS Fig. 2), or S₂'s layers (Fig. 1)."""
    if not alpha_rows:
        return ""
    first_row, last_row = alpha_rows[0], alpha_rows[-1]
    after = (f"after epoch {last_row.get('epoch', len(alpha_rows))}", f"after epoch {first_row.get('epoch', 1)}")
    if "layers" in last_row:
        first, last = (dominant_operations(row, "layers", threshold=threshold) for row in (first_row, last_row))
        return (f"Layers with skip as a dominant operation ({dominant_rule(threshold, layers=True)}): "
                f"**{last.count('skip_connect')} of {len(last_row['layers'])}** {after[0]} "
                f"({first.count('skip_connect')} {after[1]}); DARTS on ImageNet ends with 11 of 19 (FairDARTS, Fig. 1).")
    cells = [key for key in CELL_TITLES if key in last_row and key in first_row]
    if not cells:
        return ""
    counts = [(CELL_TITLES[key].lower(), *(dominant_operations(row, key, threshold=threshold).count("skip_connect")
                                           for row in (last_row, first_row))) for key in cells]
    return (f"Dominant skip connections ({dominant_rule(threshold)}, the method's rule) {after[0]}: "
            + ", ".join(f"{title} **{last}**" for title, last, _ in counts)
            + f" ({', '.join(str(first) for _, _, first in counts)} {after[1]}).")


def _genotype_text(genotype: Row) -> str:
    """Each cell as a list of nodes and their inputs, e.g. `1 ← sep_conv_3x3(c_{k-1}), skip_connect(0)`."""
    if not _is_cell(genotype):
        return _layers_text(genotype)
    blocks = []
    for key, title in CELL_TITLES.items():
        if key not in genotype:
            continue
        inputs: dict[int, list[str]] = {}
        for op, to_node, from_node in genotype[key]:
            inputs.setdefault(int(to_node), []).append(f"{op}({node_name(int(from_node))})")
        concat = genotype.get(f"{key}_concat") or sorted(inputs)
        last_node = max([*inputs, *concat, 1])
        lines = [f"**{title}**, output = concat of nodes {', '.join(node_name(n) for n in concat)}:", ""]
        for node in range(2, last_node + 1):
            if node in inputs:
                lines.append(f"- node {node_name(node)} ← `{', '.join(inputs[node])}`")
            else:
                lines.append(f"- node {node_name(node)}: no input (dropped)")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        # A "|" inside a cell would end the cell early.
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(row) for row in rows)])


def _test_metrics(run: RunFiles) -> tuple[Row | None, Row | None]:
    evaluation = run.evaluation or {}
    return evaluation.get("balanced_test"), evaluation.get("longtail_test")


def _retrained_other_genotype(run: RunFiles) -> bool:
    """True when train/genotype.json is not simply the searched genotype (e.g. a published one)."""
    if not run.train_genotype:
        return False
    if not run.search_genotype:
        return True
    cell_keys = ("normal", "normal_concat", "reduce", "reduce_concat", "layers", "layout", "width_mult")
    return any(run.train_genotype.get(key) != run.search_genotype.get(key) for key in cell_keys)


def _at(values: list[Any] | None, index: int) -> Any:
    return values[index] if values is not None and index < len(values) else None


# ---------------------------------------------------------------------------------------- reading


def _read_json(path: Path) -> Row | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise LtnasError(f"{path} is not valid JSON ({error}); restore it or re-run the step that writes it") from None


def _read_jsonl(path: Path) -> list[Row]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            # A run killed mid-write leaves a torn last line; everything before it is still good.
            if number == len(lines):
                break
            raise LtnasError(f"{path} line {number} is not valid JSON ({error}); "
                             "restore the file or delete that line") from None
    return rows


def _read_yaml(path: Path) -> Row | None:
    if not path.is_file():
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        reason = str(error).splitlines()[0]
        raise LtnasError(f"{path} is not valid YAML ({reason}); restore it or re-run") from None
