"""The run's Gantt chart, drawn from a Trace only, in the shared figure style
(figure_style.py, which also saves it: save_figure is re-exported here)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from leptonsim.export import check_trace
from leptonsim.figure_style import (
    BAR_HEIGHT,
    FONT,
    GRID_ALPHA,
    LINK,
    MAX_LEGEND_KINDS,
    WIDTH,
    kind_colours,
    legend_height,
    legend_outside,
    save_figure,
    time_scale,
)
from leptonsim.gantt_rows import Grouping, busy_fractions
from leptonsim.metrics import covered
from leptonsim.trace import Trace

__all__ = ["MAX_CHANNEL_ROWS", "gantt", "save_figure"]

MAX_CHANNEL_ROWS = 40


def _rows(key: np.ndarray, n_rows: int) -> list[np.ndarray]:
    """Indices of the events of each row 0..n_rows-1 (stable within a row)."""
    order = np.argsort(key, kind="stable")
    cuts = np.searchsorted(key[order], np.arange(n_rows + 1))
    return [order[cuts[r] : cuts[r + 1]] for r in range(n_rows)]


def _style_rows(ax: Axes, labels: list[str], heading: str) -> None:
    n = len(labels)
    step = max(1, -(-n // 60))  # label at most ~60 rows
    ticks = np.arange(0, n, step)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=FONT["legend"] if n <= 30 else FONT["tiny"])
    ax.set_ylim(n - 0.5, -0.5)  # first row on top
    ax.set_ylabel(heading)
    ax.grid(axis="x", alpha=GRID_ALPHA)


def _busiest_channels(trace: Trace) -> tuple[np.ndarray, int]:
    """Channels that carried traffic, capped to the busiest MAX_CHANNEL_ROWS by busy time.

    Returns (channel indices in ascending order, number of channels with traffic).
    """
    n = len(trace.channel_names)
    chan = np.asarray(trace.xfer_channel, dtype=np.int64)
    dur = np.asarray(trace.xfer_end, dtype=float) - np.asarray(trace.xfer_start, dtype=float)
    count = np.bincount(chan, minlength=n)
    busy = np.bincount(chan, weights=dur, minlength=n)
    used = np.flatnonzero(count)
    if len(used) > MAX_CHANNEL_ROWS:
        rank = np.lexsort((used, -count[used], -busy[used]))
        return np.sort(used[rank[:MAX_CHANNEL_ROWS]]), len(used)
    return used, len(used)


def _draw_groups(ax: Axes, trace: Trace, rows: Grouping, row_kind: np.ndarray,
                 palette: np.ndarray, makespan: float, scale: float) -> None:
    """One row per group of units: per kind, the share of the group's units running it
    over time, stacked from the row's baseline (a full-height row: every unit busy)."""
    kind_of_task = np.zeros(len(trace.task_names), np.int64)
    kind_of_task[np.asarray(trace.task, dtype=np.int64)] = row_kind
    edges, fraction = busy_fractions(trace, rows, kind_of_task, len(palette), makespan)
    stacked = np.minimum(np.cumsum(fraction, axis=1), 1.0)  # overlapping tasks: at most full
    x = np.repeat(edges * scale, 2)[1:-1]  # a step outline: each bin's two ends
    for k in range(len(palette)):
        polygons = []
        for g in range(len(rows.labels)):
            base = g + BAR_HEIGHT / 2  # rows run downwards: a taller bar has a smaller y
            above, below = stacked[g, k], stacked[g, k - 1] if k else np.zeros(len(x) // 2)
            if np.any(above > below):
                top, bottom = np.repeat(base - BAR_HEIGHT * above, 2), np.repeat(
                    base - BAR_HEIGHT * below, 2)
                polygons.append(np.column_stack([np.r_[x, x[::-1]], np.r_[top, bottom[::-1]]]))
        # one collection per kind, limits set by the caller: add_patch per row is slow
        ax.add_collection(PolyCollection(polygons, facecolors=palette[k], linewidths=0),
                          autolim=False)
    _style_rows(ax, rows.labels, f"{rows.by}s (height: share busy)")


def gantt(trace: Trace, title: str, rows: Grouping | None = None) -> Figure:
    """Gantt chart: a row per unit (tasks coloured by kind), then a row per busy link.
    With `rows` (gantt_rows.grouping: large runs), a row per group of units instead,
    its bars as tall as the share of the group's units running each kind of task.

    Tasks are bars on their unit's row with a legend of task kinds; below, each link
    channel that carried traffic gets a row of transfer-hop bars (at most the
    `MAX_CHANNEL_ROWS` busiest, noted in the title). The time axis is in s, ms or
    us depending on the makespan, which is marked by a dashed vertical line. Draws
    one `broken_barh` per row, so large traces stay cheap to render.
    """
    check_trace(trace)
    makespan = trace.makespan_s
    scale, unit = time_scale(makespan)

    n_units = len(trace.unit_names)
    channels, n_used = _busiest_channels(trace)
    if n_used > len(channels):
        title = f"{title} ({len(channels)} busiest of {n_used} links shown)"

    rows_top = max(n_units if rows is None else 3 * len(rows.labels), 1)  # groups: taller
    rows_bottom = len(channels)
    task_ids = np.asarray(trace.task, dtype=np.int64)
    kinds = sorted({trace.task_kinds[t] for t in np.unique(task_ids).tolist()})
    legend_rows = min(len(kinds), MAX_LEGEND_KINDS + 1) + (1 if rows_bottom else 0) + 1
    # inches: the legend sits beside the top panel, which must be as tall as it
    top = max(0.28 * rows_top, legend_height(legend_rows))
    height = float(np.clip(1.6 + top + 0.28 * rows_bottom, 3.0, 40.0))
    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    if rows_bottom:
        ax_units, ax_links = fig.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [top, 0.28 * rows_bottom]}
        )
        axes: list[Axes] = [ax_units, ax_links]
    else:
        ax_units = fig.subplots()
        axes = [ax_units]
    fig.suptitle(title)

    # Tasks, one broken_barh per unit row, coloured by kind.
    start = np.asarray(trace.task_start, dtype=float) * scale
    width = np.asarray(trace.task_end, dtype=float) * scale - start
    colours = kind_colours(kinds)
    kind_index = {k: i for i, k in enumerate(kinds)}
    palette = np.array([colours[k] for k in kinds]).reshape(-1, 4)
    row_kind = np.array(
        [kind_index[trace.task_kinds[t]] for t in task_ids.tolist()], dtype=np.int64
    )
    if rows is not None:
        _draw_groups(ax_units, trace, rows, row_kind, palette, makespan, scale)
    for r, idx in enumerate(() if rows is not None else
                            _rows(np.asarray(trace.task_unit, dtype=np.int64), n_units)):
        if len(idx):
            ax_units.broken_barh(
                np.column_stack([start[idx], width[idx]]),
                (r - BAR_HEIGHT / 2, BAR_HEIGHT),
                facecolors=palette[row_kind[idx]],
                linewidth=0,
            )
    if rows is None:
        _style_rows(ax_units, list(trace.unit_names), "units")

    # Transfer hops, one broken_barh per shown channel.
    if rows_bottom:
        chan = np.asarray(trace.xfer_channel, dtype=np.int64)
        row_of_channel = np.full(len(trace.channel_names), rows_bottom, dtype=np.int64)
        row_of_channel[channels] = np.arange(rows_bottom)
        xs = np.asarray(trace.xfer_start, dtype=float) * scale
        xw = np.asarray(trace.xfer_end, dtype=float) * scale - xs
        # shared links (fair sharing) overlap: translucent bars, darker where more share
        shared = covered(chan, xs, xs + xw, len(trace.channel_names)).sum() < xw.sum() * (1 - 1e-9)
        for r, idx in enumerate(_rows(row_of_channel[chan], rows_bottom)):
            ax_links.broken_barh(
                np.column_stack([xs[idx], xw[idx]]),
                (r - BAR_HEIGHT / 2, BAR_HEIGHT),
                facecolors=LINK,
                alpha=0.35 if shared else 1.0,
                linewidth=0,
            )
        _style_rows(ax_links, [trace.channel_names[c] for c in channels.tolist()], "links")

    for ax in axes:
        ax.axvline(makespan * scale, color="black", linestyle="--", linewidth=1)
        ax.set_xlim(0, max(makespan * scale, 1e-12) * 1.02)
    axes[-1].set_xlabel(f"time ({unit})")

    handles: list[Any] = [Patch(facecolor=colours[k], label=k) for k in kinds[:MAX_LEGEND_KINDS]]
    if len(kinds) > MAX_LEGEND_KINDS:
        handles.append(Patch(facecolor="none", label=f"... {len(kinds) - MAX_LEGEND_KINDS} more"))
    if rows_bottom:
        handles.append(Patch(facecolor=LINK, label="transfer (darker: links shared)"
                             if shared else "transfer"))
    handles.append(
        Line2D(
            [], [], color="black", linestyle="--", label=f"makespan {makespan * scale:.4g} {unit}"
        )
    )
    legend_outside(ax_units, handles)
    return fig
