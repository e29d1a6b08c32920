"""Reports of a run: plots, the Markdown report and the terminal summary."""

from ltnas.report.markdown import write_report
from ltnas.report.plots import (
    plot_alpha_heatmap,
    plot_alpha_history,
    plot_confusion,
    plot_curves,
    plot_genotype,
    plot_mu_sweep,
    plot_per_class,
)
from ltnas.report.summary import print_summary, summary_rows

__all__ = [
    "plot_alpha_heatmap",
    "plot_alpha_history",
    "plot_confusion",
    "plot_curves",
    "plot_genotype",
    "plot_mu_sweep",
    "plot_per_class",
    "print_summary",
    "summary_rows",
    "write_report",
]
