"""The capacity search's theorems (serve/capacity.py) and its command.

- Causality: no request leaves before it arrives, so at every instant departures so
  far <= arrivals so far, and the run's throughput n / span never exceeds the sample's
  offered rate n / (last arrival - first arrival).
- Lindley (1952): on one FCFS server whose service times do not depend on the load
  (static batching of one request on one replica), W(k+1) = max(0, W(k) + S(k) - A(k))
  is non-decreasing as every gap A shrinks, so each request's TTFT, hence every TTFT
  percentile, is non-decreasing in the rate of a time-scaled stream. With batching
  this is no theorem: the bundled scenario's p99 TPOT is 51.5 ms at 97.7 req/s and
  50.9 ms at 98.8 (docs/serving.md), which is why the search assumes no monotonicity.
- The search's invariant, for any verdicts at all: it returns a rate it measured
  passing and one it measured failing, within (1 + tolerance) of each other; for a
  threshold verdict they bracket the threshold.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.serve.capacity import Point, at_rate, evaluate, nominal_rate, search
from leptonsim.serve.metrics import PerRequest
from leptonsim.serve.run import run
from tests.helpers.serving import served, service, serving_toml

SETTINGS = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
services = st.fixed_dictionaries({
    "scheduler": st.sampled_from(["static", "orca", "vllm", "sarathi"]),
    "seed": st.integers(0, 2**16),
    "rate": st.sampled_from([1.0, 30.0, 300.0, 3000.0]),
    "replicas": st.integers(1, 2),
})


@SETTINGS
@given(services)
def test_throughput_never_exceeds_the_offered_rate(c: dict) -> None:
    svc = service(scheduler=c["scheduler"], seed=c["seed"], replicas=c["replicas"],
                  requests=50, arrivals={"kind": "poisson", "rate": c["rate"]})
    per = PerRequest.of(served(svc)[0])
    arrive, leave = np.sort(per["arrival_s"]), np.sort(per["arrival_s"] + per["e2e_s"])
    assert (leave >= arrive).all()  # the k-th departure after the k-th arrival
    s = run(svc).summary
    offered = len(arrive) / float(arrive[-1] - arrive[0])
    assert s["requests_per_s"] <= offered
    assert s["output_tokens_per_s"] <= per["output_tokens"].sum() / float(arrive[-1] - arrive[0])
    assert s["goodput_requests_per_s"] <= s["requests_per_s"]


@SETTINGS
@given(st.integers(0, 2**16), st.floats(0.5, 20.0), st.floats(1.01, 8.0))
def test_lindley_ttft_non_decreasing_in_load_for_one_fcfs_server(seed: int, rate: float,
                                                                 more: float) -> None:
    svc = service(scheduler="static", max_batch=1, token_budget=2048, seed=seed,
                  requests=40, prompt={"kind": "uniform", "min": 16, "max": 1024},
                  arrivals={"kind": "poisson", "rate": rate})
    slow, fast = (run(at_rate(svc, r)).per_request["ttft_s"] for r in (rate, rate * more))
    assert (fast >= slow - 1e-9).all()  # each request's: every percentile follows
    assert np.percentile(fast, 99) >= np.percentile(slow, 99) - 1e-9


def test_at_rate_is_the_stream_drawn_at_that_rate() -> None:
    """Scaling a Poisson stream's times by r0 / r is drawing it at r with the same seed."""
    base = service(seed=7, arrivals={"kind": "poisson", "rate": 20.0})
    drawn = service(seed=7, arrivals={"kind": "poisson", "rate": 55.0})
    scaled = at_rate(base, 55.0).requests
    np.testing.assert_allclose(scaled.arrival, drawn.requests.arrival, rtol=1e-12)
    assert (scaled.prompt == drawn.requests.prompt).all()
    assert (scaled.output == drawn.requests.output).all()


def _threshold(theta: float):
    return lambda r: Point(r, {}, r <= theta)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.1, 1e3), st.floats(-10.0, 10.0), st.floats(1e-3, 0.5))
def test_search_brackets_a_threshold(start: float, log2_ratio: float, tol: float) -> None:
    theta = start * 2.0 ** log2_ratio
    s = search(_threshold(theta), start, tol, max_points=200)
    assert s.lo is not None and s.hi is not None
    assert s.lo <= theta < s.hi <= s.lo * (1 + tol)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2**31), st.integers(2, 7), st.floats(1e-3, 0.5), st.floats(0.1, 1e3))
def test_search_invariant_needs_no_monotonicity(salt: int, mod: int, tol: float,
                                                start: float) -> None:
    """Verdicts that flip at random along the rate axis: still a measured pass beside a
    measured fail."""
    def point(r: float) -> Point:
        return Point(r, {}, hash((salt, round(r, 9))) % mod != 0 and r < start * 100)

    s = search(point, start, tol, max_points=200)
    seen = {p.rate: p.passed for p in s.points}
    if s.lo is not None:
        assert seen[s.lo]
    if s.hi is not None:
        assert not seen[s.hi]
    if s.lo is not None and s.hi is not None:
        assert s.hi <= s.lo * (1 + tol)


def test_simulated_capacity_brackets_re_simulated() -> None:
    """The search's pair, simulated afresh: the lower rate meets the SLOs, the higher,
    at most (1 + eps) above, does not."""
    svc = service(replicas=2, requests=120, seed=5)
    s = search(evaluate(svc, 99), 20.0, 0.05, max_points=30)
    assert s.lo is not None and s.hi is not None and s.hi <= s.lo * 1.05
    assert evaluate(svc, 99)(s.lo).passed
    assert not evaluate(svc, 99)(s.hi).passed


def _scenario(tmp_path: Path, **serving: object) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(serving_toml(units=2, requests=80, **serving))
    return path


def test_command_writes_the_points_the_figure_and_the_deployments(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, out = _scenario(tmp_path), tmp_path / "out"
    assert main(["serve-capacity", str(path), "--out", str(out), "--max-points", "8",
                 "--target", "5"]) == 0
    text = capsys.readouterr().out
    with open(out / "capacity.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    rates = [float(r["rate_per_s"]) for r in rows]
    assert rates == sorted(rates)
    assert "capacity: " in text and "cheapest: " in text and "its capacity: " in text
    with open(out / "deployments.csv", newline="") as f:
        ds = list(csv.DictReader(f))
    prices = [float(d["price_per_hour"]) for d in ds if d["price_per_hour"]]
    assert prices == sorted(prices)
    meets = [d for d in ds if d["why"] == "meets"]
    assert len(meets) == 1 and all(d["why"].startswith("fails")
                                   for d in ds[:ds.index(meets[0])])
    assert (out / "latency_vs_load.png").stat().st_size > 0


@pytest.mark.parametrize(("argv", "says"), [
    (["--tolerance", "0"], "--tolerance: expected a number > 0"),
    (["--target", "-1"], "--target: expected a number > 0"),
    (["--target", "5", "--units", "h100_sxm,h99"], "--units: expected device presets"),
])
def test_bad_options_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  argv: list[str], says: str) -> None:
    path = _scenario(tmp_path)
    assert main(["serve-capacity", str(path), "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err


def test_no_slo_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _scenario(tmp_path, slo={})
    assert main(["serve-capacity", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err
    assert "workload.serving.slo: expected a ttft or tpot target" in err


def test_a_trace_without_a_rate_is_one_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.csv").write_text("arrival_s,prompt_tokens,output_tokens\n"
                                    "1.0,100,10\n1.0,200,20\n")
    path = _scenario(tmp_path, arrivals={"kind": "trace", "trace": "t.csv"})
    assert main(["serve-capacity", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "workload.serving.arrivals.trace: expected arrivals" in err


def test_a_trace_is_scaled_by_its_own_rate() -> None:
    """A trace's nominal rate is (n - 1) / its span: at_rate to that rate is itself,
    and to twice it halves every time from zero."""
    svc = service(seed=1, requests=30, arrivals={"kind": "poisson", "rate": 10.0})
    a = svc.requests.arrival
    traced = replace(svc, table={**svc.table, "arrivals": {"kind": "trace", "trace": "x"}})
    r0 = nominal_rate(traced)
    assert r0 == pytest.approx((len(a) - 1) / (a[-1] - a[0]), rel=1e-12)
    np.testing.assert_allclose(at_rate(traced, r0).requests.arrival, a, rtol=1e-12)
    np.testing.assert_allclose(at_rate(traced, 2 * r0).requests.arrival, a / 2, rtol=1e-12)
