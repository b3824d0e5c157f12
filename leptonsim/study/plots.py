"""Figures of a sweep, drawn from its results CSV (and the labels of its sweep.json)
alone, never from simulator objects; which ones is chosen from what was swept.

    scaling    speed-up and parallel efficiency against compute units, with the seed's
               formulas, Amdahl's law and the work/span bounds overlaid; only when a
               swept key or the variants change the unit count
    breakdown  per configuration: compute, pipeline bubble, other idle, and link time
    heatmap    a metric over two swept parameters (one panel per variant), on a log
               colour scale when it spans more than a decade
    pareto     energy against time per step, with the Pareto front (pareto.py)

Times are in s, ms or us as the data needs (figure_style.time_scale); swept keys are
named by their labels (labels.py). Legends sit outside the axes.

Drawn in the shared figure style (leptonsim.figure_style): no pyplot, no display.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..figure_style import (
    BUBBLE,
    COMMUNICATION,
    COMPUTE,
    FONT,
    GREY,
    GRID_ALPHA,
    IDLE,
    SEQUENTIAL,
    WIDE,
    WIDTH,
    save_figure,
    series_colour,
    time_scale,
)
from .pareto import pareto, pareto_front
from .table import Table, read_table

__all__ = ["breakdown", "figures", "heatmap", "pareto", "pareto_front", "plot_study", "scaling"]

MAX_GROUPS = 8          # lines with a legend entry in the scaling figure
MAX_OVERLAID = 4        # lines whose formula curves are drawn (equal curves once)
MAX_BARS = 40
MAX_PANELS = 4
MAX_HEATMAPS = 6
MAX_COUNT_TICKS = 12    # unit counts that each get a tick
DECADES = 10.0          # a colour scale spanning more than this ratio is logarithmic
METRIC_LABELS = {"makespan_s": "makespan per step (s)", "energy_j": "energy per step (J)",
                 "parallel_efficiency": "parallel efficiency (fraction)",
                 "speedup": "speed-up (×)", "cost_usd": "cost per step (USD)"}
# (column, how it becomes a speed-up, legend label, line style)
OVERLAYS: tuple[tuple[str, str, str, Any], ...] = (
    ("work_span_lower_bound_s", "time", "work/span bound W/max(W/C, CP) (upper)", "--"),
    ("graham_bound_s", "time", "Graham W/(W/C + CP) (lower, greedy only)", ":"),
    ("amdahl_speedup", "speedup", "Amdahl 1/(s + (1−s)/C), s = CP/W", "-."),
    ("seed_parallel_time_s", "time", "seed T_p = min(ΣT_i, T_m)", (0, (5, 2, 1, 2, 1, 2))),
)


def _speedups(t: Table, rows: list[int]) -> dict[str, np.ndarray]:
    work = t.num("total_work_s", rows)
    out = {}
    for column, how, _, _ in OVERLAYS:
        values = t.num(column, rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[column] = work / values if how == "time" else values
    return out


def scaling(t: Table) -> Figure:
    """Speed-up and efficiency against the unit count; one line per configuration of
    what else was swept. Only drawn when something swept changes the unit count."""
    fig = Figure(figsize=(WIDE, 5.5), layout="constrained")
    ax_s, ax_e = fig.subplots(1, 2)
    within = t.unit_determining()
    groups = t.groups(within)
    shown: dict[Axes, list[np.ndarray]] = {ax_s: [], ax_e: []}   # what sets the y range
    seed: dict[Axes, list[np.ndarray]] = {ax_s: [], ax_e: []}    # may lie far above it
    drawn: set[tuple[float, ...]] = set()                         # formula curves, once each
    for g, rows in enumerate(groups):
        rows = sorted(rows, key=lambda i: float(t.rows[i]["units"]))
        units = t.num("units", rows)
        label = t.label(rows[0], within) if g < MAX_GROUPS else None
        speedup, eff = t.num("speedup", rows), 100 * t.num("parallel_efficiency", rows)
        ax_s.plot(units, speedup, "o-", color=series_colour(g), label=label)
        ax_e.plot(units, eff, "o-", color=series_colour(g))
        shown[ax_s].append(speedup)
        shown[ax_e].append(eff)
        if g < MAX_OVERLAID:
            _overlay(t, rows, ax_s, ax_e, drawn, shown, seed)
    for ax, unit in ((ax_s, "×"), (ax_e, "%")):
        ax.set_xlabel("compute units (count)")
        ax.grid(alpha=GRID_ALPHA)
        _count_axis(ax, t.num("units"))
        _clip(ax, shown[ax], seed[ax], unit)
    ax_s.set_ylabel("speed-up over the best single unit (×)")
    ax_s.set_title("Speed-up W / makespan")
    ax_e.set_ylabel("parallel efficiency (%)")
    ax_e.set_title("Parallel efficiency W / (C_eff × makespan)")
    styles = [Line2D([], [], color="k", marker="o", label="simulated (colour: configuration)")]
    styles += [Line2D([], [], color=GREY, linestyle=s, label=name) for _, _, name, s in OVERLAYS]
    styles.append(Line2D([], [], color=GREY, marker="x", linestyle="",
                         label="seed E_p = max(1/ΣE_i, E_m)"))
    # legends beside and below the panels, never over the data
    fig.legend(handles=styles, loc="outside lower center", ncols=3, fontsize=FONT["small"],
               title="curves", title_fontsize=FONT["legend"])
    if len(groups) > 1:
        more = f" (first {MAX_GROUPS} of {len(groups)})" if len(groups) > MAX_GROUPS else ""
        fig.legend(handles=[h for h in ax_s.get_lines() if not h.get_label().startswith("_")],
                   loc="outside right upper", fontsize=FONT["small"],
                   title=f"configuration{more}", title_fontsize=FONT["legend"])
    # short lines: the title is centred over the figure, legend column included
    fig.suptitle("Scaling against compute units:\nsimulated, the seed's formulas, the bounds"
                 + (f" (for the first {MAX_OVERLAID} lines)" if len(groups) > MAX_OVERLAID
                    else ""))
    return fig


def _overlay(t: Table, rows: list[int], ax_s: Axes, ax_e: Axes, drawn: set[tuple[float, ...]],
             shown: dict[Axes, list[np.ndarray]], seed: dict[Axes, list[np.ndarray]]) -> None:
    """The formulas' curves for one line of configurations, in grey; a curve equal to
    one already drawn (the formulas ignore link speed and scheduler) is not drawn again."""
    units, cap = t.num("units", rows), t.num("effective_capacity", rows)
    curves: list[tuple[str, np.ndarray | None, np.ndarray]] = [
        ("seed_hardware_efficiency", None, 100 * t.num("seed_hardware_efficiency", rows))]
    curves += [(c, v, 100 * v / cap) for c, v in _speedups(t, rows).items()]
    for column, speedup, efficiency in curves:
        key = (hash(column), *units, *np.nan_to_num(efficiency))
        if key in drawn:
            continue
        drawn.add(key)
        kept = seed if column.startswith("seed_") else shown
        kept[ax_e].append(efficiency)
        if speedup is None:  # the seed's E_p: markers
            ax_e.plot(units, efficiency, "x", ms=7, color=GREY)
            continue
        style = next(o[3] for o in OVERLAYS if o[0] == column)
        ax_s.plot(units, speedup, linestyle=style, color=GREY, lw=1.2)
        ax_e.plot(units, efficiency, linestyle=style, color=GREY, lw=1.2)
        kept[ax_s].append(speedup)


def _clip(ax: Axes, shown: list[np.ndarray], seed: list[np.ndarray], unit: str) -> None:
    """Fit the y range to the simulation and the bounds; say how far off the chart the
    seed's predictions go rather than squash everything under them."""
    top = max((float(np.nanmax(v, initial=0.0)) for v in shown), default=1.0) * 1.15 or 1.0
    ax.set_ylim(0, top)
    peak = max((float(np.nanmax(v[np.isfinite(v)], initial=0.0)) for v in seed), default=0.0)
    if peak > top:
        ax.text(0.02, 0.97, f"seed prediction off the chart: up to {peak:.3g} {unit}",
                transform=ax.transAxes, fontsize=FONT["small"], va="top", color=GREY)


def _count_axis(ax: Axes, values: np.ndarray) -> None:
    """Unit counts as whole numbers (1, 2, 4, 8, never 1.0, 2.0): a tick at each count
    swept when they are few, on a log2 axis when they span a factor of 16 or more."""
    counts = np.unique(values[np.isfinite(values) & (values > 0)])
    if len(counts) and counts.max() / counts.min() >= 16:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
    if 0 < len(counts) <= MAX_COUNT_TICKS:
        ax.xaxis.set_major_locator(mpl.ticker.FixedLocator(counts.tolist()))
    else:
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True) if ax.get_xscale()
                                   == "linear" else mpl.ticker.LogLocator(base=2))
    ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:.0f}"))


def breakdown(t: Table) -> Figure:
    """Per configuration, the average unit's step: compute, bubble and other idle (the
    bar is the makespan); beside it, the links' busy time per unit, which may be longer
    than the step: it is summed over every link direction, and links work at once."""
    rows = list(range(min(len(t), MAX_BARS)))
    n = len(rows)
    fig = Figure(figsize=(WIDTH, 1.8 + 0.35 * n), layout="constrained")
    ax = fig.subplots()
    units = t.num("units", rows)
    scale, unit = time_scale(float(np.nanmax(t.num("makespan_s", rows), initial=0.0)))
    per_unit = {c: scale * t.num(c, rows) / units for c in
                ("compute_s", "bubble_s", "idle_s", "communication_s")}
    makespan = scale * t.num("makespan_s", rows)
    y = np.arange(n)
    left = np.zeros(n)
    for values, name, colour in ((per_unit["compute_s"], "compute (busy)", COMPUTE),
                                 (per_unit["bubble_s"], "pipeline bubble", BUBBLE),
                                 (per_unit["idle_s"] - per_unit["bubble_s"], "other idle",
                                  IDLE)):
        shown = bool(np.nansum(values) > 0) or colour != BUBBLE  # no pipeline: no entry
        ax.barh(y - 0.12, values, height=0.5, left=left, label=name if shown else None,
                color=colour)
        left += np.nan_to_num(values)
    comm = per_unit["communication_s"]
    ax.barh(y + 0.3, comm, height=0.2, color=COMMUNICATION, hatch="//",
            label="links: busy time summed over link directions, ÷ units\n"
                  "(links run at once and beside compute: may exceed the step)")
    ax.set_yticks(y, [t.label(i) for i in rows], fontsize=FONT["small"])
    ax.set_ylim(n - 0.4, -0.6)
    ax.set_xlabel(f"time per compute unit, averaged over units ({unit}); "
                  "compute + idle = makespan")
    ax.set_ylabel("configuration")
    ax.grid(axis="x", alpha=GRID_ALPHA)
    longer = int(np.sum(comm > makespan * (1 + 1e-9)))  # said in the title
    fig.legend(loc="outside lower center", ncols=2, fontsize=FONT["legend"],
               handles=ax.get_legend_handles_labels()[0])
    more = f" (first {MAX_BARS} of {len(t)})" if len(t) > MAX_BARS else ""
    note = f"\n{longer} link bar(s) longer than the step: link time is summed over links" \
        if longer else ""
    ax.set_title(f"Where the time of a step goes, per configuration{more}{note}")
    return fig


def _axis(t: Table, rows: list[int], column: str) -> tuple[list[str], np.ndarray]:
    """Distinct values of a column (numeric order when numeric) and each row's position."""
    cells = [t.rows[i][column] for i in rows]
    distinct = list(dict.fromkeys(cells))
    if t.numeric(column):
        distinct.sort(key=float)
    where = {v: k for k, v in enumerate(distinct)}
    return distinct, np.array([where[c] for c in cells])


def _cells(t: Table, rows: list[int], x: str, y: str, metric: str
           ) -> tuple[list[str], list[str], np.ndarray]:
    """The metric on the grid of distinct (x, y) values: the mean of the rows in each
    cell (other swept parameters averaged), NaN where there is none."""
    xs, xi = _axis(t, rows, x)
    ys, yi = _axis(t, rows, y)
    values = t.num(metric, rows)
    total, count = np.zeros((len(ys), len(xs))), np.zeros((len(ys), len(xs)))
    np.add.at(total, (yi, xi), np.nan_to_num(values))
    np.add.at(count, (yi, xi), np.isfinite(values))
    with np.errstate(invalid="ignore"):
        return xs, ys, np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _colour_scale(values: np.ndarray) -> mpl.colors.Normalize:
    """Logarithmic when the values are positive and span more than a decade (one row
    would swamp a linear scale), linear otherwise."""
    if not values.size:
        return mpl.colors.Normalize(0, 1)
    low, high = float(values.min()), float(values.max())
    if low > 0 and high / low > DECADES:
        return mpl.colors.LogNorm(low, high)
    return mpl.colors.Normalize(low, high)


def _one_two_five(value: float, _: object) -> str:
    """A log axis' tick as a plain number when it is 1, 2 or 5 times a power of ten."""
    mantissa = f"{value:.6e}"[0] if value > 0 else ""
    return f"{value:g}" if mantissa in ("1", "2", "5") and f"{value:.6e}"[2:8] == "000000" \
        else ""


def _metric(metric: str, values: np.ndarray) -> tuple[float, str]:
    """(factor, axis label) of a metric: times in s, ms or us as the values need."""
    if not metric.endswith("_s"):
        return 1.0, METRIC_LABELS.get(metric, metric)
    scale, unit = time_scale(float(np.nanmax(values, initial=0.0)))
    return scale, METRIC_LABELS.get(metric, metric).replace("(s)", f"({unit})")


def heatmap(t: Table, x: str, y: str, metric: str = "makespan_s") -> Figure:
    variants = list(dict.fromkeys(r["variant"] for r in t.rows))[:MAX_PANELS]
    panels = [_cells(t, [i for i, r in enumerate(t.rows) if r["variant"] == v], x, y, metric)
              for v in variants]
    factor, title = _metric(metric, t.num(metric))
    finite = factor * np.concatenate([g[np.isfinite(g)] for _, _, g in panels] + [np.zeros(0)])
    scale = _colour_scale(finite)
    fig = Figure(figsize=(4.8 * len(variants) + 1.2, 4.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(variants)))
    for ax, variant, (xs, ys, grid) in zip(axes, variants, panels, strict=True):
        grid = grid * factor
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap=SEQUENTIAL, norm=scale)
        ticks = [t.show(x, v) for v in xs]
        slant = len(ticks) > 8 or max(map(len, ticks), default=0) > 6  # else they read flat
        ax.set_xticks(range(len(xs)), ticks, rotation=45 if slant else 0,
                      ha="right" if slant else "center", rotation_mode="anchor",
                      fontsize=FONT["small"])
        ax.set_yticks(range(len(ys)), [t.show(y, v) for v in ys], fontsize=FONT["small"])
        if grid.size <= 64:
            for (r, c), v in np.ndenumerate(grid):
                if np.isfinite(v):
                    red, green, blue, _ = image.cmap(scale(v))
                    ink = "k" if 0.3 * red + 0.6 * green + 0.1 * blue > 0.5 else "w"
                    ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=FONT["tiny"], color=ink)
        ax.set_xlabel(t.axis(x))
        ax.set_ylabel(t.axis(y))
        ax.set_title(variant or "base", fontsize=FONT["title"])
    log = isinstance(scale, mpl.colors.LogNorm)  # one bar: the panels share the scale
    bar = fig.colorbar(image, ax=list(axes), label=title + (" (log scale)" if log else ""))
    if log:  # 2, 5, 10, 20, 50, not 10^1 and 2x10^1
        for axis_set in (bar.ax.yaxis.set_major_formatter, bar.ax.yaxis.set_minor_formatter):
            axis_set(mpl.ticker.FuncFormatter(_one_two_five))
    others = " (mean over the other swept parameters)" if len(t.parameters) > 2 else ""
    fig.suptitle(f"{title} over {t.name(x)} × {t.name(y)}{others}")
    return fig


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def figures(t: Table) -> dict[str, Figure]:
    """The figures of what was swept, by file stem: scaling when something swept (a key
    or the variants) changes the unit count, a heatmap per pair of swept keys."""
    out = {"scaling": scaling(t)} if t.varies("units") and t.unit_determining() else {}
    out |= {"breakdown": breakdown(t), "pareto": pareto(t)}
    for x, y in itertools.islice(itertools.combinations(t.parameters, 2), MAX_HEATMAPS):
        out[f"heatmap_{_slug(x)}__{_slug(y)}"] = heatmap(t, x, y)
    return out


def plot_study(csv_path: str | Path, out_dir: str | Path,
               labels: dict[str, str] | None = None) -> list[Path]:
    """Draw the figures of a results CSV into out_dir as PNG and SVG; the paths written.
    `labels` (swept key path -> name) wins over those recorded in its sweep.json."""
    t = read_table(csv_path)
    if labels:
        t = Table(t.rows, t.parameters, {**t.labels, **labels})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if not len(t):
        return written
    for stem, fig in figures(t).items():
        written += [save_figure(fig, out / f"{stem}.{ext}") for ext in ("png", "svg")]
    return written
