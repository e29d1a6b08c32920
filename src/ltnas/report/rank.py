"""The report of `ltnas rank`: rank correlations between label distributions and a scatter of the ranks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ltnas.atomic import atomic_write_text
from ltnas.metrics import average_ranks
from ltnas.report.plots import _new_figure, _save

Row = dict[str, Any]


def rank_of(scores: list[float]) -> list[float]:
    """Rank 1 = the best score (ties share their mean rank)."""
    return [float(r) for r in average_ranks([-s for s in scores])]


def plot_rank_scatter(result: Row, path: str | Path) -> Path:
    """One panel per pair of distributions: each architecture at (its rank under a, its rank under b), with
    τ and ρ in the title; on the diagonal the ranks agree."""
    pairs = result["pairs"]
    columns = min(3, len(pairs))
    rows_needed = -(-len(pairs) // columns)
    fig = _new_figure(width=3.8 * columns, height=3.6 * rows_needed)
    axes = fig.subplots(rows_needed, columns, squeeze=False)
    n = len(result["paths"])
    for ax, pair in zip(axes.flat, pairs):
        a = rank_of(result["distributions"][pair["a"]]["scores"])
        b = rank_of(result["distributions"][pair["b"]]["scores"])
        ax.plot([1, n], [1, n], color="grey", linewidth=0.8, linestyle=":", zorder=1)
        ax.scatter(a, b, s=18, zorder=2)
        ax.set(xlabel=f"rank under {pair['a']}", ylabel=f"rank under {pair['b']}", xlim=(0.5, n + 0.5),
               ylim=(0.5, n + 0.5), title=f"τ = {_format(pair['kendall_tau'])}, ρ = {_format(pair['spearman_rho'])}")
        ax.invert_xaxis()
        ax.invert_yaxis()  # rank 1 (the best) at the top right
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(pairs):]:
        ax.set_visible(False)
    fig.suptitle(f"Ranks of {n} architectures under each label distribution")
    return _save(fig, path)


def rank_markdown(result: Row) -> str:
    lines = [
        "# Architecture ranks across label distributions",
        "",
        f"Architectures: {result['architectures']}. Each is scored as the evolution scores a candidate (inherited "
        "weights of a supernet trained on that distribution, BatchNorm recalibrated, balanced validation accuracy).",
        "",
        "| distribution | data | train images (largest / smallest class) | best score | mean score |",
        "|---|---|---|---|---|",
    ]
    for label, entry in result["distributions"].items():
        counts, scores = entry["train_counts"], entry["scores"]
        data = ", ".join(f"{k}={v}" for k, v in entry["data"].items())
        lines.append(f"| {label} | {data} | {sum(counts)} ({max(counts)} / {min(counts)}) | "
                     f"{100 * max(scores):.1f}% | {100 * sum(scores) / len(scores):.1f}% |")
    lines += ["", "| pair | Kendall τ | Spearman ρ |", "|---|---|---|"]
    for pair in result["pairs"]:
        lines.append(f"| {pair['a']} vs {pair['b']} | {_format(pair['kendall_tau'])} | "
                     f"{_format(pair['spearman_rho'])} |")
    lines += ["", "τ or ρ near 1: the ranking carries over; near 0: it does not (IMB-NAS's claim for balanced vs "
              "long-tailed). One seed: repeat with other seeds before reading a difference.", "",
              "![ranks](plots/rank_scatter.png)", ""]
    return "\n".join(lines)


def write_rank_report(result: Row, folder: Path) -> Path:
    plot_rank_scatter(result, folder / "plots" / "rank_scatter.png")
    atomic_write_text(rank_markdown(result), folder / "rank.md")
    return folder / "rank.md"


def _format(value: float | None) -> str:
    return "n/a (all tied)" if value is None else f"{value:+.3f}"
