"""Per-request latencies and their aggregates, as Vidur and vLLM's benchmarks report them.

    queue delay  first scheduled - arrival
    TTFT         first token - arrival (time to first token)
    TPOT         (finish - first token) / (output - 1): time per output token after the
                 first (undefined for a one-token output: NaN, left out of percentiles)
    e2e          finish - arrival

Throughput is over the span from the first arrival to the last finish; goodput counts
only requests meeting every SLO given (Zhong et al., "DistServe", OSDI 2024, section
2). KV utilisation and batch size are time-weighted over [0, last finish] and the
replicas (an idle replica runs no request and, having none, holds no block).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .engine import Iterations
from .schedulers import Req

PERCENTILES = (50, 90, 99)
COLUMNS = ("request", "replica", "arrival_s", "prompt_tokens", "output_tokens",
           "queue_s", "ttft_s", "tpot_s", "e2e_s", "preemptions")


@dataclass(frozen=True)
class PerRequest:
    """COLUMNS as arrays, one row per request in arrival order."""

    columns: dict[str, np.ndarray]

    @staticmethod
    def of(reqs: list[Req]) -> PerRequest:
        def col(f: Any, dtype: type = float) -> np.ndarray:
            return np.array([f(r) for r in reqs], dtype=dtype)

        arrival, first, finish = col(lambda r: r.arrival), col(lambda r: r.first_token), \
            col(lambda r: r.finish)
        output = col(lambda r: r.output, np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = np.where(output > 1, (finish - first) / (output - 1), np.nan)
        return PerRequest({
            "request": col(lambda r: r.rid, np.int64), "replica": col(lambda r: r.replica, np.int64),
            "arrival_s": arrival, "prompt_tokens": col(lambda r: r.prompt, np.int64),
            "output_tokens": output, "queue_s": col(lambda r: r.start) - arrival,
            "ttft_s": first - arrival, "tpot_s": tpot, "e2e_s": finish - arrival,
            "preemptions": col(lambda r: r.preemptions, np.int64)})

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]


def percentiles(x: np.ndarray) -> dict[str, float]:
    x = x[~np.isnan(x)]
    return {f"p{p}": float(np.percentile(x, p)) if len(x) else float("nan")
            for p in PERCENTILES} | {"mean": float(x.mean()) if len(x) else float("nan")}


def meets(per: PerRequest, slo: dict[str, float]) -> np.ndarray:
    """Per request, whether it meets every SLO given (a NaN TPOT meets any)."""
    ok = np.ones(len(per["request"]), bool)
    if "ttft" in slo:
        ok &= per["ttft_s"] <= slo["ttft"]
    if "tpot" in slo:
        ok &= ~(per["tpot_s"] > slo["tpot"])
    return ok


def time_weighted(log: Iterations, values: np.ndarray, replicas: int, span: float) -> float:
    """The mean over replicas and [0, span] of `values`, each held through its
    iteration (0 while idle)."""
    dur = np.frombuffer(log.end) - np.frombuffer(log.start)
    return float((values * dur).sum() / (replicas * span)) if span > 0 else 0.0


def summary(per: PerRequest, log: Iterations, slo: dict[str, float], replicas: int,
            kv_blocks: int) -> dict[str, Any]:
    """The aggregates summary.json holds (numbers in SI units: s, 1/s, tokens/s)."""
    first, last = float(per["arrival_s"].min()), float(np.nanmax(per["arrival_s"] + per["e2e_s"]))
    span = last - first
    n = len(per["request"])
    good = meets(per, slo)
    batch = np.frombuffer(log.batch, dtype=np.int64).astype(float) if len(log.batch) else np.zeros(0)
    kv = np.frombuffer(log.kv_blocks, dtype=np.int64).astype(float) if len(log.kv_blocks) else np.zeros(0)
    return {
        "requests": n, "span_s": span, "iterations": len(log.start),
        "requests_per_s": n / span if span > 0 else float("nan"),
        "output_tokens_per_s": float(per["output_tokens"].sum()) / span if span > 0 else float("nan"),
        "goodput_requests_per_s": float(good.sum()) / span if span > 0 else float("nan"),
        "slo_attained": float(good.mean()),
        "preemptions": int(per["preemptions"].sum()),
        **{k: percentiles(per[f"{k}_s"]) for k in ("queue", "ttft", "tpot", "e2e")},
        "mean_batch": time_weighted(log, batch, replicas, last),
        "mean_kv_utilisation": time_weighted(log, kv / kv_blocks, replicas, last),
        "kv_blocks_per_replica": kv_blocks,
    }
