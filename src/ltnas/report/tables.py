"""Statistics over seeds and the tables that show them, shared by the comparison and search-outcome reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def summarise(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean and sample std over the seeds that have the value; one seed has no spread (std None)."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return {"mean": None, "std": None, "values": list(values)}
    std = float(np.std(present, ddof=1)) if len(present) > 1 else None
    return {"mean": float(np.mean(present)), "std": std, "values": list(values)}


def format_mean_std(stat: dict[str, Any], percent: bool = True) -> str:
    """"mean ± std" of a `summarise` result (×100 when `percent`), "mean" for one seed, "—" for none."""
    if stat.get("mean") is None:
        return "—"
    scale = 100.0 if percent else 1.0
    mean = stat["mean"] * scale
    return f"{mean:.2f} ± {stat['std'] * scale:.2f}" if stat.get("std") is not None else f"{mean:.2f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
