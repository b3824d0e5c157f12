"""A serving run's files: requests.csv (one row per request, metrics.COLUMNS),
summary.json (the aggregates) and timeline.png (batch size and KV use over time, per
replica). Each is written atomically; the summary first, so a run whose figure
fails still leaves its numbers."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import IO, Any

import numpy as np
from matplotlib.figure import Figure

from ..figure_style import FONT, GRID_ALPHA, WIDTH, save_figure, series_colour, time_scale
from ..files import atomic_write, json_text
from .engine import Iterations
from .metrics import COLUMNS, PerRequest

MAX_LINES = 8  # replicas drawn one line each; above, the first MAX_LINES


def write_csv(per: PerRequest, path: Path) -> Path:
    def writer(f: IO[str]) -> None:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        cols = [per[c] for c in COLUMNS]
        for row in zip(*cols, strict=True):
            w.writerow([_cell(x) for x in row])

    return atomic_write(path, writer)


def _cell(x: Any) -> str:
    if isinstance(x, np.integer):
        return str(int(x))
    return "" if math.isnan(x) else repr(float(x))


def finite(obj: Any) -> Any:
    """`obj` with NaN as None (JSON null): an undefined figure, e.g. a TPOT of
    one-token outputs only."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def write_summary(summary: dict[str, Any], path: Path) -> Path:
    text = json_text(finite(summary), str(path))
    return atomic_write(path, lambda f: f.write(text))


def write_timeline(log: Iterations, blocks: int, replicas: int, title: str,
                   path: Path) -> Path:
    """Two panels over time: requests per iteration and KV blocks held (% of the
    cache), one step line per replica."""
    fig = Figure(figsize=(WIDTH, 5.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    rep = np.frombuffer(log.replica, dtype=np.int64)
    start, end = np.frombuffer(log.start), np.frombuffer(log.end)
    scale, unit = time_scale(float(end.max()) if len(end) else 0.0)
    for k in range(min(replicas, MAX_LINES)):
        mine = rep == k
        t = start[mine] * scale
        colour = series_colour(k)
        top.step(t, np.frombuffer(log.batch, dtype=np.int64)[mine], where="post",
                 color=colour, lw=0.8, label=f"replica {k}")
        used = np.frombuffer(log.kv_blocks, dtype=np.int64)[mine]
        bottom.step(t, 100.0 * used / blocks, where="post", color=colour, lw=0.8)
    top.set_ylabel("requests in iteration")
    bottom.set_ylabel("KV cache used (%)")
    bottom.set_xlabel(f"time ({unit})")
    top.set_title(title, fontsize=FONT["title"])
    for ax in (top, bottom):
        ax.grid(alpha=GRID_ALPHA)
    top.legend(fontsize=FONT["legend"], loc="upper right")
    return save_figure(fig, path)
