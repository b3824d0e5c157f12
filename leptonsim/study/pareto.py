"""The Pareto figure of a sweep: energy against time per step, the front marked, a few
of its points labelled where the labels do not overlap.

Labels are placed greedily (no adjustText): each in turn takes the first of a ring of
offsets around its point whose box overlaps no label placed before and stays inside the
axes; a label with no such offset is left out and counted in the title. The boxes are
measured after the constrained layout has run once, and the layout is then frozen so
that saving does not move the axes under the labels.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

from ..figure_style import FONT, GREY, GRID_ALPHA, legend_outside, series_colour, time_scale
from .table import Table

__all__ = ["MAX_LABELS", "pareto", "pareto_front", "place_labels"]

MAX_LABELS = 8
# offsets in points: nearest first, the eight directions at three distances
OFFSETS = tuple((r * dx, r * dy) for r in (6, 16, 28)
                for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1),
                               (0, -1)))


def pareto_front(time: np.ndarray, energy: np.ndarray) -> list[int]:
    """Indices of the non-dominated points (less time or less energy than every other),
    in order of increasing time."""
    front, best = [], np.inf
    for i in np.lexsort((energy, time)):
        if np.isfinite(time[i]) and energy[i] < best:
            front.append(int(i))
            best = energy[i]
    return front


def _spread(front: list[int], most: int) -> list[int]:
    """At most `most` points of the front, evenly spaced along it, both ends included."""
    if len(front) <= most:
        return front
    picks = np.unique(np.round(np.linspace(0, len(front) - 1, most)).astype(int))
    return [front[k] for k in picks]


def place_labels(ax: Axes, points: list[tuple[float, float]], texts: list[str]
                 ) -> list[Annotation]:
    """Annotate each point with its text at the first offset whose box is inside the axes
    and clear of the boxes placed so far; the annotations placed (the others dropped)."""
    fig = ax.get_figure()
    assert isinstance(fig, Figure)
    renderer = FigureCanvasAgg(fig).get_renderer()
    inside = ax.get_window_extent(renderer)
    taken: list[Bbox] = []
    placed = []
    for (x, y), text in zip(points, texts, strict=True):
        for dx, dy in OFFSETS:
            note = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points",
                               fontsize=FONT["tiny"], ha="left" if dx >= 0 else "right",
                               va="bottom" if dy >= 0 else "top",
                               arrowprops={"arrowstyle": "-", "lw": 0.5, "color": GREY}
                               if abs(dx) > 6 or abs(dy) > 6 else None)
            box = note.get_window_extent(renderer)
            clear = all(not box.overlaps(b) for b in taken)
            if clear and inside.containsx(box.x0) and inside.containsx(box.x1) \
                    and inside.containsy(box.y0) and inside.containsy(box.y1):
                taken.append(box)
                placed.append(note)
                break
            note.remove()
    return placed


def pareto(t: Table) -> Figure:
    fig = Figure(figsize=(9, 5.5), layout="constrained")
    ax = fig.subplots()
    scale, unit = time_scale(float(np.nanmax(t.num("makespan_s"), initial=0.0)))
    time, joules = t.num("makespan_s") * scale, t.num("energy_j")
    variants = [r["variant"] for r in t.rows]
    for k, v in enumerate(dict.fromkeys(variants)):
        mask = np.array([w == v for w in variants])
        ax.scatter(time[mask], joules[mask], s=18, color=series_colour(k), alpha=0.6,
                   label=v or "all points")
    front = pareto_front(time, joules)
    ax.step(time[front], joules[front], where="post", color="k", lw=1.5,
            label="Pareto front (no point is both\nfaster and cheaper)")
    ax.scatter(time[front], joules[front], s=40, facecolors="none", edgecolors="k")
    ax.set_xlabel(f"makespan per step ({unit})")
    ax.set_ylabel("energy per step (J)")
    ax.grid(alpha=GRID_ALPHA)
    ax.margins(0.12)  # room for labels inside the axes
    legend_outside(ax, ax.get_legend_handles_labels()[0])
    note = " — no power given: all energies are 0 J" if not np.nanmax(joules, initial=0) else ""
    title = f"Energy against time per step (lower left is better){note}\n{{}} of the " \
            f"{len(front)} points on the front labelled"
    chosen = _spread(front, MAX_LABELS)
    ax.set_title(title.format(len(chosen)))
    fig.draw_without_rendering()  # the layout, once: the labels are measured in it
    fig.set_layout_engine("none")
    placed = place_labels(ax, [(time[i], joules[i]) for i in chosen],
                          [t.label(i) for i in chosen])
    ax.set_title(title.format(len(placed)))  # as many lines as the layout made room for
    return fig
