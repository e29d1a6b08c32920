"""The random-sampling part of a run report (`search.method: random`): how the cells were drawn."""

from __future__ import annotations

import json

from ltnas.report.summary import format_params


def random_section(run, plots: set[str]) -> str:
    """FairDARTS (Chu et al., 2020)'s Table 3 baseline in report.md, from search/sample.json (`run`: RunFiles);
    "" when the run folder has none."""
    path = run.path / "search" / "sample.json"
    if not path.is_file():
        return ""
    record = json.loads(path.read_text())
    settings, rejected, skips = record["settings"], record["rejected"], record["skip_counts"]
    rule = (f"{settings['skip_rule'].replace('_', ' ')} {settings['skips']} skip connections in "
            f"{'the normal cell' if settings['skip_cells'] == 'normal' else 'each cell'}")
    floor = (f" and at least {format_params(settings['min_madds'])} multiply-adds when retrained"
             if settings.get("min_madds") else "")
    return "\n\n".join([
        "## Random sampling",
        f"Nothing was searched: the cells were drawn at random (from the run's seed) until a draw had {rule}"
        f"{floor}. Draws: {record['draws']:,} ({rejected['skips']:,} rejected for their skip connections, "
        f"{rejected['madds']:,} under the multiply-add floor). The cells kept have {skips['normal']} skip "
        f"connections (normal) and {skips['reduce']} (reduction); the retrained network has "
        f"{format_params(record.get('madds'))} multiply-adds per image.",
    ])
