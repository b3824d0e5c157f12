"""The seeded request stream: arrival times and prompt and output lengths.

Arrivals follow Vidur's request generators (Agrawal et al., "Vidur: A Large-Scale
Simulation Framework for LLM Inference", MLSys 2024, section 4): Poisson (exponential
gaps), Gamma gaps of mean 1/rate and coefficient of variation cv (shape 1/cv^2, so cv
> 1 is burstier than Poisson), a fixed rate, or a trace. Lengths are fixed, uniform,
lognormal (mean m, log-sd sigma: mu = ln m - sigma^2 / 2), Zipf over [min, max], or
the trace's; every kind is clipped to [min, max]. One numpy Generator per stream, each
seeded from (seed, stream), so changing the output lengths never moves the arrivals.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ScenarioError

Doc = dict[str, Any]
TRACE_COLUMNS = ("arrival_s", "prompt_tokens", "output_tokens")
_STREAMS = {"arrivals": 0, "prompt": 1, "output": 2}


@dataclass(frozen=True)
class Requests:
    """n requests as columns, in arrival order (arrival non-decreasing)."""

    arrival: np.ndarray   # seconds
    prompt: np.ndarray    # tokens
    output: np.ndarray    # tokens to generate, >= 1

    def __len__(self) -> int:
        return len(self.arrival)


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAMS[stream]])


def arrivals(table: Doc, n: int, seed: int) -> np.ndarray:
    """n arrival times from t = 0 (the first request at its first gap)."""
    rate, kind = float(table["rate"]), table["kind"]
    rng = _rng(seed, "arrivals")
    if kind == "poisson":
        gaps = rng.exponential(1.0 / rate, n)
    elif kind == "gamma":
        shape = 1.0 / float(table["cv"]) ** 2
        gaps = rng.gamma(shape, 1.0 / (rate * shape), n)
    else:  # fixed
        gaps = np.full(n, 1.0 / rate)
    return np.cumsum(gaps)


def lengths(table: Doc, n: int, seed: int, stream: str) -> np.ndarray:
    """n lengths of the kind `table` names, clipped to [min, max]."""
    lo, hi, kind = int(table["min"]), int(table["max"]), table["kind"]
    rng = _rng(seed, stream)
    if kind == "fixed":
        x = np.full(n, float(table["mean"]))
    elif kind == "uniform":
        x = rng.integers(lo, hi + 1, n).astype(float)
    elif kind == "lognormal":
        sigma = float(table["sigma"])
        x = rng.lognormal(np.log(float(table["mean"])) - sigma ** 2 / 2, sigma, n)
    else:  # zipf over the support [lo, hi], by inverse CDF
        support = np.arange(lo, hi + 1, dtype=float)
        cdf = np.cumsum(support ** -float(table["alpha"]))
        x = support[np.searchsorted(cdf / cdf[-1], rng.random(n), side="right").clip(
            0, len(support) - 1)]
    return np.clip(np.rint(x), lo, hi).astype(np.int64)


def generate(serving: Doc, trace: Requests | None = None) -> Requests:
    """The requests a normalised [workload.serving] table asks for (`trace`: its CSV,
    read already, which gives what the table's kinds say come from the trace)."""
    n, seed = int(serving["requests"]), int(serving["seed"])
    if trace is not None:
        n = min(n, len(trace))
    arrival = (trace.arrival[:n] if trace is not None and serving["arrivals"]["kind"] == "trace"
               else arrivals(serving["arrivals"], n, seed))
    columns = {}
    for stream in ("prompt", "output"):
        table = serving[stream]
        own = getattr(trace, stream)[:n] if table["kind"] == "trace" and trace else None
        columns[stream] = own if own is not None else lengths(table, n, seed, stream)
    return Requests(np.asarray(arrival, float), columns["prompt"], columns["output"])


def read_trace(path: str, at: str) -> Requests:
    """A trace CSV (TRACE_COLUMNS); a missing column, a bad value or an arrival before
    the previous row's is one ScenarioError naming the row."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
            header = rows[0].keys() if rows else []
    except OSError as exc:
        raise ScenarioError(at, "a readable trace CSV", f"{path} ({exc.strerror})") from None
    missing = [c for c in TRACE_COLUMNS if c not in header]
    if missing or not rows:
        raise ScenarioError(at, f"a CSV with columns {', '.join(TRACE_COLUMNS)}",
                            f"{path} without {', '.join(missing) or 'rows'}")
    cols: dict[str, list[float]] = {c: [] for c in TRACE_COLUMNS}
    for i, row in enumerate(rows, start=2):  # row 1 is the header
        for c in TRACE_COLUMNS:
            cols[c].append(_cell(row[c], c, path, i, at))
        if i > 2 and cols["arrival_s"][-1] < cols["arrival_s"][-2]:
            raise ScenarioError(at, "arrival_s non-decreasing", f"{path} row {i}: "
                                f"{cols['arrival_s'][-1]} after {cols['arrival_s'][-2]}")
    return Requests(np.array(cols["arrival_s"]), np.array(cols["prompt_tokens"], np.int64),
                    np.array(cols["output_tokens"], np.int64))


def _cell(text: str | None, column: str, path: str, row: int, at: str) -> float:
    try:
        x = float(text or "")
    except ValueError:
        x = float("nan")
    whole = column == "arrival_s" or (x.is_integer() and x >= 1)
    if not (x >= 0 and whole):
        want = "a time >= 0 in s" if column == "arrival_s" else "an integer >= 1"
        raise ScenarioError(at, f"{column} {want}", f"{path} row {row}: {text!r}")
    return x
