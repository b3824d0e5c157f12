"""The two validation figures: predicted vs measured task times, and both Gantt charts
in one figure, in the shared figure style (leptonsim.figure_style)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..figure_style import (
    BUBBLE,
    COMMUNICATION,
    COMPUTE,
    FONT,
    GRID_ALPHA,
    LINK,
    MAX_LEGEND_KINDS,
    WIDE,
    kind_colours,
    legend_outside,
    series_colour,
    time_scale,
)
from ..trace import Trace

_BAR = 0.38                      # each of a unit's two rows


# The phases of a step, as the Gantt chart groups its kinds, each in its category colour:
# with two dozen kinds, one colour per kind repeats (tab20 cycles); five phases do not.
PHASES = ("forward", "backward", "communication", "optimizer", "other")
_COMM_WORDS = ("allreduce", "allgather", "reducescatter", "alltoall", "ring", "transfer",
               "send", "recv", "p2p", "exchange", "offload", "host", "copy", "broadcast")


def phase_of(kind: str) -> str:
    """The phase of a task kind: communication (collectives, transfers, host copies),
    optimizer, backward (`.bwd`), forward (any other op kind) or other (generated
    tasks: `task`, `noop`, ...)."""
    plain = kind.lower().replace("_", "").replace("-", "")
    if any(w in plain for w in _COMM_WORDS):
        return "communication"
    if "optimizer" in plain or plain in ("adam", "sgd", "sparseupdate"):
        return "optimizer"
    if plain.endswith(".bwd") or "backward" in plain:
        return "backward"
    return "forward" if plain not in ("task", "noop", "spin", "join", "start") else "other"


def phase_colours() -> dict[str, Any]:
    """Each phase's colour: the breakdown's categories, then two more series colours."""
    return dict(zip(PHASES, (COMPUTE, BUBBLE, COMMUNICATION, series_colour(3), LINK),
                    strict=True))


def scatter(predicted_s: np.ndarray, measured_s: np.ndarray, kinds: list[str],
            title: str) -> Figure:
    """Predicted vs measured task durations, log-log, one colour per phase of the step
    (forward, backward, communication, optimizer, other; `phase_of`), with the y = x
    line and a ±10 % band."""
    ok = (predicted_s > 0) & (measured_s > 0)
    scale, unit = time_scale(float(max(measured_s[ok].max(initial=0), predicted_s[ok].max(initial=0))))
    x, y = measured_s[ok] * scale, predicted_s[ok] * scale
    kind = np.array(kinds, dtype=object)[ok]
    phase = np.array([phase_of(k) for k in kind.tolist()], dtype=object)
    colours = phase_colours()
    fig = Figure(figsize=(7.5, 6.5), layout="constrained")
    ax = fig.subplots()
    for p in PHASES:
        m = phase == p
        if m.any():
            n_kinds = len(set(kind[m].tolist()))
            ax.scatter(x[m], y[m], s=18, color=colours[p], alpha=0.8, linewidths=0,
                       label=f"{p} ({int(m.sum())} tasks, {n_kinds} kind"
                             f"{'s' if n_kinds > 1 else ''})")
    lo = float(min(x.min(initial=1.0), y.min(initial=1.0))) / 1.5
    hi = float(max(x.max(initial=1.0), y.max(initial=1.0))) * 1.5
    line = np.array([lo, hi])
    ax.plot(line, line, color="black", linewidth=1, label="predicted = measured")
    ax.fill_between(line, line * 0.9, line * 1.1, color="black", alpha=0.08, linewidth=0,
                    label="±10 %")
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
           xlabel=f"measured task time ({unit}, median of repeats)",
           ylabel=f"predicted task time ({unit})", title=title)
    ax.grid(alpha=GRID_ALPHA, which="both")
    ax.legend(fontsize=FONT["small"], loc="upper left")
    return fig


def gantt_overlay(simulated: Trace, measured: Trace, title: str) -> Figure:
    """Both runs in one chart: per unit a 'simulated' row (filled bars) above a
    'measured' row (the same colours, hatched), then each busy link likewise; dashed
    and dotted vertical lines mark the two makespans."""
    span = max(simulated.makespan_s, measured.makespan_s)
    scale, unit = time_scale(span)
    kinds = sorted({simulated.task_kinds[t] for t in np.unique(simulated.task).tolist()}
                   | {measured.task_kinds[t] for t in np.unique(measured.task).tolist()})
    colours = kind_colours(kinds)
    links = sorted(set(simulated.xfer_channel.tolist()) | set(measured.xfer_channel.tolist()))
    rows = [(u, False) for u in range(len(simulated.unit_names))] + [(c, True) for c in links]
    fig = Figure(figsize=(WIDE, float(np.clip(1.8 + 0.55 * len(rows), 3.0, 30.0))),
                 layout="constrained")
    ax = fig.subplots()
    labels: list[str] = []
    for r, (index, is_link) in enumerate(rows):
        name = simulated.channel_names[index] if is_link else simulated.unit_names[index]
        for k, (trace, hatch) in enumerate(((simulated, ""), (measured, "////"))):
            y = r + (k - 0.5) * (_BAR + 0.02)
            if is_link:
                _draw_links(ax, trace, index, y, scale, hatch)
            else:
                _draw_tasks(ax, trace, index, y, scale, colours, hatch)
        labels.append(name)
    ax.set_yticks(np.arange(len(rows)), [f"{n}\nsimulated ▲ measured ▼" for n in labels],
                  fontsize=FONT["legend"])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.axvline(simulated.makespan_s * scale, color="black", linestyle="--", linewidth=1)
    ax.axvline(measured.makespan_s * scale, color="black", linestyle=":", linewidth=1.5)
    ax.set_xlim(0, span * scale * 1.02)
    ax.set_xlabel(f"time ({unit})")
    ax.set_title(title)
    ax.grid(axis="x", alpha=GRID_ALPHA)
    legend_outside(ax, _legend(kinds, colours, simulated, measured, scale, unit, bool(links)))
    return fig


def _draw_tasks(ax: Axes, trace: Trace, unit: int, y: float, scale: float,
                colours: dict[str, Any], hatch: str) -> None:
    idx = np.flatnonzero(trace.task_unit == unit)
    faces = [colours[trace.task_kinds[int(t)]] for t in trace.task[idx].tolist()]
    _bars(ax, trace.task_start[idx] * scale, trace.task_end[idx] * scale, y, faces, hatch)


def _draw_links(ax: Axes, trace: Trace, channel: int, y: float, scale: float,
                hatch: str) -> None:
    idx = np.flatnonzero(trace.xfer_channel == channel)
    _bars(ax, trace.xfer_start[idx] * scale, trace.xfer_end[idx] * scale, y, LINK, hatch)


def _bars(ax: Axes, start: np.ndarray, end: np.ndarray, y: float, faces: Any,
          hatch: str) -> None:
    """One row of bars; a measured row is hatched (white hatch lines over the colour)."""
    if start.size:
        bars = list(zip(start.tolist(), (end - start).tolist(), strict=True))
        ax.broken_barh(bars, (y - _BAR / 2, _BAR), facecolors=faces, hatch=hatch,
                       edgecolor="white" if hatch else "none", linewidth=0)


def _legend(kinds: list[str], colours: dict[str, Any], simulated: Trace, measured: Trace,
            scale: float, unit: str, links: bool) -> list[Any]:
    handles: list[Any] = [Patch(facecolor=colours[k], label=k) for k in kinds[:MAX_LEGEND_KINDS]]
    if links:
        handles.append(Patch(facecolor=LINK, label="transfer"))
    handles += [Patch(facecolor="lightgrey", label="simulated (upper row)"),
                Patch(facecolor="lightgrey", hatch="////", edgecolor="white",
                      label="measured (lower row)"),
                Line2D([], [], color="black", linestyle="--",
                       label=f"simulated makespan {simulated.makespan_s * scale:.4g} {unit}"),
                Line2D([], [], color="black", linestyle=":", linewidth=1.5,
                       label=f"measured makespan {measured.makespan_s * scale:.4g} {unit}")]
    return handles
