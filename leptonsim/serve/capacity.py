"""Capacity planning (issue 15, point 6): the highest request rate a deployment
sustains within its SLOs, and the cheapest deployment that sustains a given rate.

A rate's verdict: the service simulated on its own request stream with every arrival
time scaled by rate0 / rate (rate0: the stream's nominal rate, `rate` of a Poisson,
Gamma or fixed stream, requests per second of a trace's span), so every point sees
the same seeded requests in the same order, only closer together or further apart
(Vidur's capacity search simulates each point with one seed too). It passes when the
`percentile`-th TTFT and TPOT are within their SLOs (issue 15: "p99 TTFT <= 2 s,
p99 TPOT <= 100 ms").

The search (`search`) keeps one invariant: `lo` passed and `hi` failed, both measured.
It starts at rate0, doubles (or halves) until the verdict flips, then bisects in the
log of the rate until hi <= lo (1 + tolerance). It needs no monotonicity to be
correct: whatever the verdicts, it returns a measured pair (lo passes, hi fails, hi
close to lo), a rate the deployment sustains beside one it does not. Where latency
grows with load (queueing theory's expectation, not a theorem for every stream and
scheduler) that pair brackets the one capacity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import ScenarioError
from .requests import Requests
from .run import ServingResult, run

if TYPE_CHECKING:
    from ..scenario.serving import Service

PERCENTILES = (50, 90, 99)  # those metrics.summary reports
STEPS = 12                  # doublings (or halvings) from rate0 before giving up


@dataclass(frozen=True)
class Point:
    """One simulated rate: the offered rate, its summary and its verdict."""

    rate: float
    summary: dict[str, Any]
    passed: bool


@dataclass(frozen=True)
class Search:
    """Every point simulated (in order) and the bracket: lo passed, hi failed (None:
    no rate in the range passed, or none failed)."""

    points: list[Point]
    lo: float | None
    hi: float | None


def nominal_rate(service: Service) -> float:
    """Requests per second the scenario's stream is drawn at (a trace: its requests
    per second between the first and last arrival)."""
    arrivals = service.table["arrivals"]
    if arrivals["kind"] != "trace":
        return float(arrivals["rate"])
    a = service.requests.arrival
    return (len(a) - 1) / float(a[-1] - a[0])


def at_rate(service: Service, rate: float) -> Service:
    """`service` with its request stream scaled in time to `rate` requests/s."""
    r = service.requests
    scale = nominal_rate(service) / rate
    table = {**service.table, "arrivals": {**service.table["arrivals"], "rate": rate}}
    return replace(service, table=table,
                   requests=Requests(r.arrival * scale, r.prompt, r.output))


def verdict(summary: dict[str, Any], slo: dict[str, float], percentile: int) -> bool:
    """Whether the run's `percentile`-th TTFT and TPOT meet their SLOs (an undefined
    TPOT, every output one token, meets any)."""
    p = f"p{percentile}"
    return all(not (summary[k][p] > slo[k]) for k in ("ttft", "tpot") if k in slo)


def check_plannable(service: Service, percentile: int) -> None:
    """One ScenarioError unless the service has an SLO and a stream with a rate."""
    at = "workload.serving"
    if not service.slo:
        raise ScenarioError(f"{at}.slo", "a ttft or tpot target to plan capacity against",
                            "none", file=service.file)
    a = service.requests.arrival
    if service.table["arrivals"]["kind"] == "trace" and not a[-1] > a[0]:
        raise ScenarioError(f"{at}.arrivals.trace", "arrivals spread over time, whose "
                            "rate the search can scale", f"every arrival at {a[0]} s",
                            file=service.file)
    if percentile not in PERCENTILES:
        raise ScenarioError("--percentile", f"one of {', '.join(map(str, PERCENTILES))}",
                            percentile)


def evaluate(service: Service, percentile: int) -> Callable[[float], Point]:
    def point(rate: float) -> Point:
        result: ServingResult = run(at_rate(service, rate))
        return Point(rate, result.summary, verdict(result.summary, service.slo, percentile))

    return point


def search(point: Callable[[float], Point], start: float, tolerance: float,
           max_points: int) -> Search:
    """The bracket [lo, hi] of the highest passing rate, from `start` (see the module's
    docstring); at most `max_points` simulations."""
    points = [point(start)]
    lo, hi = (start, None) if points[0].passed else (None, start)
    rate = start
    for _ in range(STEPS):  # find the other end: double while passing, halve while failing
        if (lo is None) == (hi is None) or len(points) >= max_points:
            break
        rate = rate * 2 if hi is None else rate / 2
        points.append(point(rate))
        lo, hi = (rate, hi) if points[-1].passed else (lo, rate)
    while (lo is not None and hi is not None and hi > lo * (1 + tolerance)
           and len(points) < max_points):
        mid = math.sqrt(lo * hi)
        points.append(point(mid))
        lo, hi = (mid, hi) if points[-1].passed else (lo, mid)
    return Search(points, lo, hi)
