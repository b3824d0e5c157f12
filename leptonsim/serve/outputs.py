"""A serving run's files: requests.csv (one row per request, metrics.COLUMNS),
summary.json (the aggregates), timeline.png (batch size and KV use over time, per
replica) and latency_cdf.png (the empirical CDFs of TTFT, TPOT and e2e latency).
Each is written atomically; the summary first, so a run whose figure fails still
leaves its numbers."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import IO, Any

import numpy as np
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..figure_style import (
    FONT,
    GREY,
    GRID_ALPHA,
    WIDE,
    WIDTH,
    save_figure,
    series_colour,
    time_scale,
)
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


CDF_PANELS = (("ttft_s", "ttft", "TTFT"), ("tpot_s", "tpot", "TPOT"), ("e2e_s", "", "e2e latency"))


def _two_and_five(v: float, _: object) -> str:
    """Minor log ticks labelled at 2 and 5 x a power of ten only: none overlap."""
    lead = round(v / 10 ** math.floor(math.log10(v))) if v > 0 else 0
    return f"{v:g}" if lead in (2, 5) else ""


def plain_log(axis: Axis) -> None:
    """A log axis labelled 10, 20, 50, 100 (not 2 x 10^1): minor ticks at 2 and 5 only."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(_two_and_five))


def write_cdf(per: PerRequest, slo: dict[str, float], title: str, path: Path) -> Path:
    """Three panels: the empirical CDF (the share of requests at or below x, a step per
    request) of TTFT, TPOT and end-to-end latency, log x, the SLO dashed where given."""
    fig = Figure(figsize=(WIDE, 3.6), layout="constrained")
    for j, (ax, (column, key, name)) in enumerate(zip(fig.subplots(1, 3), CDF_PANELS,
                                                      strict=True)):
        x = np.sort(per[column][~np.isnan(per[column])])
        if len(x):
            share = np.arange(1, len(x) + 1) / len(x)
            ax.step(x * 1e3, 100.0 * share, where="post", color=series_colour(j), lw=1)
            ax.set_xscale("log")
            plain_log(ax.xaxis)
        if key in slo:
            ax.axvline(slo[key] * 1e3, color=GREY, ls="--", lw=1, label="SLO")
            ax.legend(fontsize=FONT["legend"], loc="lower right")
        ax.set_xlabel(f"{name} (ms)")
        ax.set_ylabel("requests at or below (%)")
        ax.grid(alpha=GRID_ALPHA)
    fig.suptitle(title, fontsize=FONT["title"])
    return save_figure(fig, path)
