"""The look every leptonsim figure shares: colours, font sizes, the time unit, legend
placement, resolution and the atomic save. The run's Gantt chart (plots.py), the
study figures (study/plots.py), the validation figures (validate/figures.py) and the
precision study's figure draw with these, so they read as one family.

Figures use the object-oriented API (`matplotlib.figure.Figure`), never pyplot: no
display or backend is needed and no figure is kept alive globally.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .export import atomic_write

__all__ = [
    "BAR_HEIGHT", "BUBBLE", "COMMUNICATION", "COMPUTE", "DPI", "FONT", "GREY", "GRID_ALPHA",
    "IDLE", "LINK", "MAKESPAN", "MAX_LEGEND_KINDS", "PHASE_PALETTE", "SEQUENTIAL", "SHADES",
    "WIDE", "WIDTH", "kind_colours", "legend_height", "legend_outside", "save_figure",
    "series_colour", "shade", "time_scale",
]

DPI = 120                      # PNG resolution
WIDTH, WIDE = 11.0, 12.0       # inches: one panel (Gantt, breakdown); two panels, overlay
FONT = {"legend": 8, "small": 7, "tiny": 6, "title": 9}   # points, beside matplotlib's 10
GRID_ALPHA = 0.3
BAR_HEIGHT = 0.8               # a Gantt row's bar, in row units
MAX_LEGEND_KINDS = 20

# Where the time goes: the categories keep their tab10 colours in every figure.
COMPUTE = "#1f77b4"            # tab:blue
BUBBLE = "#ff7f0e"             # tab:orange
COMMUNICATION = "#2ca02c"      # tab:green
IDLE = "#c7c7c7"               # light grey
LINK = "#7f7f7f"               # transfers on a Gantt chart: tab:grey
GREY = "0.35"                  # reference curves and marks beside the data
SEQUENTIAL = "viridis"         # colour map of a metric over a grid (perceptually uniform)
MAKESPAN = "0.35"              # the Gantt chart's makespan line: no phase has this grey

# The Gantt chart's phases, in gantt_phases.PHASES order: forward, backward, all-reduce,
# all-gather / reduce-scatter, all-to-all, p2p / transfer, optimizer, input, other. The
# Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"; Wong 2011, Nature
# Methods 8:441): nine colours told apart with every common colour-vision deficiency.
PHASE_PALETTE = ("#0072B2", "#009E73", "#D55E00", "#E69F00", "#CC79A7", "#F0E442",
                 "#000000", "#56B4E9", "#999999")
SHADES = 3                     # micro-batches cycle through: the colour, lighter, darker
_SHADE_MIX = (0.0, 0.25, -0.4)  # towards white (+) or black (-): 0.18 apart in RGB at least


def series_colour(i: int) -> tuple[float, ...]:
    """The colour of the i-th series (configuration, variant, ...): tab10, cycling."""
    return tuple(mpl.colormaps["tab10"](i % 10))


def kind_colours(kinds: list[str]) -> dict[str, Any]:
    """A colour per task kind, in the given order: tab10, or tab20 beyond ten kinds."""
    cmap = mpl.colormaps["tab10" if len(kinds) <= 10 else "tab20"]
    return {k: cmap(i % cmap.N) for i, k in enumerate(kinds)}


def shade(colour: str, i: int) -> tuple[float, ...]:
    """Shade i (0..SHADES-1) of `colour` as RGBA: neighbouring micro-batches of one phase
    differ in lightness, not in hue, so the phase still reads at a glance."""
    rgb = np.asarray(mpl.colors.to_rgb(colour))
    mix = _SHADE_MIX[i % SHADES]
    rgb = rgb + (1.0 - rgb) * mix if mix >= 0 else rgb * (1.0 + mix)
    return (*rgb.tolist(), 1.0)


def time_scale(span_s: float) -> tuple[float, str]:
    """Factor and unit name so `span_s` reads as a number of convenient size."""
    if span_s <= 0 or span_s >= 1.0:
        return 1.0, "s"
    return (1e3, "ms") if span_s >= 1e-3 else (1e6, "us")


def legend_outside(ax: Axes, handles: list[Any]) -> None:
    """A legend to the right of the axes, top-aligned: Gantt rows stay uncovered. The
    axes must be at least `legend_height` tall, or constrained layout squeezes them."""
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize=FONT["legend"])


def legend_height(entries: int) -> float:
    """Inches a legend of `entries` rows needs (its font's line spacing, and the frame):
    a figure at least this tall shows its legend whole."""
    return 0.3 + entries * FONT["legend"] * 1.75 / 72


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Save `fig` as PNG (at DPI) or SVG, chosen by the extension, atomically."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ValueError(f"cannot save a figure as {str(path)!r}: expected a .png or .svg path")
    fmt = suffix[1:]
    # No timestamps, fixed SVG ids: the same figure gives the same bytes.
    metadata: dict[str, Any] = {"Date": None} if fmt == "svg" else {}

    def writer(f: IO[bytes]) -> None:
        with mpl.rc_context({"svg.hashsalt": "leptonsim"}):
            fig.savefig(f, format=fmt, dpi=DPI, metadata=metadata)

    return atomic_write(path, writer, binary=True)
