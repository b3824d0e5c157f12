"""The capacity search's files: capacity.csv (one row per simulated rate, by rate),
latency_vs_load.png (TTFT and TPOT p50 / p99 against the offered rate, the SLOs and
the capacity found) and deployments.csv (the cheapest-deployment search)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO

import numpy as np
from matplotlib.figure import Figure

from ..figure_style import FONT, GREY, GRID_ALPHA, WIDE, save_figure, series_colour
from ..files import atomic_write
from .capacity import Search
from .deploy import Deployment
from .outputs import plain_log

POINT_COLUMNS = ("step", "rate_per_s", "requests_per_s", "goodput_requests_per_s",
                 "slo_attained", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s",
                 "mfu", "mbu", "passed")
DEPLOYMENT_COLUMNS = ("unit", "tp", "replicas", "units", "price_per_hour", "ttft_p99_s",
                      "tpot_p99_s", "why")


def _num(x: float | None) -> str:
    return "" if x is None or x != x else repr(float(x))


def point_rows(s: Search) -> list[list[str]]:
    """POINT_COLUMNS of every point, by rate (step: the order simulated, from 1)."""
    order = sorted(range(len(s.points)), key=lambda i: s.points[i].rate)
    rows = []
    for i in order:
        p, m = s.points[i], s.points[i].summary
        rows.append([str(i + 1), _num(p.rate), _num(m["requests_per_s"]),
                     _num(m["goodput_requests_per_s"]), _num(m["slo_attained"]),
                     _num(m["ttft"]["p50"]), _num(m["ttft"]["p99"]), _num(m["tpot"]["p50"]),
                     _num(m["tpot"]["p99"]), _num(m["mfu"]), _num(m["mbu"]),
                     str(p.passed).lower()])
    return rows


def _csv(path: Path, head: tuple[str, ...], rows: list[list[str]]) -> Path:
    def writer(f: IO[str]) -> None:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows(rows)

    return atomic_write(path, writer)


def write_points(s: Search, path: Path) -> Path:
    return _csv(path, POINT_COLUMNS, point_rows(s))


def write_deployments(ds: list[Deployment], path: Path) -> Path:
    def p99(d: Deployment, k: str) -> str:
        return _num(d.point.summary[k]["p99"]) if d.point else ""

    return _csv(path, DEPLOYMENT_COLUMNS, [
        [d.unit, str(d.tp), str(d.replicas), str(d.units), _num(d.price_per_hour),
         p99(d, "ttft"), p99(d, "tpot"), d.why] for d in ds])


def write_load_figure(s: Search, slo: dict[str, float], title: str, path: Path) -> Path:
    """Two panels against the offered rate: TTFT and TPOT, p50 and p99 (log scale),
    the SLO as a dashed line, the highest passing rate as a dotted one."""
    fig = Figure(figsize=(WIDE, 4.0), layout="constrained")
    pts = sorted(s.points, key=lambda p: p.rate)
    rate = np.array([p.rate for p in pts])
    for ax, key, name in zip(fig.subplots(1, 2), ("ttft", "tpot"), ("TTFT", "TPOT"),
                             strict=True):
        for j, q in enumerate(("p50", "p99")):
            y = np.array([np.nan if p.summary[key][q] is None else p.summary[key][q]
                          for p in pts], float)
            ax.plot(rate, y * 1e3, marker="o", ms=3, lw=1, color=series_colour(j),
                    label=f"{name} {q}")
        if key in slo:
            ax.axhline(slo[key] * 1e3, color=GREY, ls="--", lw=1, label="SLO")
        if s.lo is not None:
            ax.axvline(s.lo, color=GREY, ls=":", lw=1, label=f"capacity {s.lo:.4g} req/s")
        ax.set_yscale("log")
        plain_log(ax.yaxis)
        ax.set_xlabel("offered load (requests/s)")
        ax.set_ylabel(f"{name} (ms)")
        ax.grid(alpha=GRID_ALPHA)
        ax.legend(fontsize=FONT["legend"])
    fig.suptitle(title, fontsize=FONT["title"])
    return save_figure(fig, path)
