"""The IMB-NAS part of a run report: the evolution's history, its genotype, and what each stage cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from matplotlib.ticker import MaxNLocator

from ltnas.report.plots import _new_figure, _save
from ltnas.report.summary import MISSING, format_params, format_percent, format_seconds

Row = dict[str, Any]
STAGE_TITLES = {
    "source_supernet": "Source supernet (shared, trained once)",
    "supernet": "Target supernet (P3)",
    "adapt": "Adaptation (P1/P2)",
    "evolve": "Evolution",
    "train": "Retrain of the subnet found",
    "procedure": "Procedure total (without the shared source)",
}


def plot_evolution(rows: Sequence[Row], path: str | Path) -> Path:
    """Best fitness so far and mean fitness of each generation's population, in percent."""
    fig = _new_figure(width=6.5, height=4.0)
    ax = fig.subplots()
    generations = [row["epoch"] for row in rows]
    for key, label in (("best_fitness", "best so far"), ("mean_fitness", "population mean")):
        values = [100 * row[key] if row.get(key) is not None else float("nan") for row in rows]
        ax.plot(generations, values, marker="o", markersize=3, label=label)
    ax.set(title="Evolution: balanced validation accuracy", xlabel="generation", ylabel="fitness (%)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def evolution_rows(run_path: Path) -> list[Row]:
    path = run_path / "evolve" / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def imbnas_section(run, plots: set[str]) -> str:
    """IMB-NAS (Yao, 2024)'s section of report.md: procedure, evolution, cost per stage (`run`: RunFiles)."""
    rows, evaluation = evolution_rows(run.path), run.evaluation
    if not rows:
        return ""
    last = rows[-1]
    parts = ["## IMB-NAS"]
    if evaluation and evaluation.get("procedure"):
        supernet = evaluation.get("supernet") or {}
        parts.append(f"Procedure **{evaluation['procedure']}**; supernet `{supernet.get('file', MISSING)}` "
                     f"(trained on {supernet.get('data', MISSING)}, {supernet.get('classes', MISSING)} classes).")
    parts.append(
        f"Evolution: {len(rows)} generations, {last['evaluated']} distinct subnets scored; best balanced "
        f"validation accuracy {format_percent(last['best_fitness'])} "
        f"({format_params(last.get('best_params'))} parameters, {format_params(last.get('best_madds'))} "
        "multiply-adds when retrained); every candidate is in `evolve/candidates.jsonl`."
    )
    if "evolution" in plots:
        parts.append("![best and mean fitness per generation](plots/evolution.png)")
    cost = (evaluation or {}).get("cost")
    if cost:
        lines = ["| stage | wall time | images seen |", "|---|---:|---:|"]
        for stage, title in STAGE_TITLES.items():
            if stage in cost:
                lines.append(f"| {title} | {format_seconds(cost[stage]['seconds'])} | {cost[stage]['images']:,} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
