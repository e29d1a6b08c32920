"""What each variant's searches ended with, for a comparison report: FairDARTS's dominant operations (σ > 0.75),
the skip connections of the derived normal cell, the epochs searched and why a search stopped early (search.cures);
and, when the variants sweep one numeric setting, the dominant operations against it (FairDARTS (Chu et al., 2020),
Fig. 8 right: dominant operations at the last search epoch against the zero-one loss weight w01)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ltnas.report.tables import format_mean_std, markdown_table, summarise

# FairDARTS's footnote: an operation is dominant when its sigmoid weight exceeds 0.75.
DOMINANT_SIGMA = 0.75


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def dominant_count(alpha_row: dict) -> int | None:
    """Operations with σ(α) > 0.75 over every panel of the row (both cell types, or S₂'s layers): FairDARTS's
    dominant operations. None for a row whose weights are not independent sigmoids (softmax weights of one edge
    compete and sum to 1, so the threshold means something else there)."""
    from ltnas.report.plots import weight_panels

    if alpha_row.get("relaxation") != "sigmoid" or alpha_row.get("weights", "σ(α)") != "σ(α)":
        return None
    return int(sum((np.asarray(alpha_row[key], dtype=float) > DOMINANT_SIGMA).sum()
                   for key, _ in weight_panels(alpha_row)))


def member_outcome(run: str | Path) -> dict[str, Any]:
    """One run folder's search outcome (None where the run has no such file)."""
    search = Path(run) / "search"
    alpha_rows = _jsonl(search / "alpha.jsonl")
    genotype_file, stop_file = search / "genotype.json", search / "stopped.json"
    genotype = json.loads(genotype_file.read_text()) if genotype_file.is_file() else {}
    stop = json.loads(stop_file.read_text()) if stop_file.is_file() else None
    normal = genotype.get("normal")
    return {
        "dominant_ops": dominant_count(alpha_rows[-1]) if alpha_rows else None,
        "normal_skips": sum(1 for edge in normal if edge[0] == "skip_connect") if isinstance(normal, list) else None,
        "search_epochs": len(_jsonl(search / "metrics.jsonl")) or None,
        "stopped": None if stop is None else f"{stop.get('rule')} at epoch {stop.get('epoch')}",
    }


def outcomes(members: Sequence[tuple[str, int, Path]]) -> dict[str, dict[str, Any]]:
    """variant → {dominant_ops, normal_skips, search_epochs: {mean, std, values}, stopped: [per seed]}."""

    rows: dict[str, list[dict]] = {}
    for variant, _seed, run in members:
        rows.setdefault(variant, []).append(member_outcome(run))
    return {variant: {**{key: summarise([row[key] for row in found])
                         for key in ("dominant_ops", "normal_skips", "search_epochs")},
                      "stopped": [row["stopped"] for row in found]}
            for variant, found in rows.items()}


def numeric_sweep(variants: dict[str, list[str]]) -> dict[str, Any] | None:
    """{key, values: variant → number} for the setting every variant (at least 3) sets to a different number (e.g.
    search.fairdarts.zero_one_weight = 0, 2, ..., 16), or None when the variants are no such sweep."""
    if len(variants) < 3:
        return None
    parsed = [dict(item.partition("=")[::2] for item in overrides) for overrides in variants.values()]
    for key in sorted(set.intersection(*(set(settings) for settings in parsed))):
        try:
            values = [float(settings[key]) for settings in parsed]
        except ValueError:
            continue
        if len(set(values)) == len(values):
            return {"key": key, "values": dict(zip(variants, values))}
    return None


def plot_dominant_sweep(sweep: dict[str, Any], search: dict[str, dict[str, Any]], path: str | Path) -> Path | None:
    """Dominant operations (σ > 0.75) at the last search epoch against the swept setting, mean over seeds with the
    sample std as error bars (FairDARTS, Fig. 8 right); None when no variant has a count."""
    from ltnas.report.plots import _new_figure, _save

    points = sorted((sweep["values"][variant], stats["dominant_ops"]["mean"], stats["dominant_ops"]["std"])
                    for variant, stats in search.items()
                    if variant in sweep["values"] and stats["dominant_ops"]["mean"] is not None)
    if not points:
        return None
    xs, means, stds = zip(*points)
    fig = _new_figure(width=5.6, height=4.0)
    ax = fig.subplots()
    spread = None if all(s is None for s in stds) else [0.0 if s is None else s for s in stds]
    ax.errorbar(xs, means, yerr=spread, marker="o", capsize=3)
    ax.set(xlabel=sweep["key"], ylabel=f"dominant operations (σ > {DOMINANT_SIGMA})",
           title="Dominant operations at the last search epoch")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def outcome_markdown(result: dict, plots: set[str]) -> str:
    """The "Search outcome" section of comparison.md: one row per variant, and the sweep's plot."""

    search = result.get("search") or {}
    if not any(stats["search_epochs"]["mean"] is not None for stats in search.values()):
        return ""
    sweep = result.get("sweep")
    header = ["variant", *([sweep["key"]] if sweep else []), f"dominant ops (σ > {DOMINANT_SIGMA})",
              "skips in normal cell", "search epochs", "stopped early"]
    rows = []
    for variant, stats in search.items():
        stopped = [stop for stop in stats["stopped"] if stop]
        rows.append([variant, *([f"{sweep['values'].get(variant, float('nan')):g}"] if sweep else []),
                     *(format_mean_std(stats[key], percent=False)
                       for key in ("dominant_ops", "normal_skips", "search_epochs")),
                     "; ".join(stopped) if stopped else "—"])
    parts = ["## Search outcome",
             "At the last search epoch, mean ± std over seeds: operations whose sigmoid weight exceeds 0.75 (FairDARTS's "
             "dominant operations; — for softmax searches), skip connections in the derived normal cell, and the "
             "epochs the search ran (fewer when an early-stopping rule of search.cures fired).",
             markdown_table(header, rows)]
    if "dominant_sweep" in plots:
        parts.append("![dominant operations against the swept setting](plots/dominant_sweep.png)")
    return "\n\n".join(parts)
