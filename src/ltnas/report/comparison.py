"""The report of a comparison: mean ± std over seeds per variant, the paper's numbers beside ours,
and the variants' plots side by side (comparison.json, comparison.md, plots/)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ltnas.atomic import atomic_write_text
from ltnas.methods import saved_method
from ltnas.report.naming import name_of_test_set
from ltnas.report.search_outcome import numeric_sweep, outcome_markdown, outcomes, plot_dominant_sweep
from ltnas.report.summary import format_bytes, format_params, format_seconds
from ltnas.report.tables import format_mean_std, markdown_table, summarise  # noqa: F401 (summarise: re-exported)

# (key in comparison.json, column title, dotted path into eval.json)
METRICS: tuple[tuple[str, str, str], ...] = (
    ("balanced", "balanced test", "balanced_test.overall"),
    ("longtail", "LT test", "longtail_test.overall"),
    ("many", "many", "balanced_test.many"),
    ("medium", "medium", "balanced_test.medium"),
    ("few", "few", "balanced_test.few"),
)
# Two-branch (BBN / HLS) runs: balanced test accuracy at other test-time μ than μ_test (see stages/bbn.py).
MU_METRICS: tuple[tuple[str, str, str], ...] = (
    ("balanced_mu_val", "μ val", "mu_selected_on_val.balanced_test.overall"),
    ("balanced_mu_zero", "μ = 0", "mu_zero.balanced_test.overall"),
    ("balanced_mu_best", "best test μ", "mu_best_on_test.balanced_test.overall"),
)
# Shown when some variant has it: top-5 accuracy (eval.json has it for more than 5 classes; ImageNet's second
# accuracy, as in FairDARTS (Chu et al., 2020)'s Table 2).
TOP5_METRICS: tuple[tuple[str, str, str], ...] = (("top5", "top-5", "balanced_test.top5"),)
COSTS: tuple[tuple[str, str], ...] = (("params", "params"), ("madds", "madds"), ("search_seconds", "seconds.search"),
                                     ("train_seconds", "seconds.train"),
                                     # methods that report their own cost (IMB-NAS procedures)
                                     ("cost_seconds", "cost.procedure.seconds"),
                                     ("cost_images", "cost.procedure.images"),
                                     # peak memory beside the wall time (ltnas/memory.py)
                                     ("peak_gpu_bytes", "peak_memory.cuda_allocated_bytes"),
                                     ("peak_rss_bytes", "peak_memory.cpu_rss_bytes"))
# Run plots shown side by side, one column per variant (drawn by each run's own report).
RUN_PLOTS = (("search_genotype", "searched cells"), ("sigma_histogram", "σ(α) / weights at the last epoch"),
             ("dominant_ops", "dominant operations per epoch"), ("per_class", "per-class accuracy"))


# Two-branch (BBN / HLS) runs' own plots, shown side by side when a comparison has them.
TWO_BRANCH_PLOTS = (("mu_sweep", "accuracy against μ"), ("hls_schedule", "μ and HLS factor (HLS Fig. 5)"),
                    ("mu_losses", "loss and μ (HLS Fig. 2)"), ("alpha_grad_norms", "α-gradient norms (Theorem 1)"))


def lookup(data: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def aggregate(members: Sequence[tuple[str, int, Path]]) -> dict[str, dict[str, Any]]:
    """variant → {metric: {mean, std, values}} from each member's eval.json."""
    evals: dict[str, list[dict]] = {}
    for variant, _seed, path in members:
        evals.setdefault(variant, []).append(json.loads((Path(path) / "eval.json").read_text()))
    table = {}
    for variant, rows in evals.items():
        table[variant] = {key: summarise([lookup(row, dotted) for row in rows])
                          for key, _, dotted in METRICS + MU_METRICS + TOP5_METRICS}
        table[variant].update({key: summarise([lookup(row, dotted) for row in rows]) for key, dotted in COSTS})
    return table


def main_test_set_name(members: Sequence[tuple[str, int, Path]]) -> str:
    """What the members' main test set is ("balanced test", or "test" for e.g. a folder's stratified
    split: report/naming.py), read from the first member's eval.json."""
    for _variant, _seed, path in members:
        return name_of_test_set(json.loads((Path(path) / "eval.json").read_text()).get("balanced_test"))
    return "balanced test"


def main_test_set(result: dict) -> str:
    """The main test set's name in a comparison.json (files written before it was recorded: balanced)."""
    return result.get("test_set") or "balanced test"


def baseline_variants(members: Sequence[tuple[str, int, Path]]) -> list[str]:
    """The variants that searched nothing: a baseline network (`train.network`), a given genotype
    (`train.genotype`) or a method that does not search (its `searches` in ltnas.methods, e.g. random cells),
    read from each member's config.yaml."""
    baselines = []
    for variant, _seed, path in members:
        config_file = Path(path) / "config.yaml"
        saved = (yaml.safe_load(config_file.read_text()) or {}) if config_file.is_file() else {}
        train = saved.get("train") or {}
        entry = saved_method(saved)
        searched = entry is None or entry.searches
        if (train.get("network", "cell") != "cell" or train.get("genotype") or not searched) and variant not in baselines:
            baselines.append(variant)
    return baselines


def write_comparison(path: str | Path, spec, members: Sequence[tuple[str, int, Path]],
                     failed: dict[tuple[str, int], str | None] | None = None) -> dict:
    """Aggregate the finished members into comparison.json and comparison.md; returns the json.

    `failed` maps (variant, seed) of each member that did not finish to why (None: not run yet);
    they are listed under "failed", and a variant none of whose members finished has a row that
    says so."""
    path = Path(path)
    table = aggregate(members)
    published = published_fractions(spec.published.model_dump()) if spec.published is not None else None
    result = {"title": spec.title, "seeds": list(spec.seeds), "variants": table, "published": published,
              "baselines": baseline_variants(members), "test_set": main_test_set_name(members),
              "runs": {variant: [str(Path(p).relative_to(path)) for v, _, p in members if v == variant]
                       for variant in table},
              "failed": [{"variant": variant, "seed": seed, "error": error or "not run"}
                         for (variant, seed), error in (failed or {}).items()],
              "shot_thresholds": _shot_thresholds(members),
              "two_branch": sorted(mu_sweeps(members)),  # variants with a μ sweep (BBN / HLS)
              "dominant_skips": dominant_skip_series(members),
              # each variant's search outcome, and the setting the variants sweep (report/search_outcome.py)
              "search": outcomes(members), "sweep": numeric_sweep(getattr(spec, "variants", None) or {})}
    atomic_write_text(json.dumps(result, indent=1) + "\n", path / "comparison.json")
    plots = draw_comparison_plots(path, members, table, result["dominant_skips"]) if table else set()
    if result["sweep"] and plot_dominant_sweep(result["sweep"], result["search"], path / "plots" / "dominant_sweep.png"):
        plots.add("dominant_sweep")
    atomic_write_text(comparison_markdown(result, plots), path / "comparison.md")
    return result


def dominant_skip_series(members: Sequence[tuple[str, int, Path]]) -> dict[str, dict[str, Any]]:
    """variant → {"rule", "epochs", "panels": {cell type (or S₂ layers): [[dominant skip connections per epoch]
    per seed]}} from each member's search/alpha.jsonl, by the rule of the variant's search method
    (`Method.dominant_threshold`); variants without logged α (baselines) are left out. Seeds that logged fewer
    epochs (a search still running) cut every seed of the variant to the shortest."""
    from ltnas.report.markdown import dominant_threshold
    from ltnas.report.plots import dominant_operations, dominant_rule, weight_panels

    series: dict[str, dict[str, Any]] = {}
    for variant, _seed, run in members:
        alpha_file = Path(run) / "search" / "alpha.jsonl"
        rows = [json.loads(line) for line in alpha_file.read_text().splitlines() if line.strip()] \
            if alpha_file.is_file() else []
        if not rows:
            continue
        config_file = Path(run) / "config.yaml"
        threshold = dominant_threshold(yaml.safe_load(config_file.read_text()) if config_file.is_file() else None)
        panels = weight_panels(rows[-1])
        entry = series.setdefault(variant, {"rule": dominant_rule(threshold, layers=panels == [("layers", "S₂ layers")]),
                                            "epochs": [], "panels": {}})
        epochs = [row.get("epoch", index + 1) for index, row in enumerate(rows)]
        if not entry["epochs"] or len(epochs) < len(entry["epochs"]):
            entry["epochs"] = epochs
        for key, title in panels:
            counts = [dominant_operations(row, key, threshold=threshold).count("skip_connect") for row in rows]
            entry["panels"].setdefault(title, []).append(counts)
    for entry in series.values():
        length = len(entry["epochs"])
        entry["panels"] = {title: [counts[:length] for counts in seeds] for title, seeds in entry["panels"].items()}
    return series


def _shot_thresholds(members: Sequence[tuple[str, int, Path]]) -> dict[str, int]:
    """The many / few thresholds of the members' evaluations (CIFAR's 100 / 20 for older eval.json)."""
    from ltnas.report.plots import metric_thresholds

    for _variant, _seed, run in members:
        many, few = metric_thresholds(json.loads((Path(run) / "eval.json").read_text()).get("balanced_test"))
        return {"many": many, "few": few}
    return {"many": 100, "few": 20}


# eval.json paths of counts (parameters, multiply-adds per image): published as plain counts, not percent.
COUNT_METRICS = {"params": "params", "madds": "×+"}


def published_fractions(published: dict) -> dict:
    """A `published` section with every number (a value, or a {mean, std, runs}) turned from percent into a
    fraction: every number in comparison.json is a fraction, as in eval.json. Counts (COUNT_METRICS: a
    paper's parameters and multiply-adds, e.g. FairDARTS-a's 2.8M and 373M) stay counts."""
    def fraction(number, metric: str):
        scale = 1 if metric in COUNT_METRICS else 100
        if isinstance(number, dict):
            return {**number, "mean": number["mean"] / scale, "std": number["std"] / scale}
        return number / scale

    metric = published["metric"]
    return {**published, "values": {v: fraction(n, metric) for v, n in published["values"].items()},
            "metrics": {m: {v: fraction(n, m) for v, n in numbers.items()}
                        for m, numbers in (published.get("metrics") or {}).items()}}


def published_metrics(published: dict) -> dict[str, dict]:
    """Metric → variant → number of a comparison's `published` section, its main `metric` first."""
    return {published["metric"]: published["values"], **(published.get("metrics") or {})}


def published_value(result: dict, variant: str, metric: str | None = None) -> str:
    """The paper's number for `variant` in `metric` (default: the main one) in percent: '97.46' or
    '97.33 ± 0.15', a count as counts are shown ('2.80M', '3.32M ± 460.00K'); '—' where the paper has none."""
    published = result.get("published")
    if not published:
        return "—"
    metric = metric or published["metric"]
    number = published_metrics(published).get(metric, {}).get(variant)
    if number is None:
        return "—"
    show = (lambda value: format_params(int(round(value)))) if metric in COUNT_METRICS else \
        (lambda value: f"{100 * value:.2f}")
    if isinstance(number, dict):
        return f"{show(number['mean'])} ± {show(number['std'])}"
    return show(number)


def table_rows(result: dict, memory: bool = True) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table (accuracies in percent); `memory`: with the peak-memory column
    (comparison.md; the terminal's table leaves it out to keep its width)."""
    published = result.get("published")
    with_cost = any(stats.get("cost_seconds", {}).get("mean") is not None for stats in result["variants"].values())
    optional_columns = [(key, title) for key, title, _ in MU_METRICS + TOP5_METRICS
                        if any(stats.get(key, {}).get("mean") is not None for stats in result["variants"].values())]
    titles = [main_test_set(result) if key == "balanced" else title for key, title, _ in METRICS]
    with_memory = memory and any(stats.get("peak_rss_bytes", {}).get("mean") is not None
                                 for stats in result["variants"].values())
    header = ["variant", *titles, *(f"{main_test_set(result)}, {t}" for _, t in optional_columns),
              "params", "×+", "search", "train"]
    if with_memory:
        header.append("peak memory")
    if with_cost:
        header.append("cost (time, images)")
    published_columns = list(published_metrics(published)) if published else []
    header.extend(f"published ({_metric_title(metric)})" for metric in published_columns)
    rows = []
    for variant, stats in result["variants"].items():
        row = [variant, *(format_mean_std(stats[key]) for key, _, _ in METRICS),
               *(format_mean_std(stats.get(key, {})) for key, _ in optional_columns),
               format_params(_mean_int(stats["params"])), format_params(_mean_int(stats.get("madds") or {})),
               format_seconds(stats["search_seconds"]["mean"]),
               format_seconds(stats["train_seconds"]["mean"])]
        if with_memory:
            row.append(_peak_memory_cell(stats))
        if with_cost:
            images = _mean_int(stats["cost_images"])
            row.append(f"{format_seconds(stats['cost_seconds']['mean'])}, "
                       f"{format_params(images) if images is not None else '—'}")
        row.extend(published_value(result, variant, metric) for metric in published_columns)
        rows.append(row)
    for variant in dict.fromkeys(f["variant"] for f in result.get("failed") or []):
        if variant not in result["variants"]:  # no seed of it finished: one row that says so
            seeds = [str(f["seed"]) for f in result["failed"] if f["variant"] == variant]
            rows.append([variant, f"failed (seed {', '.join(seeds)})", *["—"] * (len(header) - 2)])
    return header, rows


def failure_lines(result: dict) -> list[str]:
    """One line per member that did not finish, with its reason."""
    return [f"{f['variant']}, seed {f['seed']}: failed — {f['error']}" if f["error"] != "not run"
            else f"{f['variant']}, seed {f['seed']}: not run" for f in result.get("failed") or []]


def verdict(result: dict) -> str | None:
    """Which variant won on balanced test accuracy, and by how much on the few-shot classes."""
    ranked = sorted(((stats["balanced"]["mean"], variant) for variant, stats in result["variants"].items()
                     if stats["balanced"]["mean"] is not None), reverse=True)
    if len(ranked) < 2:
        return None
    (best, winner), (second, runner_up) = ranked[0], ranked[1]
    stats = result["variants"]
    if best - second < 5e-5:  # equal at the two decimals shown
        line = f"No winner: {winner} and {runner_up} tie at {100 * best:.2f}% {main_test_set(result)} accuracy."
    else:
        line = (f"{winner} won: {100 * best:.2f}% {main_test_set(result)} accuracy, {100 * (best - second):.2f} points "
                f"more than {runner_up}.")
    few = {variant: stats[variant]["few"]["mean"] for _, variant in ranked}
    if few[winner] is not None:
        others = ", ".join(f"{variant} {100 * value:.2f}%" for variant, value in few.items()
                           if variant != winner and value is not None)
        line += f" On the few-shot (tail) classes {winner} scores {100 * few[winner]:.2f}% ({others})."
    baselines = set(result.get("baselines") or ())
    searched = [(value, variant) for value, variant in ranked if variant not in baselines]
    trained = [(value, variant) for value, variant in ranked if variant in baselines]
    if searched and trained:  # what the search bought over the best network trained without one
        (search_best, search_winner), (baseline_best, baseline_winner) = searched[0], trained[0]
        line += (f" Best searched network: {search_winner} {100 * search_best:.2f}%, best baseline: "
                 f"{baseline_winner} {100 * baseline_best:.2f}% ({100 * (search_best - baseline_best):+.2f} points).")
    if one_seed(result):
        line += " One seed: no spread is known, so this ranking may be noise; run ≥ 3 seeds (--seeds 0,1,2)."
    return line


def one_seed(result: dict) -> bool:
    """True when no variant has more than one finished seed (no spread to judge a ranking by)."""
    counts = [sum(v is not None for v in stats["balanced"].get("values") or [None])
              for stats in result["variants"].values()]
    return max(counts, default=0) <= 1


# Columns the terminal's table leaves out, in this order, while it is wider than the terminal (rich would cut every
# number short instead: "91.…" in an 80-column window); comparison.md keeps them all. A header matches by its end
# (the top-5 column is "<test set>, top-5").
NARROW_TERMINAL_DROPS = ("top-5", "×+", "search", "train", "params", "LT test", "medium", "many")


def print_comparison(result: dict, folder: str | Path, console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or logged: rich would squeeze the table into 80 columns
            console = Console(width=140)
    header, rows = table_rows(result, memory=False)
    seeds = result["seeds"]
    title = f"{result.get('title') or 'comparison'} — accuracy %, mean ± std over seeds {seeds}" if len(seeds) > 1 \
        else f"{result.get('title') or 'comparison'} — accuracy %, seed {seeds[0]}"
    table, left_out = terminal_table(title, header, rows, console)
    console.print(table)
    if left_out:  # "; " between them: the top-5 column's header holds a comma
        console.print(Text(f"Left out to fit {console.width} columns: {'; '.join(left_out)} (comparison.md has "
                           "every column)."))
    if result.get("published"):
        console.print(Text(f"Published: {result['published']['source']}"))
    if any(stats.get(key, {}).get("mean") is not None for stats in result["variants"].values() for key, _, _ in MU_METRICS):
        console.print(Text(MU_NOTE))
    line = verdict(result)
    if line:
        console.print(Text(line))
    for failure in failure_lines(result):
        console.print(Text(failure))
    console.print(Text(f"Comparison folder: {folder} (comparison.md)"))


def terminal_table(title: str, header: list[str], rows: list[list[str]], console: Console) -> tuple[Table, list[str]]:
    """The table at most as wide as `console`, leaving out the columns of NARROW_TERMINAL_DROPS in their order while it
    is wider; returns it and the headers it left out (none when it fits, or when nothing is left to leave out)."""
    kept, left_out = list(header), []
    unbounded = console.options.update_width(10_000)  # measured as wide as it wants (rich caps it at the console)
    droppable = [next(column for column in header if column.endswith(end))
                 for end in NARROW_TERMINAL_DROPS if any(column.endswith(end) for column in header)]
    while True:
        table = Table(title=title, title_justify="left")
        for column in kept:
            table.add_column(column, justify="left" if column == header[0] else "right")
        for row in rows:
            table.add_row(*(Text(cell) for column, cell in zip(header, row) if column in kept))
        if not droppable or Measurement.get(console, unbounded, table).maximum <= console.width:
            return table, left_out
        left_out.append(droppable.pop(0))
        kept.remove(left_out[-1])


def comparison_markdown(result: dict, plots: set[str]) -> str:
    header, rows = table_rows(result)
    seeds = result["seeds"]
    many, few = (result.get("shot_thresholds") or {}).get("many", 100), (result.get("shot_thresholds") or {}).get("few", 20)
    baselines = result.get("baselines") or []
    parts = [f"# {result.get('title') or 'Comparison'}",
             f"Accuracy in percent on the {main_test_set(result)} set (overall, and per shot group: many > {many}, "
             f"medium {few}–{many}, few < {few} training images) and on the long-tailed test set; "
             f"{'mean ± sample std over seeds ' + str(seeds) if len(seeds) > 1 else 'seed ' + str(seeds[0])}; "
             "×+: multiply-adds per image of the evaluated network (convolutions and linear layers, auxiliary head "
             "excluded), as FairDARTS (Chu et al., 2020)'s Tables 1 and 2 count them.",
             markdown_table(header, rows)]
    if baselines:
        parts.append(f"Baselines (trained with the same recipe and long-tail plug-ins, nothing searched): "
                     f"{', '.join(baselines)}.")
    if result.get("published"):
        parts.append(f"Published numbers: {result['published']['source']}.")
    if any(key in stats and stats[key].get("mean") is not None
           for stats in result["variants"].values() for key, _, _ in MU_METRICS):
        parts.append(MU_NOTE)
    line = verdict(result)
    if line:
        parts.append(f"**{line}**")
    if result.get("failed"):
        parts.append("Members that did not finish (`ltnas compare --resume DIR` tries them again):\n\n"
                     + "\n".join(f"- {failure}" for failure in failure_lines(result)))
    for name, caption in (("shot_groups", "accuracy per shot group"), ("per_class", "per-class accuracy"),
                          ("class_counts", "training class counts of the variants"),
                          ("mu_sweep", "balanced test accuracy against the test-time mixing ratio, every variant "
                                       "(mean over seeds; a row without μ as a level line)"),
                          ("dominant_skips", "dominant skip connections per search epoch, mean ± std over seeds, "
                                             "each method's own dominance rule")):
        if name in plots:
            parts.append(f"![{caption}](plots/{name}.png)")
    parts.append(outcome_markdown(result, plots))
    parts.append(_side_by_side(result, plots))
    return "\n\n".join(part for part in parts if part) + "\n"


MU_NOTE = ("Two-branch (BBN / HLS) rows: `balanced test` is at the fixed test-time μ_test; beside it the same at "
           "the μ chosen on the validation part, at μ = 0 (the class-balanced head alone, where the HLS paper finds "
           "accuracy best) and at the best μ on the test set — the HLS paper's Table II protocol, optimistic because "
           "μ is chosen on the test set itself.")


def _side_by_side(result: dict, plots: set[str] = frozenset()) -> str:
    """One column per variant (its first seed's run), one row per run plot; with two-branch variants (a μ
    sweep drawn) also each one's accuracy against μ, its μ and HLS schedule and its α-gradient norms."""
    runs = {variant: paths[0] for variant, paths in result["runs"].items()}
    if not runs:
        return ""
    rows = []
    for name, caption in RUN_PLOTS:
        rows.append([caption, *(f"![{variant}]({run}/plots/{name}.png)" for variant, run in runs.items())])
    two_branch = set(result.get("two_branch") or ())
    for name, caption in TWO_BRANCH_PLOTS if "mu_sweep" in plots else ():
        rows.append([caption, *(f"![{variant}]({run}/plots/{name}.png)" if variant in two_branch else "—"
                                for variant, run in runs.items())])
    return "## Side by side\n\n" + markdown_table(["", *runs], rows)


def draw_comparison_plots(path: Path, members: Sequence[tuple[str, int, Path]], table: dict,
                          dominant_skips: dict[str, Any] | None = None) -> set[str]:
    from ltnas.report.plots import (plot_class_counts, plot_comparison_dominant_skips, plot_comparison_per_class,
                                    plot_comparison_shot_groups)

    out = path / "plots"
    drawn = set()
    thresholds = _shot_thresholds(members)
    plot_comparison_shot_groups(table, out / "shot_groups.png", (thresholds["many"], thresholds["few"]))
    drawn.add("shot_groups")
    per_class = {}
    for variant, _seed, run in members:
        if variant in per_class:
            continue
        eval_json = json.loads((Path(run) / "eval.json").read_text())
        data = json.loads((Path(run) / "data.json").read_text()) if (Path(run) / "data.json").is_file() else {}
        counts = data.get("train_counts")
        recalls = lookup(eval_json, "balanced_test.per_class")
        if counts and recalls:
            per_class[variant] = (recalls, counts)
    if per_class:
        plot_comparison_per_class(per_class, out / "per_class.png")
        drawn.add("per_class")
    distributions = class_count_panels(members)
    if len(distributions) > 1:  # the variants differ in their data: show how
        plot_class_counts(distributions, out / "class_counts.png")
        drawn.add("class_counts")
    sweeps = mu_sweeps(members)
    if sweeps:  # two-branch (BBN / HLS) variants: their μ sweeps on one axis, the others as level lines
        from ltnas.report.plots import plot_mu_sweep_overlay

        flat = {variant: stats["balanced"]["mean"] for variant, stats in table.items()
                if variant not in sweeps and stats["balanced"]["mean"] is not None}
        plot_mu_sweep_overlay(sweeps, flat, out / "mu_sweep.png")
        drawn.add("mu_sweep")
    if dominant_skips:
        plot_comparison_dominant_skips(dominant_skips, out / "dominant_skips.png")
        drawn.add("dominant_skips")
    return drawn


def class_count_panels(members: Sequence[tuple[str, int, Path]]) -> list[tuple[str, list[int]]]:
    """(title, training class counts) per distinct distribution of the variants' first runs (data.json), in
    the order first met; the title names the profile and ratio and the variants trained on it."""
    panels: dict[tuple[int, ...], tuple[str, list[str]]] = {}
    seen: set[str] = set()
    for variant, _seed, run in members:
        file = Path(run) / "data.json"
        if variant in seen or not file.is_file():
            continue
        seen.add(variant)
        data = json.loads(file.read_text())
        counts = tuple(data.get("train_counts") or ())
        if not counts:
            continue
        ratio = data.get("ratio")
        what = f"{data.get('profile')}" + (f", ratio {ratio:g}" if ratio and data.get("profile") != "balanced" else "")
        panels.setdefault(counts, (what, []))[1].append(variant)
    return [(f"{what}: {', '.join(variants)}", list(counts)) for counts, (what, variants) in panels.items()]


def mu_sweeps(members: Sequence[tuple[str, int, Path]], key: str = "balanced_test.overall"
              ) -> dict[str, list[tuple[float, float]]]:
    """variant → [(μ, mean over its seeds of `key`)] from each two-branch member's mu_sweep.json (variants
    without one are left out)."""
    values: dict[str, dict[float, list[float]]] = {}
    for variant, _seed, run in members:
        path = Path(run) / "mu_sweep.json"
        if not path.is_file():
            continue
        for row in json.loads(path.read_text())["rows"]:
            value = lookup(row, key)
            if value is not None:
                values.setdefault(variant, {}).setdefault(float(row["mu"]), []).append(float(value))
    return {variant: [(mu, float(np.mean(v))) for mu, v in sorted(by_mu.items())] for variant, by_mu in values.items()}


def _peak_memory_cell(stats: dict[str, Any]) -> str:
    """The largest peak over the seeds: GPU memory where the runs had CUDA, else the CPU's resident set."""
    for key, label in (("peak_gpu_bytes", "GPU"), ("peak_rss_bytes", "RSS")):
        values = [v for v in stats.get(key, {}).get("values") or [] if v is not None]
        if values:
            return f"{format_bytes(int(max(values)))} {label}"
    return "—"


def _metric_title(dotted: str) -> str:
    for _, title, path in METRICS + MU_METRICS + TOP5_METRICS:
        if path == dotted:
            return title
    return COUNT_METRICS.get(dotted, dotted)


def _mean_int(stat: dict[str, Any]) -> int | None:
    mean = stat.get("mean")
    return None if mean is None or math.isnan(mean) else int(round(mean))
