"""The run's Gantt chart, drawn from a Trace only, in the shared figure style
(figure_style.py, which also saves it: save_figure is re-exported here).

Bars are coloured by phase (gantt_phases.py: forward, backward, each kind of
communication, optimizer, ...), forward and backward in a shade per micro-batch; the
legend lists the phases drawn, and a note under the title says what was grouped or left
out. The link panel takes at most LINK_SHARE of the chart's height (issue 17: 40 link
rows once buried the units of a large run), showing the busiest links."""

from __future__ import annotations

from dataclasses import dataclass
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
    MAKESPAN,
    PHASE_PALETTE,
    SHADES,
    WIDTH,
    legend_height,
    legend_outside,
    save_figure,
    shade,
    time_scale,
)
from leptonsim.gantt_phases import PHASES, task_phases, transfer_phases
from leptonsim.gantt_rows import Grouping, busy_fractions
from leptonsim.metrics import covered
from leptonsim.trace import Trace

__all__ = ["LINK_SHARE", "MAX_CHANNEL_ROWS", "MIN_CHANNEL_ROWS", "ROW_INCHES", "gantt",
           "save_figure"]

MAX_CHANNEL_ROWS = 32   # link rows at most, however tall the chart
MIN_CHANNEL_ROWS = 8    # link rows any chart may show, even beside a short top panel
LINK_SHARE = 0.3        # the link panel's share of the panels' height, beyond those rows
ROW_INCHES = 0.28       # a unit's or a link's row; a group's row is three
_GROUP_NOUN = {"stage": "pipeline stages", "replica": "data-parallel replicas",
               "node": "nodes", "block": "blocks of consecutive units"}


@dataclass(frozen=True)
class _Colours:
    """`palette[i]`: colour i (phase i // SHADES, shade i % SHADES); `of_name[t]`: task
    name t's colour; `of_hop[h]`: transfer hop h's; `drawn`: the phases of bars of
    positive length, in PHASES order; `micro_batches`: whether shades mark any."""

    palette: np.ndarray
    of_name: np.ndarray
    of_hop: np.ndarray
    drawn: list[int]
    micro_batches: bool


def _colours(trace: Trace) -> _Colours:
    phase, mb = task_phases(trace)
    of_name = phase * SHADES + np.where(mb >= 0, mb % SHADES, 0)
    hop_phase = transfer_phases(trace, phase)
    task = np.asarray(trace.task, dtype=np.int64)
    long = np.asarray(trace.task_end, dtype=float) > np.asarray(trace.task_start, dtype=float)
    hop_long = np.asarray(trace.xfer_end, dtype=float) > np.asarray(trace.xfer_start, dtype=float)
    drawn = sorted(set(phase[task[long]].tolist()) | set(hop_phase[hop_long].tolist()))
    palette = np.array([shade(c, i) for c in PHASE_PALETTE for i in range(SHADES)])
    return _Colours(palette, of_name, hop_phase * SHADES, drawn,
                    bool(np.any(mb[task[long]] > 0)))


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


def channel_limit(top_inches: float) -> int:
    """How many link rows to show under a top panel `top_inches` tall: the link panel
    stays within LINK_SHARE of the two, but may always show MIN_CHANNEL_ROWS."""
    fit = int(LINK_SHARE / (1.0 - LINK_SHARE) * top_inches / ROW_INCHES)
    return min(MAX_CHANNEL_ROWS, max(MIN_CHANNEL_ROWS, fit))


def _busiest_channels(trace: Trace, limit: int) -> tuple[np.ndarray, int]:
    """Channels that carried traffic, capped to the busiest `limit` by busy time.

    Returns (channel indices in ascending order, number of channels with traffic).
    """
    n = len(trace.channel_names)
    chan = np.asarray(trace.xfer_channel, dtype=np.int64)
    dur = np.asarray(trace.xfer_end, dtype=float) - np.asarray(trace.xfer_start, dtype=float)
    count = np.bincount(chan, minlength=n)
    busy = np.bincount(chan, weights=dur, minlength=n)
    used = np.flatnonzero(count)
    if len(used) > limit:
        rank = np.lexsort((used, -count[used], -busy[used]))
        return np.sort(used[rank[:limit]]), len(used)
    return used, len(used)


def _draw_groups(ax: Axes, trace: Trace, rows: Grouping, colours: _Colours,
                 makespan: float, scale: float) -> None:
    """One row per group of units: per colour, the share of the group's units running it
    over time, stacked from the row's baseline (a full-height row: every unit busy)."""
    palette = colours.palette
    edges, fraction = busy_fractions(trace, rows, colours.of_name, len(palette), makespan)
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
        # one collection per colour, limits set by the caller: add_patch per row is slow
        if polygons:
            ax.add_collection(PolyCollection(polygons, facecolors=palette[k], linewidths=0),
                              autolim=False)
    _style_rows(ax, rows.labels, f"{rows.by}s (height: share busy)")


def _spans(start: np.ndarray, width: np.ndarray) -> Any:
    """broken_barh's (start, width) pairs as one (n, 2) array, which it takes whole (its
    stubs ask for a sequence of tuples: a list of 10^5 tuples would be slow)."""
    return np.column_stack([start, width])


def _draw_units(ax: Axes, trace: Trace, colours: _Colours, scale: float) -> None:
    """A row per unit, one broken_barh each: large traces stay cheap to render."""
    start = np.asarray(trace.task_start, dtype=float) * scale
    width = np.asarray(trace.task_end, dtype=float) * scale - start
    faces = colours.palette[colours.of_name[np.asarray(trace.task, dtype=np.int64)]]
    n_units = len(trace.unit_names)
    for r, idx in enumerate(_rows(np.asarray(trace.task_unit, dtype=np.int64), n_units)):
        if len(idx):
            ax.broken_barh(_spans(start[idx], width[idx]),
                           (r - BAR_HEIGHT / 2, BAR_HEIGHT), facecolors=faces[idx], linewidth=0)
    _style_rows(ax, list(trace.unit_names), "units")


def _draw_links(ax: Axes, trace: Trace, channels: np.ndarray, colours: _Colours,
                scale: float) -> bool:
    """A row per shown channel, bars coloured by the phase each hop serves. Returns
    whether links were shared (fair sharing: overlapping translucent bars)."""
    chan = np.asarray(trace.xfer_channel, dtype=np.int64)
    row_of_channel = np.full(len(trace.channel_names), len(channels), dtype=np.int64)
    row_of_channel[channels] = np.arange(len(channels))
    xs = np.asarray(trace.xfer_start, dtype=float) * scale
    xw = np.asarray(trace.xfer_end, dtype=float) * scale - xs
    shared = bool(covered(chan, xs, xs + xw, len(trace.channel_names)).sum() < xw.sum() * (1 - 1e-9))
    faces = colours.palette[colours.of_hop]
    for r, idx in enumerate(_rows(row_of_channel[chan], len(channels))):
        ax.broken_barh(_spans(xs[idx], xw[idx]), (r - BAR_HEIGHT / 2, BAR_HEIGHT),
                       facecolors=faces[idx], alpha=0.35 if shared else 1.0, linewidth=0)
    _style_rows(ax, [trace.channel_names[c] for c in channels.tolist()], "links")
    return shared


def _group_note(rows: Grouping) -> str:
    sizes = np.bincount(rows.of_unit, minlength=len(rows.labels))
    each = f"{sizes[0]:,} units each" if sizes.min() == sizes.max() else (
        f"{sizes.min():,}-{sizes.max():,} units")
    return (f"rows: {len(rows.labels)} {_GROUP_NOUN.get(rows.by, rows.by + 's')} of {each} "
            f"({len(rows.of_unit):,} units); a bar's height is the share of its units busy")


def _idle_note(trace: Trace) -> list[str]:
    """Units with no task: idle, or stood for by another unit of their group (symmetric
    tensor parallelism, mirrored replicas: StepGraph.groups), which the rows cannot tell."""
    n = len(trace.unit_names)
    idle = n - len(np.unique(np.asarray(trace.task_unit, dtype=np.int64)))
    return [f"units: {idle} of {n} ran no task (idle, or simulated through another unit "
            "of their group)"] if 0 < idle < n else []


def _notes(trace: Trace, rows: Grouping | None, shown: int, used: int,
           micro_batches: bool) -> list[str]:
    """What the chart groups, leaves out or encodes beyond its legend, a line each."""
    notes = _idle_note(trace) if rows is None else [_group_note(rows)]
    if used > shown:
        notes.append(f"links: the {shown} busiest of {used} shown (by busy time)")
    if micro_batches:
        notes.append(f"forward and backward: micro-batches in {SHADES} repeating shades "
                     "(the colour, lighter, darker)")
    return notes


def gantt(trace: Trace, title: str, rows: Grouping | None = None) -> Figure:
    """Gantt chart: a row per unit (tasks coloured by phase), then a row per busy link.
    With `rows` (gantt_rows.grouping: large runs), a row per group of units instead,
    its bars as tall as the share of the group's units running each phase.

    Below, each link channel that carried traffic gets a row of transfer-hop bars (the
    busiest `channel_limit` of them, noted under the title), coloured by the
    collective they serve. The time axis is in s, ms or us depending on the makespan,
    which is marked by a dashed vertical line.
    """
    check_trace(trace)
    makespan = trace.makespan_s
    scale, unit = time_scale(makespan)
    colours = _colours(trace)
    rows_top = max(len(trace.unit_names) if rows is None else 3 * len(rows.labels), 1)
    # inches: the legend sits beside the top panel, which must be as tall as it
    top = max(ROW_INCHES * rows_top, legend_height(len(colours.drawn) + 1))
    channels, n_used = _busiest_channels(trace, channel_limit(top))
    notes = _notes(trace, rows, len(channels), n_used, colours.micro_batches)
    bottom = ROW_INCHES * len(channels)
    height = float(np.clip(1.6 + 0.15 * (len(notes) + 1) + top + bottom, 3.0, 40.0))
    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    if len(channels):
        ax_units, ax_links = fig.subplots(2, 1, sharex=True,
                                          gridspec_kw={"height_ratios": [top, bottom]})
        axes: list[Axes] = [ax_units, ax_links]
    else:
        ax_units = fig.subplots()
        axes = [ax_units]
    fig.suptitle(title)
    if rows is not None:
        _draw_groups(ax_units, trace, rows, colours, makespan, scale)
    else:
        _draw_units(ax_units, trace, colours, scale)
    if len(channels) and _draw_links(ax_links, trace, channels, colours, scale):
        notes.append("links: translucent bars, darker where transfers share a link")
    if notes:
        ax_units.set_title("\n".join(notes), loc="left", fontsize=FONT["small"])
    for ax in axes:
        ax.axvline(makespan * scale, color=MAKESPAN, linestyle="--", linewidth=1)
        ax.set_xlim(0, max(makespan * scale, 1e-12) * 1.02)
    axes[-1].set_xlabel(f"time ({unit})")
    handles: list[Any] = [Patch(facecolor=PHASE_PALETTE[p], label=PHASES[p])
                          for p in colours.drawn]
    handles.append(Line2D([], [], color=MAKESPAN, linestyle="--",
                          label=f"makespan {makespan * scale:.4g} {unit}"))
    legend_outside(ax_units, handles)
    return fig
