"""The figures of a run report: training curves, architecture weights, per-class results, cells.

Every function takes plain data (rows read from the run folder, metric dicts, a genotype dict) and
an output path, writes one PNG and returns the path. Figures are built on `matplotlib.figure.Figure`
with an Agg canvas, never through pyplot, so no global figure state exists to leak between plots or
into a user's interactive session, and nothing needs a display.
"""

from __future__ import annotations

import math
import shutil
import textwrap
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.patches import Circle
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator, NullLocator

from ltnas.plot_settings import draft, dpi
from ltnas.space.genotype import node_name as genotype_node_name
from ltnas.metrics import shot_groups
from ltnas.report.naming import name_of_test_set

CELL_TYPES: tuple[tuple[str, str], ...] = (
    ("normal", "Normal cell"), ("reduce", "Reduction cell"),
    # the heads of a two-branch (BBN) search, beside its backbone's normal and reduction cells
    ("head_instance", "Instance-sampling head cell"), ("head_balanced", "Class-balanced head cell"),
)
# Relaxed weights of a chain of layers (FairDARTS' S₂, ltnas/space/mobile.py): one row per layer, not per edge.
LAYER_PANELS: tuple[tuple[str, str], ...] = (("layers", "S₂ layers"),)
GROUP_COLOURS = {"many": "#dbe9f6", "medium": "#fdebd0", "few": "#f9d6d5"}
# Past this many classes, per-class tick labels and cell annotations turn into an unreadable smear.
MAX_LABELLED_CLASSES = 40
MAX_ANNOTATED_CLASSES = 15
MAX_ANNOTATED_CELLS = 200  # α heatmaps: the DARTS space's 14 edges × 8 operations still get numbers

Row = dict[str, Any]


# ----------------------------------------------------------------------------------------- curves


def plot_curves(search_rows: Sequence[Row] | None, train_rows: Sequence[Row] | None, path: str | Path) -> Path:
    """Loss (left) and accuracy (right) against epoch, one row per phase present (search, retrain)."""
    phases = [
        (title, rows, losses, accuracies)
        for title, rows, losses, accuracies in (
            ("Search", search_rows, ("train_loss", "val_loss"), ("train_acc", "val_acc", "val_balanced_acc")),
            # val_*: held out of the training set; test_*: older runs, which monitored the test set
            ("Retrain", train_rows, ("train_loss", "val_loss", "test_loss"),
             ("train_acc", "val_acc", "val_balanced_acc", "test_acc", "test_balanced_acc")),
        )
        if rows
    ]
    if not phases:
        raise ValueError("plot_curves needs search rows or train rows; both are empty")
    fig = _new_figure(width=11.0, height=4.2 * len(phases))
    axes = fig.subplots(len(phases), 2, squeeze=False)
    for (loss_axes, accuracy_axes), (title, rows, losses, accuracies) in zip(axes, phases):
        _plot_series(loss_axes, rows, losses, scale=1.0)
        _plot_series(accuracy_axes, rows, accuracies, scale=100.0)  # fractions, shown as percentages
        loss_axes.set(title=f"{title}: loss", xlabel="epoch", ylabel="loss")
        accuracy_axes.set(title=f"{title}: accuracy", xlabel="epoch", ylabel="accuracy (%)")
    return _save(fig, path)


def _plot_series(ax: Axes, rows: Sequence[Row], keys: Iterable[str], scale: float) -> None:
    """One line per key that any row has; epochs come from the rows (1-based index if absent)."""
    epochs = [row.get("epoch", index + 1) for index, row in enumerate(rows)]
    plotted = False
    for key in keys:
        values = [_float_or_nan(row.get(key)) * scale for row in rows]
        if all(math.isnan(v) for v in values):
            continue
        ax.plot(epochs, values, marker="o" if len(rows) <= 30 else None, markersize=3, label=_pretty(key))
        plotted = True
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if plotted:
        ax.legend(fontsize="small")
    else:
        _say_nothing(ax, "not recorded")


# ------------------------------------------------------------------------------------------ alpha


def edge_labels(num_edges: int) -> list[str]:
    """Names of a cell's edges in α row order (node j, from 2 on, has edges from nodes 0..j-1), written
    `to ← from` in the one node naming (`node_name`): 0←c_{k-2}, 0←c_{k-1}, 1←c_{k-2}, ..."""
    labels: list[str] = []
    node = 2
    while len(labels) < num_edges:
        labels.extend(f"{node_name(node)}←{node_name(source)}" for source in range(node))
        node += 1
    if len(labels) != num_edges:
        raise ValueError(f"{num_edges} α rows do not fill whole nodes (2, 5, 9, 14, 20, ... edges do)")
    return labels


def weight_panels(row: Row) -> list[tuple[str, str]]:
    """(key, title) of every panel of relaxed weights an α row holds: cell types, or S₂'s layers."""
    return [(key, title) for key, title in (*CELL_TYPES, *LAYER_PANELS) if key in row]


def row_labels(key: str, rows: int) -> list[str]:
    """Heatmap row labels: edges (to ← from) of a cell, or layer numbers of a chain of layers."""
    return [f"layer {i}" for i in range(rows)] if key in dict(LAYER_PANELS) else edge_labels(rows)


def weights_symbol(alpha_row: Row) -> str:
    """What an alpha.jsonl row's weights are ("softmax(α)", "σ(α)", PC-DARTS's "softmax(α)·β̂"); rows logged
    before they said so: σ(α) for the sigmoid relaxation, softmax(α) otherwise."""
    return alpha_row.get("weights") or ("σ(α)" if alpha_row.get("relaxation") == "sigmoid" else "softmax(α)")


def plot_alpha_heatmap(alpha_row: Row, path: str | Path) -> Path:
    """Heatmaps of the relaxed weights of one epoch: edges (or S₂ layers) × primitives, one panel per cell type
    (a layer's absent candidate, S₂'s skip where the shapes change, shows as 0)."""
    primitives = list(alpha_row["primitives"])
    cells = [(key, title, np.asarray(alpha_row[key], dtype=float)) for key, title in weight_panels(alpha_row)]
    if not cells:
        raise ValueError("the α row has neither 'normal' nor 'reduce' weights")
    num_edges = max(weights.shape[0] for _, _, weights in cells)
    panel_width = 1.5 + 0.55 * len(primitives)
    fig = _new_figure(width=panel_width * len(cells) + 1.2, height=2.2 + 0.34 * num_edges)
    axes = fig.subplots(1, len(cells), squeeze=False)[0]
    # One colour scale for both cells, so that equal colours mean equal weights across the panels.
    vmax = max(float(weights.max()) for _, _, weights in cells)
    for ax, (key, title, weights) in zip(axes, cells):
        image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(primitives)), primitives, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(weights.shape[0]), row_labels(key, weights.shape[0]))
        ax.set(title=title, xlabel="operation", ylabel="layer" if key in dict(LAYER_PANELS) else "edge (to ← from)")
        if weights.size <= MAX_ANNOTATED_CELLS:
            _annotate_cells(ax, image, weights, fmt="{:.2f}")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label=f"relaxed weight {weights_symbol(alpha_row)}")
    epoch = alpha_row.get("epoch")
    fig.suptitle("Architecture weights" + (f" after epoch {epoch}" if epoch is not None else ""))
    return _save(fig, path)


def plot_alpha_history(alpha_rows: Sequence[Row], path: str | Path) -> Path:
    """Mean relaxed weight of each primitive over a cell's edges, against epoch."""
    if not alpha_rows:
        raise ValueError("plot_alpha_history needs at least one α row")
    primitives = list(alpha_rows[-1]["primitives"])
    epochs = [row.get("epoch", index + 1) for index, row in enumerate(alpha_rows)]
    cells = weight_panels(alpha_rows[-1])
    fig = _new_figure(width=5.5 * len(cells), height=4.8)
    axes = fig.subplots(1, len(cells), squeeze=False, sharey=True)[0]
    colours = _primitive_colours(len(primitives))
    for ax, (key, title) in zip(axes, cells):
        means = np.array([np.asarray(row[key], dtype=float).mean(axis=0) for row in alpha_rows])
        for index, primitive in enumerate(primitives):
            ax.plot(epochs, means[:, index], color=colours[index], label=primitive, linewidth=1.8)
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"mean {weights_symbol(alpha_rows[-1])} over edges")
    # One legend for the figure: the colours are the same in every panel.
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(4, len(primitives)))
    fig.suptitle("Architecture weights during search")
    return _save(fig, path)


def plot_weight_histogram(alpha_row: Row, path: str | Path, bins: int = 20) -> Path:
    """Histogram of every relaxed weight at one epoch, one panel per cell type (FairDARTS Fig. 8).

    With the zero-one loss, σ(α) piles up near 0 and 1; the share within 0.1 of either end is shown.
    """
    cells = [(title, np.asarray(alpha_row[key], dtype=float)) for key, title in weight_panels(alpha_row)]
    if not cells:
        raise ValueError("the α row has neither 'normal' nor 'reduce' weights")
    symbol = weights_symbol(alpha_row)
    fig = _new_figure(width=4.6 * len(cells), height=3.8)
    axes = fig.subplots(1, len(cells), squeeze=False, sharey=True)[0]
    for ax, (title, weights) in zip(axes, cells):
        values = weights.flatten()
        ax.hist(values, bins=bins, range=(0.0, 1.0), color="#4c72b0", edgecolor="white")
        ax.set(title=f"{title}: {polarised_fraction(values):.0%} within 0.1 of 0 or 1", xlabel=symbol, xlim=(0, 1))
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("operations (edges × primitives)")
    epoch = alpha_row.get("epoch")
    fig.suptitle(f"Distribution of {symbol}" + (f" after epoch {epoch}" if epoch is not None else ""))
    return _save(fig, path)


def polarised_fraction(weights: Any, margin: float = 0.1) -> float:
    """Share of weights within `margin` of 0 or 1: how decided the relaxed architecture is."""
    values = np.asarray(weights, dtype=float).flatten()
    return float(np.mean((values <= margin) | (values >= 1 - margin))) if values.size else float("nan")


def dominant_operations(alpha_row: Row, cell: str, inputs_per_node: int = 2,
                        threshold: float | None = None) -> list[str]:
    """The cell's dominant operations, in edge order. `threshold` None (DARTS's reading, FairDARTS Sec. 3.1): per
    intermediate node, the strongest non-`none` operations of its `inputs_per_node` strongest incoming edges,
    i.e. what the DARTS derivation would keep at this epoch (8 for the DARTS cell); for S₂'s layers, per layer
    the operation of highest weight (FairDARTS Sec. 3.2, Fig. 1). `threshold` t (FairDARTS' footnote 5, σ > 0.75):
    every non-`none` operation of every edge (or layer) whose weight exceeds t, however many that is."""
    primitives = list(alpha_row["primitives"])
    weights = np.asarray(alpha_row[cell], dtype=float).copy()
    if "none" in primitives:
        weights[:, primitives.index("none")] = -np.inf
    if threshold is not None:
        return [primitives[op] for edge in weights for op in np.flatnonzero(edge > threshold)]
    if cell in dict(LAYER_PANELS):
        return [primitives[i] for i in weights.argmax(axis=1)]
    best_op, best_weight = weights.argmax(axis=1), weights.max(axis=1)
    dominant, start, node_inputs = [], 0, 2
    while start < len(weights):
        edges = range(start, min(start + node_inputs, len(weights)))
        strongest = sorted(edges, key=lambda edge: -best_weight[edge])[:inputs_per_node]
        dominant += [primitives[best_op[edge]] for edge in sorted(strongest)]
        start += node_inputs
        node_inputs += 1
    return dominant


def dominant_rule(threshold: float | None, layers: bool = False) -> str:
    """The dominant-operation rule in words, for titles and captions."""
    if threshold is not None:
        return f"weight > {threshold:g}"
    return "highest weight per layer" if layers else "2 strongest inputs per node"


def plot_dominant_operations(alpha_rows: Sequence[Row], path: str | Path, threshold: float | None = None) -> Path:
    """Per epoch: how many of the dominant operations each primitive holds (stacked areas, one panel
    per cell type; FairDARTS Fig. 1) and the number of dominant skip connections (DARTS' collapse,
    FairDARTS Fig. 2); dominant as the method defines it (`dominant_operations`' `threshold`)."""
    if not alpha_rows:
        raise ValueError("plot_dominant_operations needs at least one α row")
    primitives = [p for p in alpha_rows[-1]["primitives"] if p != "none"]
    colours = dict(zip(alpha_rows[-1]["primitives"], _primitive_colours(len(alpha_rows[-1]["primitives"]))))
    epochs = [row.get("epoch", index + 1) for index, row in enumerate(alpha_rows)]
    cells = weight_panels(alpha_rows[-1])
    layers = all(key in dict(LAYER_PANELS) for key, _ in cells)
    fig = _new_figure(width=4.8 * (len(cells) + 1), height=4.6)
    axes = fig.subplots(1, len(cells) + 1, squeeze=False)[0]
    skips = {}
    for ax, (key, title) in zip(axes, cells):
        dominant = [dominant_operations(row, key, threshold=threshold) for row in alpha_rows]
        counts = np.array([[ops.count(p) for ops in dominant] for p in primitives])
        ax.stackplot(epochs, counts, labels=primitives, colors=[colours[p] for p in primitives])
        ax.set(title=title, xlabel="epoch", ylabel="dominant operations", xlim=(epochs[0], epochs[-1]) if len(epochs) > 1 else None)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        skips[title] = [ops.count("skip_connect") for ops in dominant]
    skip_ax = axes[-1]
    for title, series in skips.items():
        skip_ax.plot(epochs, series, marker="o", markersize=3, label=title)
    skip_ax.set(title="Dominant skip connections", xlabel="epoch", ylabel="skip connections")
    skip_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    skip_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    skip_ax.set_ylim(bottom=0)
    skip_ax.grid(alpha=0.3)
    skip_ax.legend(fontsize="small")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(7, len(primitives)),
               fontsize="small")
    fig.suptitle(f"Dominant operations during search ({dominant_rule(threshold, layers)})")
    return _save(fig, path)


def plot_edge_trajectories(alpha_rows: Sequence[Row], path: str | Path, columns: int = 7) -> Path:
    """One small panel per edge of every cell type (per layer in S₂), one line per operation: its relaxed weight
    against epoch, so a reader sees on which edges skip connections overtake their competitors and when
    (FairDARTS Fig. 3), not only the mean over edges (`plot_alpha_history`)."""
    if not alpha_rows:
        raise ValueError("plot_edge_trajectories needs at least one α row")
    primitives = list(alpha_rows[-1]["primitives"])
    colours = _primitive_colours(len(primitives))
    epochs = [row.get("epoch", index + 1) for index, row in enumerate(alpha_rows)]
    blocks = [(key, title, np.asarray([row[key] for row in alpha_rows], dtype=float))
              for key, title in weight_panels(alpha_rows[-1]) if all(key in row for row in alpha_rows)]
    if not blocks:
        raise ValueError("the α rows share no cell type or layer weights")
    # LTNAS_PLOTS=draft: one panel per cell type with every edge's lines (28 small axes were half a draft report)
    per_edge = not draft()
    block_rows = [math.ceil(weights.shape[1] / columns) if per_edge else 1 for _, _, weights in blocks]
    columns = columns if per_edge else 1
    # No constrained layout: with dozens of panels it costs more than the drawing.
    fig = Figure(figsize=(1.9 * max(columns, 4), 1.45 * sum(block_rows) + 1.2), dpi=dpi())
    FigureCanvasAgg(fig)
    axes = fig.subplots(sum(block_rows), columns, squeeze=False, sharex=True, sharey=True)
    for ax in axes.flat:
        ax.set_visible(False)
    first_row = 0
    for (key, title, weights), rows in zip(blocks, block_rows):
        labels = row_labels(key, weights.shape[1])
        for edge in range(weights.shape[1] if per_edge else 1):
            ax = axes[first_row + edge // columns, edge % columns]
            ax.set_visible(True)
            for op, primitive in enumerate(primitives):
                ax.plot(epochs, weights[:, edge, op], color=colours[op], linewidth=1.0, label=primitive)
            ax.set_title(f"{title}: {labels[edge] if per_edge else 'every edge'}", fontsize=7)
            ax.tick_params(labelsize=6)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
            ax.grid(alpha=0.3)
        if not per_edge and weights.shape[1] > 1:  # the other edges' lines on the same panel, as one artist
            ax = axes[first_row, 0]
            others = weights[:, 1:, :].transpose(1, 2, 0).reshape(-1, len(epochs))  # (edge, op) × epoch
            ax.add_collection(LineCollection([np.column_stack([epochs, line]) for line in others], linewidths=1.0,
                                             colors=colours * (weights.shape[1] - 1)))
            ax.autoscale_view()
        first_row += rows
    handles, names = next(ax for ax in axes.flat if ax.get_visible()).get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncols=min(8, len(primitives)), fontsize="small")
    fig.suptitle(f"{weights_symbol(alpha_rows[-1])} of every operation on every edge, per epoch")
    fig.subplots_adjust(left=0.04, right=0.99, top=1 - 0.5 / fig.get_figheight(), bottom=0.9 / fig.get_figheight(),
                        hspace=0.55, wspace=0.12)
    return _save(fig, path)


def _primitive_colours(count: int) -> list[tuple[float, float, float, float]]:
    palette = colormaps["tab10"]
    return [palette(index % palette.N) for index in range(count)]


# -------------------------------------------------------------------------------------- per class


def plot_per_class(
    metrics_balanced: Row,
    metrics_longtail: Row | None,
    train_counts: Sequence[int],
    class_names: Sequence[str],
    path: str | Path,
) -> Path:
    """Per-class recall as bars, classes sorted by training count, the count on a log axis beside.

    The shot groups (many / medium / few) are shaded, so the tail's drop is visible at a glance.
    """
    # A stable sort keeps the dataset order among classes of equal size.
    order = sorted(range(len(train_counts)), key=lambda c: -train_counts[c])
    positions = np.arange(len(order))
    test_sets = [(name_of_test_set(metrics_balanced), metrics_balanced, "#1f77b4")]
    if metrics_longtail is not None:
        test_sets.append(("long-tailed test", metrics_longtail, "#ff7f0e"))
    bar_width = 0.8 / len(test_sets)

    fig = _new_figure(width=min(16.0, max(8.0, 0.32 * len(order) * len(test_sets) + 3)), height=5.2)
    ax = fig.subplots()
    _shade_shot_groups(ax, [train_counts[c] for c in order], metric_thresholds(metrics_balanced))
    for index, (label, metrics, colour) in enumerate(test_sets):
        recalls = [_float_or_nan(metrics["per_class"][c]) * 100 for c in order]
        offset = (index - (len(test_sets) - 1) / 2) * bar_width
        ax.bar(positions + offset, recalls, bar_width, label=f"{label} recall", color=colour, zorder=2)
        # Without a mark, a class with no test images would look like one with 0 % recall.
        for position, recall in zip(positions + offset, recalls):
            if math.isnan(recall):
                ax.text(position, 1, "n/a", ha="center", va="bottom", rotation=90, fontsize=7, color="grey")
    # Headroom above 100 % for the group names; ticks stop at 100 so the scale still reads as recall.
    ax.set(ylim=(0, 112), yticks=range(0, 101, 20), xlim=(-0.6, len(order) - 0.4),
           ylabel="recall (%)", xlabel="class, by training-set size")
    _class_ticks(ax, [class_names[c] for c in order])

    counts_axis = ax.twinx()
    counts_axis.plot(positions, [train_counts[c] for c in order], color="black", marker="o", markersize=3,
                     linewidth=1.2, label="training images")
    counts_axis.set_yscale("log")
    counts_axis.set_ylabel("training images (log scale)")

    handles = ax.get_legend_handles_labels()[0] + counts_axis.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    ax.set_title("Per-class accuracy against training-set size")
    return _save(fig, path)


def metric_thresholds(metrics: Row | None) -> tuple[int, int]:
    """(many, few) with which `metrics` were computed; CIFAR's 100 / 20 for metrics from before they
    were recorded."""
    recorded = (metrics or {}).get("shot_thresholds")
    return (recorded["many"], recorded["few"]) if recorded else (100, 20)


def _shade_shot_groups(ax: Axes, sorted_counts: Sequence[int], thresholds: tuple[int, int] | None = None) -> None:
    """Shade the contiguous many / medium / few runs of classes (counts sorted descending)."""
    groups = shot_groups(list(sorted_counts), *(thresholds or (None, None)))
    for name, members in groups.items():
        if not members:
            continue
        start, end = min(members) - 0.5, max(members) + 0.5
        ax.axvspan(start, end, color=GROUP_COLOURS[name], zorder=0)
        ax.text((start + end) / 2, 106, f"{name}-shot", ha="center", va="center", fontsize="small", zorder=3)


def _class_ticks(ax: Axes, names: Sequence[str]) -> None:
    if len(names) <= MAX_LABELLED_CLASSES:
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", rotation_mode="anchor")
    else:
        # Too many names to read: label every k-th position with its rank instead.
        step = math.ceil(len(names) / MAX_LABELLED_CLASSES)
        ax.set_xticks(range(0, len(names), step))


# -------------------------------------------------------------------------------------- confusion


def plot_confusion(confusion: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path,
                   title: str = "Confusion matrix") -> Path:
    """Row-normalised confusion matrix: row = true class, so the diagonal is each class's recall."""
    counts = np.asarray(confusion, dtype=float)
    support = counts.sum(axis=1, keepdims=True)
    # A class absent from the test set keeps an all-zero row instead of a row of NaNs.
    rates = np.divide(counts, support, out=np.zeros_like(counts), where=support > 0)
    size = min(14.0, max(5.5, 0.45 * len(class_names) + 2.5))
    fig = _new_figure(width=size + 1.2, height=size)
    ax = fig.subplots()
    image = ax.imshow(rates * 100, cmap="Blues", vmin=0, vmax=100)
    if len(class_names) <= MAX_LABELLED_CLASSES:
        ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", rotation_mode="anchor")
        # The number of test images per row tells how much a long-tailed row's percentages are worth.
        ax.set_yticks(range(len(class_names)), [f"{name} ({int(n)})" for name, n in zip(class_names, support[:, 0])])
    if len(class_names) <= MAX_ANNOTATED_CLASSES:
        _annotate_cells(ax, image, rates * 100, fmt="{:.0f}", skip_zero=True)
    ax.set(title=f"{title} (row-normalised)", xlabel="predicted class", ylabel="true class (test images)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="% of the true class")
    return _save(fig, path)


# --------------------------------------------------------------------- predictions and shot groups


def plot_predicted_histogram(metrics: Row, train_counts: Sequence[int], class_names: Sequence[str],
                             path: str | Path, title: str = "Predicted classes, balanced test") -> Path:
    """How often each class is predicted beside how many test images it has, classes sorted by
    training-set size: head classes that absorb the tail's predictions stand above their test count."""
    order = sorted(range(len(train_counts)), key=lambda c: -train_counts[c])
    predicted = [metrics["predicted_counts"][c] for c in order]
    support = [metrics["support"][c] for c in order]
    positions = np.arange(len(order))
    fig = _new_figure(width=min(16.0, max(8.0, 0.4 * len(order) + 3)), height=4.8)
    ax = fig.subplots()
    _shade_shot_groups(ax, [train_counts[c] for c in order], metric_thresholds(metrics))
    ax.bar(positions - 0.2, support, 0.4, label="test images (true class)", color="#7f7f7f", zorder=2)
    ax.bar(positions + 0.2, predicted, 0.4, label="predicted as this class", color="#d62728", zorder=2)
    top = max([*support, *predicted, 1])
    ax.set(ylim=(0, top * 1.2), xlim=(-0.6, len(order) - 0.4), ylabel="images", title=title,
           xlabel="class, by training-set size")
    for text in ax.texts:  # the shot-group names, above the bars
        text.set_y(top * 1.12)
    _class_ticks(ax, [class_names[c] for c in order])
    fig.legend(loc="outside lower center", ncols=2, fontsize="small")
    return _save(fig, path)


SHOT_KEYS = (("many", "#1f77b4"), ("medium", "#ff7f0e"), ("few", "#d62728"))


def plot_shot_group_history(search_rows: Sequence[Row] | None, train_rows: Sequence[Row] | None,
                            path: str | Path) -> Path:
    """Validation accuracy of the many / medium / few-shot classes against epoch, for the search and
    for retraining (rows with val_<group>_acc)."""
    phases = [(title, rows) for title, rows in (("Search", search_rows), ("Retrain", train_rows))
              if rows and any(row.get("val_few_acc") is not None or row.get("val_many_acc") is not None
                              for row in rows)]
    if not phases:
        raise ValueError("plot_shot_group_history needs rows with val_many_acc / val_medium_acc / val_few_acc")
    fig = _new_figure(width=5.5 * len(phases), height=4.2)
    axes = fig.subplots(1, len(phases), squeeze=False)[0]
    for ax, (title, rows) in zip(axes, phases):
        _plot_series(ax, rows, [f"val_{group}_acc" for group, _ in SHOT_KEYS], scale=100.0)
        ax.set(title=f"{title}: validation accuracy by shot group", xlabel="epoch", ylabel="accuracy (%)",
               ylim=(0, 105))
    return _save(fig, path)


def plot_misclassified(images: Any, true: Sequence[int], predicted: Sequence[int], class_names: Sequence[str],
                       path: str | Path, columns: int = 8) -> Path:
    """A grid of misclassified test images (uint8 N×C×H×W), each titled `true → predicted`: one mosaic in
    one axes (`image_mosaic`; an axes per image cost ~7× the drawing time)."""
    images = np.asarray(images)
    columns = max(1, min(columns, len(images)))
    mosaic, corners = image_mosaic(images, columns)
    fig = _new_figure(width=1.5 * columns + 0.4, height=1.6 * math.ceil(len(images) / columns) + 0.6)
    ax = fig.add_subplot()
    width = images.shape[3]
    for index, (top, left) in enumerate(corners):
        ax.text(left + width / 2 - 0.5, top - 0.5, f"{class_names[true[index]]} → {class_names[predicted[index]]}",
                ha="center", va="bottom", fontsize=7)
    ax.imshow(mosaic, cmap="gray" if mosaic.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    fig.suptitle("Misclassified test images (true → predicted), rarest training classes first", fontsize="small")
    return _save(fig, path)


def image_mosaic(images: np.ndarray, columns: int = 8) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """uint8 images N×C×H×W (C = 1 or ≥ 3) laid out row by row, `columns` to a row, on white: each in a cell of
    (H + H/6 + max(2, H/3)) × (W + W/6) pixels, the image at the cell's bottom left, the room above it for a
    title. Returns the H'×W' (grey) or H'×W'×3 mosaic and each image's (top, left) pixel."""
    count, channels, height, width = images.shape
    columns = max(1, min(columns, count))
    rows = max(1, math.ceil(count / columns))
    label_room = max(2, height // 3)
    cell_h, cell_w = height + max(1, height // 6) + label_room, width + max(1, width // 6)
    grey = channels == 1
    mosaic = np.full((rows * cell_h, columns * cell_w) + (() if grey else (3,)), 255, dtype=np.uint8)
    corners = []
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = row * cell_h + label_room, column * cell_w
        image = images[index].transpose(1, 2, 0)
        mosaic[top:top + height, left:left + width] = image[:, :, 0] if grey else image[:, :, :3]
        corners.append((top, left))
    return mosaic, corners


# --------------------------------------------------------------------------------------- genotype

Node = int | str  # 0, 1 = cell inputs; 2.. = intermediate nodes; OUTPUT = the concatenated output
Point = tuple[float, float]
OUTPUT = "output"
NODE_RADIUS = 0.42
LAYER_GAP = 4.0
ROW_GAP = 1.5
# Bends tried for an edge, straightest first; the first whose curve clears every other node wins.
BENDS = (0.0, 0.15, 0.3, 0.45, 0.6, 0.8)
LABEL_AT = 0.65  # edge labels sit past the middle, so that labels of two crossing edges do not collide


def node_name(node: int, math_text: bool = False) -> str:
    """`ltnas.space.genotype.node_name` (inputs c_{k-2}, c_{k-1}; intermediate nodes from 0), optionally as
    matplotlib math text."""
    name = genotype_node_name(node)
    return f"${name}$" if math_text and node < 2 else name


@dataclass
class _CellDrawing:
    """Where everything of one cell goes: node positions and edges as (source, target, op | None, bend)."""

    positions: dict[Node, Point]
    edges: list[tuple[Node, Node, str | None, float]]
    dropped: set[int]

    def extent(self) -> tuple[float, float, float, float]:
        """(x min, x max, y min, y max) of the nodes and every edge's curve."""
        points = [np.array(list(self.positions.values()))]
        points += [_curve(self.positions[s], self.positions[t], bend) for s, t, _, bend in self.edges]
        stacked = np.vstack(points)
        (x_min, y_min), (x_max, y_max) = stacked.min(axis=0), stacked.max(axis=0)
        margin = NODE_RADIUS + 0.3
        return x_min - margin, x_max + margin, y_min - margin, y_max + margin


def genotype_dot(genotype: Row) -> str:
    """Graphviz DOT source of the normal and reduction cells (one cluster each), the DARTS style."""
    lines = ["digraph genotype {", "  rankdir=LR; node [shape=box, style=filled, fontname=helvetica];",
             "  edge [fontname=helvetica, fontsize=10];"]
    for key, title in CELL_TYPES:
        if key not in genotype:
            continue
        lines += [f"  subgraph cluster_{key} {{", f'    label="{title}";']
        edges = [(str(op), int(to_node), int(from_node)) for op, to_node, from_node in genotype[key]]
        concat = genotype.get(f"{key}_concat") or sorted({to_node for _, to_node, _ in edges})
        nodes = sorted({0, 1, *(t for _, t, _ in edges), *(f for _, _, f in edges), *concat})
        for node in nodes:
            colour = "darkseagreen2" if node < 2 else "lightblue"
            lines.append(f'    {key}_{node} [label="{node_name(node)}", fillcolor={colour}];')
        lines.append(f'    {key}_out [label="c_{{k}}", fillcolor=palegoldenrod];')
        lines += [f'    {key}_{f} -> {key}_{t} [label="{op}"];' for op, t, f in edges]
        lines += [f"    {key}_{node} -> {key}_out [color=grey];" for node in concat]
        lines.append("  }")
    return "\n".join(lines + ["}"]) + "\n"


def plot_genotype(genotype: Row, path: str | Path) -> Path:
    """Draw the normal and reduction cells: with graphviz's `dot` when it is installed, otherwise
    as layered matplotlib graphs (inputs left, output right)."""
    if shutil.which("dot"):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["dot", "-Tpng", "-Gdpi=120", "-o", str(path)], input=genotype_dot(genotype),
                              text=True, capture_output=True)
        if done.returncode == 0:
            return path
    return plot_genotype_matplotlib(genotype, path)


def plot_genotype_matplotlib(genotype: Row, path: str | Path) -> Path:
    """Draw the normal and reduction cells as layered graphs: inputs left, output right."""
    cells = [(title, _plan_cell(genotype[key], genotype.get(f"{key}_concat")))
             for key, title in CELL_TYPES if key in genotype]
    extents = [drawing.extent() for _, drawing in cells]
    width = max(x_max - x_min for x_min, x_max, _, _ in extents)
    heights = [y_max - y_min for _, _, y_min, y_max in extents]
    scale = min(1.0, 15.0 / width)  # inches per unit, shrunk so that wide cells still fit on a page
    fig = _new_figure(width=scale * width + 0.5, height=scale * sum(heights) + 0.6 * len(cells))
    axes = fig.subplots(len(cells), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, (title, drawing), (x_min, x_max, y_min, y_max) in zip(axes, cells, extents):
        _draw_cell(ax, drawing)
        ax.set(xlim=(x_min, x_max), ylim=(y_min, y_max), aspect="equal", title=title)
        ax.axis("off")
    return _save(fig, path)


def _plan_cell(edges: Sequence[Sequence[Any]], concat: Sequence[int] | None) -> _CellDrawing:
    sources: dict[int, list[int]] = {}
    for _, to_node, from_node in edges:
        sources.setdefault(int(to_node), []).append(int(from_node))
    concat = [int(node) for node in concat] if concat is not None else sorted(sources)
    last = max([*sources, *concat, *(int(from_node) for _, _, from_node in edges), 1])
    # FairDARTS's threshold derivation can leave a node with no input: draw it greyed out rather than hide it.
    dropped = {node for node in range(2, last + 1) if node not in sources}
    positions = _layered_positions(sources, last)
    labelled = [(int(from_node), int(to_node), str(op)) for op, to_node, from_node in edges]
    to_output = [(node, OUTPUT, None) for node in concat if node in positions]
    planned = [(s, t, label, _least_bend(positions, s, t)) for s, t, label in labelled + to_output]
    return _CellDrawing(positions, planned, dropped)


def _layered_positions(sources: dict[int, list[int]], last: int) -> dict[Node, Point]:
    """Column = depth (longest path from the inputs); rows spread evenly, centred on y = 0."""
    depth: dict[Node, int] = {0: 0, 1: 0}
    for node in range(2, last + 1):  # edges point from lower to higher nodes, so one pass suffices
        depth[node] = 1 + max((depth[s] for s in sources.get(node, [])), default=0)
    depth[OUTPUT] = max(depth.values()) + 1
    layers: dict[int, list[Node]] = {}
    for node, layer in depth.items():
        layers.setdefault(layer, []).append(node)
    return {
        node: (layer * LAYER_GAP, ((len(members) - 1) / 2 - row) * ROW_GAP)
        for layer, members in layers.items()
        for row, node in enumerate(members)
    }


def _least_bend(positions: dict[Node, Point], source: Node, target: Node) -> float:
    """The smallest arc3 `rad` whose curve from source to target passes clear of every other node."""
    start, end = positions[source], positions[target]
    others = np.array([xy for node, xy in positions.items() if node not in (source, target)])
    if not others.size:
        return 0.0
    # Prefer bowing away from the middle row (up in the upper half); arc3's rad > 0 bends a
    # left-to-right edge downwards.
    outward = -1.0 if (start[1] + end[1]) / 2 >= 0 else 1.0
    for bend in BENDS:
        for rad in (outward * bend, -outward * bend):
            curve = _curve(start, end, rad)
            distances = np.linalg.norm(curve[:, None, :] - others[None, :, :], axis=2)
            if distances.min() > NODE_RADIUS * 1.3:
                return rad
    return outward * BENDS[-1]


def _curve(start: Point, end: Point, rad: float, points: int = 30) -> np.ndarray:
    """Points along matplotlib's arc3 connection: a quadratic Bézier whose control point is the
    chord's midpoint moved by rad × the chord turned clockwise (same in data and screen units,
    because the cell axes have equal aspect)."""
    p0, p2 = np.asarray(start), np.asarray(end)
    dx, dy = p2 - p0
    control = (p0 + p2) / 2 + rad * np.array([dy, -dx])
    t = np.linspace(0.0, 1.0, points)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * control + t**2 * p2


def _draw_cell(ax: Axes, drawing: _CellDrawing) -> None:
    circles = {node: _draw_node(ax, node, xy, dropped=node in drawing.dropped)
               for node, xy in drawing.positions.items()}
    for source, target, label, rad in drawing.edges:
        # Clipped at the circles' rims, found by bisection in Python: half of drawing the cell. LTNAS_PLOTS=draft
        # draws the arrow centre to centre, under the circles (its head hidden, at 10 dpi a pixel anyway).
        ends = {} if draft() else {"patchA": circles[source], "patchB": circles[target]}
        ax.annotate("", xy=drawing.positions[target], xytext=drawing.positions[source], zorder=2,
                    arrowprops=dict(arrowstyle="-|>", color="black" if label else "grey", linewidth=1.0,
                                    shrinkA=0, shrinkB=0, connectionstyle=f"arc3,rad={rad}", **ends))
        if label:
            curve = _curve(drawing.positions[source], drawing.positions[target], rad, points=101)
            at = round(LABEL_AT * 100)
            (x, y), (dx, dy) = curve[at], curve[at + 1] - curve[at - 1]
            # Written along its edge, a label cannot be mistaken for that of a neighbouring edge.
            ax.text(x, y, label, ha="center", va="center", fontsize=8, zorder=5,
                    rotation=math.degrees(math.atan2(dy, dx)), rotation_mode="anchor", transform_rotates_text=True,
                    bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.85))


def _draw_node(ax: Axes, node: Node, xy: Point, dropped: bool) -> Circle:
    if node == OUTPUT:
        colour, label = "#eee8aa", "$c_{k}$"
    elif node in (0, 1):
        colour, label = "#b4eeb4", node_name(int(node), math_text=True)
    else:
        colour, label = ("#eeeeee" if dropped else "#add8e6"), node_name(int(node))
    circle = Circle(xy, NODE_RADIUS, facecolor=colour, edgecolor="grey" if dropped else "black",
                    linestyle="--" if dropped else "-", zorder=3)
    ax.add_patch(circle)
    ax.text(*xy, label, ha="center", va="center", fontsize=12, zorder=4, color="grey" if dropped else "black")
    if dropped:
        ax.text(xy[0], xy[1] - NODE_RADIUS - 0.08, "no input", ha="center", va="top", fontsize=8, color="grey")
    return circle


# ------------------------------------------------------------------------------------- comparison


def plot_comparison_shot_groups(table: dict[str, Row], path: str | Path,
                                thresholds: tuple[int, int] = (100, 20)) -> Path:
    """Accuracy per variant on the balanced test set (overall and per shot group) and the long-tailed
    test set, mean over seeds with the sample std as error bars (none for a single seed: no spread known)."""
    groups = [("balanced", "balanced test"), ("many", "many"), ("medium", "medium"), ("few", "few"),
              ("longtail", "LT test")]
    variants = list(table)
    width = 0.8 / max(1, len(variants))
    fig = _new_figure(width=max(7.0, 1.4 * len(groups) + 0.5 * len(variants)), height=4.6)
    ax = fig.subplots()
    positions = np.arange(len(groups))
    colours = colormaps["tab10"]
    for index, variant in enumerate(variants):
        means = [_float_or_nan(table[variant][key]["mean"]) * 100 for key, _ in groups]
        stds = [_float_or_nan(table[variant][key]["std"]) * 100 for key, _ in groups]
        offset = (index - (len(variants) - 1) / 2) * width
        spread = stds if not all(math.isnan(v) for v in stds) else None
        ax.bar(positions + offset, means, width, yerr=spread, capsize=3, label=variant,
               color=colours(index % 10), zorder=2)
    ax.set_xticks(positions, [title for _, title in groups])
    ax.set(ylim=(0, 105), ylabel="accuracy (%)", title=f"Accuracy by shot group (many > {thresholds[0]}, few < {thresholds[1]} images)")
    ax.grid(alpha=0.3, axis="y", zorder=0)
    fig.legend(loc="outside lower center", ncols=min(4, len(variants)), fontsize="small")
    return _save(fig, path)


def plot_comparison_dominant_skips(series: dict[str, Row], path: str | Path) -> Path:
    """Dominant skip connections per search epoch, one panel per cell type (or S₂'s layers), one colour per
    variant: the mean over seeds with a ± sample-std band, and each seed as a thin line (FairDARTS Fig. 2, which
    draws k = 4 DARTS runs). `series`: variant → {"rule", "epochs", "panels": {title: [[count per epoch] per seed]}}."""
    titles = list(dict.fromkeys(title for entry in series.values() for title in entry["panels"]))
    if not titles:
        raise ValueError("plot_comparison_dominant_skips needs at least one variant with α rows")
    fig = _new_figure(width=4.8 * len(titles), height=4.4)
    axes = fig.subplots(1, len(titles), squeeze=False, sharey=True)[0]
    colours = colormaps["tab10"]
    for index, (variant, entry) in enumerate(series.items()):
        colour = colours(index % 10)
        for ax, title in zip(axes, titles):
            if title not in entry["panels"]:
                continue
            counts = np.asarray(entry["panels"][title], dtype=float)  # seeds × epochs
            epochs = entry["epochs"][: counts.shape[1]]
            for seed_counts in counts:
                ax.plot(epochs, seed_counts, color=colour, linewidth=0.7, alpha=0.35)
            mean = counts.mean(axis=0)
            ax.plot(epochs, mean, color=colour, linewidth=2.0,
                    label=f"{variant} ({entry['rule']}, {len(counts)} seed{'s' if len(counts) != 1 else ''})")
            if len(counts) > 1:
                std = counts.std(axis=0, ddof=1)
                ax.fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)
    for ax, title in zip(axes, titles):
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("dominant skip connections")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:  # variants with no panel in the first
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize="small")
    fig.suptitle("Dominant skip connections during search: mean ± std over seeds (thin: each seed)")
    return _save(fig, path)


def plot_comparison_per_class(per_class: dict[str, tuple[Sequence[Any], Sequence[int]]], path: str | Path) -> Path:
    """Balanced-test recall per class for each variant, classes sorted by training-set size."""
    first_counts = next(iter(per_class.values()))[1]
    order = sorted(range(len(first_counts)), key=lambda c: -first_counts[c])
    fig = _new_figure(width=min(16.0, max(8.0, 0.3 * len(order) + 4)), height=4.8)
    ax = fig.subplots()
    _shade_shot_groups(ax, [first_counts[c] for c in order])
    colours = colormaps["tab10"]
    for index, (variant, (recalls, _)) in enumerate(per_class.items()):
        ax.plot(range(len(order)), [_float_or_nan(recalls[c]) * 100 for c in order], marker="o", markersize=3,
                label=variant, color=colours(index % 10), zorder=3)
    ax.set(ylim=(0, 112), yticks=range(0, 101, 20), xlim=(-0.6, len(order) - 0.4), ylabel="recall (%)",
           xlabel="class, by training-set size", title="Per-class accuracy on the balanced test set")
    _class_ticks(ax, [str(c) for c in order])
    fig.legend(loc="outside lower center", ncols=min(4, len(per_class)), fontsize="small")
    return _save(fig, path)


def plot_class_counts(distributions: Sequence[tuple[str, Sequence[int]]], path: str | Path) -> Path:
    """Training images per class (in class order), one panel per distinct distribution, titled with what
    it is and the variants trained on it (IMB-NAS (Yao, 2024), Fig. 1 / Fig. 3)."""
    columns = min(4, len(distributions))
    rows = -(-len(distributions) // columns)
    fig = _new_figure(width=3.6 * columns, height=3.2 * rows)
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax, (title, counts) in zip(axes.flat, distributions):
        ax.bar(range(len(counts)), counts, width=0.85, color="#4c72b0", zorder=2)
        ax.set(xlabel="class index", ylabel="training images", xlim=(-0.6, len(counts) - 0.4))
        ax.set_title(textwrap.fill(title, 40), fontsize="small")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=10))
        ax.grid(alpha=0.3, axis="y", zorder=0)
    for ax in list(axes.flat)[len(distributions):]:
        ax.set_visible(False)
    fig.suptitle("Training class counts of the variants")
    return _save(fig, path)


# ---------------------------------------------------------------------------------------- helpers


def _new_figure(width: float, height: float) -> Figure:
    # LTNAS_PLOTS=draft (ltnas/plot_settings.py): 10 dpi and no layout pass, for test suites
    fig = Figure(figsize=(width, height), dpi=dpi(), layout=None if draft() else "constrained")
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas: rendering needs no pyplot and no display
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if draft():  # no ticks or tick labels: a pixel high at 10 dpi, and placing them was a third of the drawing
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_locator(NullLocator())
                axis.set_minor_locator(NullLocator())
        # Titles, axis labels, legends, node names and annotations are built (above) but not laid out or
        # rasterised: a pixel high too, and their glyphs were a third of what was left (~0.9 -> ~0.55 CPU s per
        # tiny-run report).
        for artist in fig.findobj(lambda a: isinstance(a, (Text, Legend))):
            artist.set_visible(False)
    fig.savefig(path, dpi=dpi(), facecolor="white")
    if not draft():  # (a draft figure is small: the garbage collector's pass is cheaper than clearing it)
        fig.clear()  # free the artists now rather than whenever the figure is garbage-collected
    return path


def _annotate_cells(ax: Axes, image: Any, values: np.ndarray, fmt: str, skip_zero: bool = False) -> None:
    """Write each cell's value on a heatmap, in black or white, whichever reads on that colour (not in
    LTNAS_PLOTS=draft: unreadable at 10 dpi, and laying out the α heatmap's 224 numbers was a fifth of a draft
    report)."""
    if draft():
        return
    for (row, column), value in np.ndenumerate(values):
        if skip_zero and value == 0:
            continue
        red, green, blue, _ = image.cmap(image.norm(value))
        luminance = 0.299 * red + 0.587 * green + 0.114 * blue
        ax.text(column, row, fmt.format(value), ha="center", va="center", fontsize=7,
                color="black" if luminance > 0.5 else "white")


def _say_nothing(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="grey")


def _float_or_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _pretty(key: str) -> str:
    return key.replace("_acc", " accuracy").replace("_loss", " loss").replace("_", " ")


# -------------------------------------------------------------------------------- mixing ratio


def plot_mu_sweep(sweep: Row, path: str | Path) -> Path:
    """Two-branch networks: accuracy against the test-time mixing ratio μ (1: instance head alone,
    0: class-balanced head alone), one panel per evaluation set (HLS (Tang, 2024), Fig. 4/6/8)."""
    rows = sorted(sweep["rows"], key=lambda row: row["mu"])
    sets = [(name, title) for name, title in (("val", "Validation"), ("balanced_test", "Balanced test"),
                                               ("longtail_test", "Long-tailed test")) if name in rows[0]]
    fig = _new_figure(width=4.6 * len(sets), height=4.2)
    axes = fig.subplots(1, len(sets), squeeze=False, sharey=True)[0]
    mus = [row["mu"] for row in rows]
    for ax, (name, title) in zip(axes, sets):
        for key, style in (("overall", "-o"), ("balanced", "-s"), ("many", ":"), ("medium", "--"), ("few", "-.")):
            values = [100 * _float_or_nan(row[name].get(key)) for row in rows]
            if not all(math.isnan(v) for v in values):
                ax.plot(mus, values, style, label=_pretty(key), linewidth=1.6, markersize=4)
        for mu, colour, label in ((sweep.get("mu_test"), "grey", "μ_test"),
                                  (sweep.get("mu_selected_on_val"), "tab:green", "best μ on validation")):
            if mu is not None:
                ax.axvline(mu, color=colour, linestyle=":", linewidth=1, label=label)
        ax.set(title=title, xlabel="test-time mixing ratio μ", xlim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=4)
    fig.suptitle("Accuracy against the mixing ratio (μ = 1: instance head, μ = 0: class-balanced head)")
    return _save(fig, path)


def _epochs(rows: Sequence[Row]) -> list[int]:
    return [row.get("epoch", index + 1) for index, row in enumerate(rows)]


def _mu_axis(ax: Axes, epochs: Sequence[float], rows: Sequence[Row]) -> Axes:
    """μ per epoch on a twin axis of `ax` (0 … 1), drawn in black."""
    twin = ax.twinx()
    twin.plot(epochs, [_float_or_nan(row.get("mu")) for row in rows], "k--", linewidth=1.4, label="mixing ratio μ")
    twin.set(ylim=(-0.03, 1.03), ylabel="mixing ratio μ")
    return twin


def _legend(fig: Figure, *axes: Axes, ncols: int = 4) -> None:
    handles, labels = [], []
    for ax in axes:
        h, l = ax.get_legend_handles_labels()
        handles, labels = handles + h, labels + l
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize="small")


def plot_mu_and_losses(search_rows: Sequence[Row], path: str | Path) -> Path:
    """HLS (Tang, 2024), Fig. 2: the training and validation loss per search epoch, with μ beside them (right
    axis). A training loss that rises while μ hands over from the instance to the class-balanced branch is the
    figure's point."""
    fig = _new_figure(width=7.0, height=4.2)
    ax = fig.subplots()
    epochs = _epochs(search_rows)
    for key, style in (("train_loss", "-o"), ("val_loss", "-s")):
        ax.plot(epochs, [_float_or_nan(row.get(key)) for row in search_rows], style, markersize=3, label=_pretty(key))
    ax.set(xlabel="epoch", ylabel="loss", title="Search loss and the mixing ratio μ (HLS paper, Fig. 2)")
    ax.grid(alpha=0.3)
    _legend(fig, ax, _mu_axis(ax, epochs, search_rows))
    return _save(fig, path)


def plot_hls_schedule(search_rows: Sequence[Row], search_epochs: int, path: str | Path) -> Path:
    """HLS (Tang, 2024), Fig. 5: the instance weight μ_t, the class-balanced weight 1 − μ_t and the HLS factor
    1 − exp(−τ μ_t) of the backbone's α learning rate, as logged, against the normalised epoch t/T (t as logged,
    `mu_t`; rows logged before it: epoch − 1; continued-training epochs lie beyond 1)."""
    fig = _new_figure(width=6.5, height=4.2)
    ax = fig.subplots()
    x = [row.get("mu_t", epoch - 1) / search_epochs for row, epoch in zip(search_rows, _epochs(search_rows))]
    mu = [_float_or_nan(row.get("mu")) for row in search_rows]
    ax.plot(x, mu, "-o", markersize=3, label="instance weight μ")
    ax.plot(x, [1 - m for m in mu], "-s", markersize=3, label="class-balanced weight 1 − μ")
    ax.plot(x, [_float_or_nan(row.get("hls_factor")) for row in search_rows], "-^", markersize=3,
            label="HLS factor of the backbone α lr")
    ax.set(xlabel="normalised epoch t / T", ylabel="weight", ylim=(-0.03, 1.03),
           title="Mixing ratio and HLS factor (HLS paper, Fig. 5)")
    ax.grid(alpha=0.3)
    _legend(fig, ax, ncols=3)
    return _save(fig, path)


def plot_alpha_gradient_norms(search_rows: Sequence[Row], path: str | Path) -> Path:
    """HLS (Tang, 2024), Theorem 1 made visible: the mean ‖∇α L‖ per epoch of the backbone's α and of each head's,
    with μ (right axis). The instance head's norm follows μ, the class-balanced head's 1 − μ; the backbone's
    does not shrink as μ moves."""
    fig = _new_figure(width=7.0, height=4.2)
    ax = fig.subplots()
    epochs = _epochs(search_rows)
    for component, style in (("backbone", "-o"), ("instance", "-s"), ("balanced", "-^")):
        values = [_float_or_nan(row.get(f"alpha_grad_norm_{component}")) for row in search_rows]
        ax.plot(epochs, values, style, markersize=3, label=f"‖∇α‖ {component}" + (" head" if component != "backbone" else ""))
    ax.set(xlabel="epoch", ylabel="mean α-gradient norm per step",
           title="α-gradient norm per component (HLS paper, Theorem 1)")
    ax.grid(alpha=0.3)
    _legend(fig, ax, _mu_axis(ax, epochs, search_rows))
    return _save(fig, path)


def plot_mu_sweep_overlay(sweeps: dict[str, Sequence[tuple[float, float]]], flat: dict[str, float],
                          path: str | Path, title: str = "Balanced test accuracy against the mixing ratio") -> Path:
    """Several two-branch networks' accuracy against the test-time μ on one axis (HLS (Tang, 2024), Figs. 6
    and 8): `sweeps` variant → [(μ, accuracy fraction)], `flat` variant → accuracy of a network without μ (a
    plain DARTS row), drawn as a dashed level line."""
    fig = _new_figure(width=7.0, height=4.6)
    ax = fig.subplots()
    for variant, points in sweeps.items():
        points = sorted(points)
        ax.plot([mu for mu, _ in points], [100 * _float_or_nan(v) for _, v in points], "-o", markersize=4,
                linewidth=1.6, label=variant)
    for variant, value in flat.items():
        ax.axhline(100 * value, linestyle="--", linewidth=1.2, color="grey" if len(flat) == 1 else None,
                   label=f"{variant} (no μ)")
    ax.set(xlabel="test-time mixing ratio μ (1: instance head, 0: class-balanced head)", ylabel="accuracy (%)",
           xlim=(-0.02, 1.02), title=title)
    ax.grid(alpha=0.3)
    _legend(fig, ax, ncols=3)
    return _save(fig, path)
