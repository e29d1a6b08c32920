"""How reports draw their figures, from the environment; a leaf module (no matplotlib), so that the CLI
can check the setting before a run starts rather than when its report is drawn at the end.

LTNAS_PLOTS=draft: every figure is built from all its data and written as a PNG, but at DRAFT_DPI, without
the constrained-layout pass, without ticks, tick labels, heatmap numbers or any other text (titles, axis labels,
legends, node names: built, but neither laid out nor rasterised; a pixel high at that size), with the per-edge α
trajectories on one panel per cell type instead of one per edge (the first edge's lines labelled, the others as
one line collection) and the cell drawings' arrows not clipped at the nodes: together over four fifths of a tiny
run's report time (text layout, tick placement and glyph rasterising, the 28 small axes, the clipping's bisection;
not drawing the remaining text took a draft report of a tiny run from ~0.9 to ~0.55 CPU s).
For test suites, which check what is drawn, not how it looks (the plot tests render at full quality), and
for quick throwaway runs. Unset or empty: full quality (DPI).
"""

from __future__ import annotations

import os

from ltnas.errors import LtnasError

PLOTS_ENV = "LTNAS_PLOTS"
DPI = 120
DRAFT_DPI = 10


def draft() -> bool:
    """True when LTNAS_PLOTS=draft; unset or empty: False; anything else: a one-line LtnasError."""
    value = os.environ.get(PLOTS_ENV, "").strip()
    if value not in ("", "draft"):
        raise LtnasError(f"environment variable {PLOTS_ENV}={value!r} is not 'draft'; set it to draft or unset it")
    return value == "draft"


def dpi() -> int:
    """Dots per inch of every report figure under the current setting."""
    return DRAFT_DPI if draft() else DPI
