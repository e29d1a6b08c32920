"""The few numbers a run ends with, formatted once for the terminal and the Markdown report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ltnas.report.naming import few_test_images, name_of_test_set

MISSING = "—"
# The accuracies of a `classification_metrics` dict, in the order they are reported.
ACCURACIES: tuple[str, ...] = ("overall", "balanced", "many", "medium", "few")


def format_percent(fraction: float | None) -> str:
    """0.87123 → "87.12%"; `None` (nothing to measure) → "—"."""
    return MISSING if fraction is None else f"{100 * fraction:.2f}%"


def format_params(count: int | None) -> str:
    """3_349_578 → "3.35M", 12_400 → "12.40K", 950 → "950"."""
    if count is None:
        return MISSING
    if count >= 1_000_000:
        return f"{count / 1e6:.2f}M"
    if count >= 1_000:
        return f"{count / 1e3:.2f}K"
    return str(count)


def format_bytes(count: int | None) -> str:
    """1536 → "1.5 KiB", 3 × 2³⁰ → "3.00 GiB" (binary units); `None` → "—"."""
    if count is None:
        return MISSING
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if count >= size:
            return f"{count / size:.2f} {unit}" if unit == "GiB" else f"{count / size:.1f} {unit}"
    return f"{count} B"


def format_peak_memory(peak: dict[str, Any] | None) -> str:
    """eval.json's `peak_memory` as one cell: "GPU 34.20 GiB, CPU RSS 2.10 GiB" (GPU only on CUDA); a peak
    counted since the process began (not only this run) says so."""
    if not peak:
        return MISSING
    parts = [f"GPU {format_bytes(peak['cuda_allocated_bytes'])}"] if peak.get("cuda_allocated_bytes") is not None else []
    parts.append(f"CPU RSS {format_bytes(peak.get('cpu_rss_bytes'))}")
    return ", ".join(parts) + (" (process peak)" if peak.get("scope") == "process" else "")


def format_seconds(seconds: float | None) -> str:
    """42.5 → "42.5s", 754 → "12m 34s", 7384 → "2h 03m"."""
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def summary_rows(eval_dict: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, formatted value) pairs of an `eval.json`; absent numbers read "—"."""
    balanced = eval_dict.get("balanced_test") or {}
    longtail = eval_dict.get("longtail_test")
    seconds = eval_dict.get("seconds") or {}
    network = eval_dict.get("network")
    baseline = network not in (None, "cell")
    rows = [
        ("Network", network) if baseline else ("Genotype", str(eval_dict.get("genotype", MISSING))),
        ("Parameters", format_params(eval_dict.get("params"))),
    ]
    if eval_dict.get("madds") is not None:  # the retrained network's multiply-adds per image
        rows.append(("Multiply-adds", format_params(eval_dict["madds"])))
    if eval_dict.get("mu_test") is not None:  # a two-branch (bbn) network, evaluated at this mixing ratio
        rows.append(("Test-time mixing ratio μ", f"{eval_dict['mu_test']:g}"))
    name = name_of_test_set(balanced).capitalize()
    rows += [(f"{name}: {metric}", format_percent(balanced.get(metric))) for metric in ACCURACIES]
    if balanced.get("top5") is not None:  # more than 5 classes
        rows.append((f"{name}: top-5", format_percent(balanced["top5"])))
    if longtail:
        rows += [(f"Long-tailed test: {metric}", format_percent(longtail.get(metric)))
                 for metric in ("overall", "balanced")]
    rows += [
        ("Search time", format_seconds(seconds.get("search"))),
        ("Train time", format_seconds(seconds.get("train"))),
    ]
    if eval_dict.get("peak_memory"):
        rows.append(("Peak memory", format_peak_memory(eval_dict["peak_memory"])))
    return rows


def print_summary(eval_dict: dict[str, Any], run_dir: str | Path, console: Console | None = None) -> None:
    """Print `summary_rows` as a table, then where the run folder (and its report) is."""
    console = console or Console()
    table = Table(title="ltnas run summary", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for metric, value in summary_rows(eval_dict):
        # Text, not str: a genotype or a path may contain "[...]", which rich would read as markup.
        table.add_row(Text(metric), Text(value))
    console.print(table)
    warning = few_test_images(eval_dict.get("balanced_test"), _class_names(run_dir))
    if warning:
        console.print(Text(f"warning: {warning}"))
    console.print(Text(f"Run folder: {run_dir}"))


def _class_names(run_dir: str | Path) -> list[str] | None:
    path = Path(run_dir) / "data.json"
    return json.loads(path.read_text()).get("classes") if path.is_file() else None
