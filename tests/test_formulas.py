"""Theorems about the seed's formulas and the textbook bounds they are compared with."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from leptonsim import formulas
from leptonsim.formulas import (
    amdahl_speedup,
    brent_bound,
    gpipe_bubble_fraction,
    greedy_upper_bound,
    gustafson_speedup,
    relative_error,
    ring_allreduce_time,
    seed_hardware_efficiency,
    seed_objective,
    seed_objective_argmin,
    seed_parallel_time,
    work_span_lower_bound,
)

TIGHT = 1e-12  # relative slack for float rounding in closed forms

times = st.floats(min_value=0.0, max_value=1e12)
efficiency = st.floats(min_value=0.0, max_value=1.0, exclude_min=True)
error = st.floats(min_value=0.0, max_value=1e6)
fraction = st.floats(min_value=0.0, max_value=1.0)
unit_count = st.floats(min_value=1.0, max_value=1e6)


# --- seed formulas --------------------------------------------------------------------


@given(st.lists(times, min_size=1))
def test_seed_parallel_time_is_always_the_largest_sub_task(ts: list[float]) -> None:
    assert seed_parallel_time(ts) == max(ts)


def test_seed_worked_example_sub_tasks_capped_at_5s() -> None:
    # DIGEST §4: sub-tasks of at most T_m = 5 s; the formula can only ever say T_m.
    assert seed_parallel_time([5.0] * 200) == 5.0


@given(st.lists(efficiency, min_size=1))
def test_seed_efficiency_is_at_least_the_best_unit(es: list[float]) -> None:
    assert seed_hardware_efficiency(es) >= max(es)


@given(st.lists(efficiency, min_size=1))
def test_seed_efficiency_is_the_best_unit_once_the_sum_reaches_its_reciprocal(
    es: list[float],
) -> None:
    e_m, total = max(es), math.fsum(es)
    if total >= 1.0 / e_m:
        assert seed_hardware_efficiency(es) == pytest.approx(e_m, rel=TIGHT)
    else:
        assert seed_hardware_efficiency(es) == pytest.approx(1.0 / total, rel=TIGHT)


def test_seed_efficiency_of_the_worked_example() -> None:
    # DIGEST §4: ten units at 0.8 sum to 8 >= 1/0.8, so E_p is E_m = 0.8.
    assert seed_hardware_efficiency([0.8] * 10) == 0.8


@given(error, error, st.floats(min_value=0.0, max_value=1e6))
def test_seed_objective_is_affine_in_lambda(et: float, er: float, lam: float) -> None:
    assert seed_objective(et, er, 0.0) == et
    assert seed_objective(et, er, lam) >= et
    assert seed_objective(et, er, lam) == pytest.approx(et + lam * er, rel=TIGHT)


options = st.dictionaries(st.text(min_size=1, max_size=5), st.tuples(error, error),
                          min_size=1, max_size=8)


@given(options, st.floats(min_value=0.0, max_value=1e3))
def test_argmin_picks_a_minimal_option_first_by_name(
    opts: dict[str, tuple[float, float]], lam: float
) -> None:
    best = seed_objective_argmin(opts, lam)
    score = {name: seed_objective(et, er, lam) for name, (et, er) in opts.items()}
    assert all(score[best] <= s for s in score.values())
    assert best == min(name for name in opts if score[name] == score[best])
    assert seed_objective_argmin(dict(reversed(list(opts.items()))), lam) == best


# --- scheduling bounds ----------------------------------------------------------------


@given(st.floats(min_value=0.0, max_value=1e9), fraction, unit_count)
def test_lower_bound_le_brent_le_greedy(work: float, share: float, units: float) -> None:
    span = work * share
    low = work_span_lower_bound(work, units, span)
    brent = brent_bound(work, units, span)
    assert low <= brent * (1 + TIGHT)
    assert brent <= greedy_upper_bound(work, units, span) * (1 + TIGHT)
    # Graham's ratio: a greedy schedule is within 2 - 1/C of any schedule.
    assert brent <= (2.0 - 1.0 / units) * low * (1 + TIGHT)


@given(st.floats(min_value=0.0, max_value=1e9), fraction)
def test_on_one_unit_every_bound_is_the_work(work: float, share: float) -> None:
    span = work * share
    assert work_span_lower_bound(work, 1.0, span) == work
    assert brent_bound(work, 1.0, span) == pytest.approx(work, rel=TIGHT)


@st.composite
def task_graphs(draw: st.DrawFn) -> tuple[list[int], list[list[int]]]:
    """Durations and predecessor lists; edges only go from lower to higher index."""
    n = draw(st.integers(min_value=1, max_value=12))
    durations = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))
    preds = [[i for i in range(j) if draw(st.booleans())] for j in range(n)]
    return durations, preds


def greedy_list_schedule(durations: list[int], preds: list[list[int]], units: int) -> int:
    """Makespan of a greedy list schedule: never leave a unit idle while a task is ready."""
    n = len(durations)
    waiting = [len(p) for p in preds]
    succs: list[list[int]] = [[] for _ in range(n)]
    for j, ps in enumerate(preds):
        for i in ps:
            succs[i].append(j)
    ready = [j for j in range(n) if waiting[j] == 0]
    running: list[tuple[int, int]] = []  # (finish time, task)
    now = 0
    while ready or running:
        while ready and len(running) < units:
            task = ready.pop(0)
            heapq.heappush(running, (now + durations[task], task))
        now, done = heapq.heappop(running)
        for j in succs[done]:
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    return now


@given(task_graphs(), st.integers(min_value=1, max_value=5))
def test_greedy_schedules_fall_between_the_bounds(
    graph: tuple[list[int], list[list[int]]], units: int
) -> None:
    durations, preds = graph
    finish: list[int] = []
    for j, d in enumerate(durations):  # longest path ending at j (preds have lower index)
        finish.append(d + max((finish[i] for i in preds[j]), default=0))
    work, span = sum(durations), max(finish)
    makespan = greedy_list_schedule(durations, preds, units)
    assert work_span_lower_bound(work, units, span) <= makespan
    assert makespan <= brent_bound(work, units, span) * (1 + TIGHT)


# --- speed-up laws --------------------------------------------------------------------


@given(fraction, unit_count, unit_count)
def test_amdahl_is_bounded_and_monotone(s: float, n: float, m: float) -> None:
    speedup = amdahl_speedup(s, n)
    assert speedup * (1 + TIGHT) >= 1.0
    assert speedup <= n * (1 + TIGHT)
    if s > 0:
        assert speedup <= 1.0 / s
    lo, hi = sorted((n, m))
    assert amdahl_speedup(s, lo) <= amdahl_speedup(s, hi)


@given(unit_count)
def test_amdahl_extremes(n: float) -> None:
    assert amdahl_speedup(0.0, n) == pytest.approx(n, rel=TIGHT)
    assert amdahl_speedup(1.0, n) == 1.0


@given(fraction, unit_count)
def test_gustafson_is_at_least_amdahl(s: float, n: float) -> None:
    scaled = gustafson_speedup(s, n)
    assert scaled >= amdahl_speedup(s, n) * (1 - TIGHT)
    assert scaled == pytest.approx(n - s * (n - 1), rel=1e-9, abs=1e-9)


@given(fraction)
def test_one_unit_is_no_speedup(s: float) -> None:
    assert amdahl_speedup(s, 1.0) == pytest.approx(1.0, rel=TIGHT)
    assert gustafson_speedup(s, 1.0) == pytest.approx(1.0, rel=TIGHT)


# --- collectives and pipelines --------------------------------------------------------

ranks = st.integers(min_value=1, max_value=4096)
nbytes = st.floats(min_value=0.0, max_value=1e12)
latency = st.floats(min_value=0.0, max_value=1e-2)
bandwidth = st.floats(min_value=1e3, max_value=1e13)


@given(nbytes, latency, bandwidth)
def test_allreduce_on_one_rank_is_free(n: float, alpha: float, bw: float) -> None:
    assert ring_allreduce_time(1, n, alpha, bw) == 0.0


@given(ranks, nbytes, latency, bandwidth)
def test_allreduce_grows_with_ranks_and_shrinks_with_bandwidth(
    p: int, n: float, alpha: float, bw: float
) -> None:
    t = ring_allreduce_time(p, n, alpha, bw)
    assert ring_allreduce_time(p + 1, n, alpha, bw) >= t
    assert ring_allreduce_time(p, n, alpha, 2 * bw) <= t


@given(ranks, nbytes, bandwidth)
def test_allreduce_bandwidth_term_stays_below_twice_the_message(
    p: int, n: float, bw: float
) -> None:
    # Each rank sends and receives 2(p-1)/p of the buffer: never 2n, however many ranks.
    # (Written as 2 * (n / B) so both sides round n / B alike, even for subnormal n.)
    assert ring_allreduce_time(p, n, 0.0, bw) <= 2.0 * (n / bw)


@given(ranks, latency)
def test_allreduce_of_nothing_is_pure_latency(p: int, alpha: float) -> None:
    assert ring_allreduce_time(p, 0.0, alpha, 1.0) == 2 * (p - 1) * alpha


stages = st.integers(min_value=1, max_value=1000)


@given(stages, stages)
def test_gpipe_bubble_is_a_fraction_that_shrinks_with_microbatches(p: int, m: int) -> None:
    bubble = gpipe_bubble_fraction(p, m)
    assert 0.0 <= bubble < 1.0
    assert gpipe_bubble_fraction(p, m + 1) <= bubble
    if p > 1:
        assert gpipe_bubble_fraction(p, m + 1) < bubble
    assert gpipe_bubble_fraction(p + 1, m) >= bubble
    assert gpipe_bubble_fraction(1, m) == 0.0


# --- relative error -------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e100, max_value=1e100)


@given(finite)
def test_relative_error_of_an_exact_prediction_is_zero(x: float) -> None:
    assert relative_error(x, x) == 0.0


@given(st.floats(min_value=1e-100, max_value=1e100), st.floats(min_value=-1.0, max_value=10))
def test_relative_error_recovers_the_ratio(actual: float, r: float) -> None:
    predicted = actual * (1 + r)
    assume(math.isfinite(predicted))
    assert relative_error(predicted, actual) == pytest.approx(r, rel=1e-9, abs=1e-12)


def test_relative_error_against_zero() -> None:
    assert relative_error(0.0, 0.0) == 0.0
    assert relative_error(1.0, 0.0) == math.inf


# --- input validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: seed_parallel_time([]), "times must not be empty"),
        (lambda: seed_parallel_time([1.0, -1.0]), r"times\[1\] must be >= 0"),
        (lambda: seed_parallel_time([math.nan]), r"times\[0\] must be a finite number"),
        (lambda: seed_hardware_efficiency([]), "efficiencies must not be empty"),
        (lambda: seed_hardware_efficiency([0.5, 0.0]), r"efficiencies\[1\] must be in \(0, 1\]"),
        (lambda: seed_hardware_efficiency([1.5]), r"efficiencies\[0\] must be in \(0, 1\]"),
        (lambda: seed_objective(-0.1, 0.0, 1.0), "training_error must be >= 0"),
        (lambda: seed_objective(0.1, 0.0, -1.0), "lam must be >= 0"),
        (lambda: seed_objective_argmin({}, 1.0), "options must name at least one"),
        (lambda: work_span_lower_bound(1.0, 0.0, 1.0), "capacity must be > 0"),
        (lambda: greedy_upper_bound(1.0, 0.5, 1.0), "capacity must be >= 1"),
        (lambda: brent_bound(1.0, 2.0, 3.0), r"span \(critical path\) 3.0 exceeds work 1.0"),
        (lambda: amdahl_speedup(1.5, 2.0), r"serial_fraction must be in \[0, 1\]"),
        (lambda: gustafson_speedup(0.5, 0.0), "units must be >= 1"),
        (lambda: amdahl_speedup(True, 2.0), "serial_fraction must be a finite number"),
        (lambda: ring_allreduce_time(0, 1.0, 0.0, 1.0), "p must be a whole number >= 1"),
        (lambda: ring_allreduce_time(2.0, 1.0, 0.0, 1.0), "p must be a whole number"),  # type: ignore[arg-type]
        (lambda: ring_allreduce_time(2, 1.0, 0.0, 0.0), "bandwidth must be > 0"),
        (lambda: gpipe_bubble_fraction(True, 4), "stages must be a whole number"),
        (lambda: gpipe_bubble_fraction(4, 0), "microbatches must be a whole number >= 1"),
        (lambda: relative_error(math.inf, 1.0), "predicted must be a finite number"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# --- each collective's one expression, scalar and vectorised ---------------------------

COLLECTIVES = {  # checked scalar -> vectorised core, and a valid p for a given count
    "ring_allreduce": lambda p: p,
    "ring_reduce_scatter": lambda p: p,
    "ring_allgather": lambda p: p,
    "halving_doubling_allreduce": lambda p: 1 << (p % 8),
    "all_to_all": lambda p: p,
}
link = st.tuples(st.integers(1, 512), st.floats(0.0, 1e12), st.floats(0.0, 1e-3),
                 st.floats(1e3, 1e13))


@pytest.mark.parametrize("name", COLLECTIVES)
@given(links=st.lists(link, min_size=1, max_size=20))
def test_a_collective_vectorised_is_its_scalar_element_by_element(name, links):
    """The array form (the optimizer's estimate, the step builder) gives exactly the
    checked scalar's figure for every element."""
    scalar, vector = getattr(formulas, f"{name}_time"), getattr(formulas, f"{name}_seconds")
    p, n, a, b = (np.array(col) for col in zip(*links, strict=True))
    p = np.array([COLLECTIVES[name](int(x)) for x in p])
    got = vector(p.astype(float), n, a, b)
    assert got.tolist() == [scalar(int(pi), float(ni), float(ai), float(bi))
                            for pi, ni, ai, bi in zip(p, n, a, b, strict=True)]


@given(st.lists(st.tuples(st.integers(1, 16), st.integers(1, 8), st.floats(0.0, 1e12),
                          st.floats(0.0, 1e-3), st.floats(1e3, 1e13), st.floats(0.0, 1e-3),
                          st.floats(1e3, 1e13)), min_size=1, max_size=20))
def test_the_hierarchical_all_reduce_vectorised_is_its_scalar(rows):
    cols = [np.array(c, dtype=float) for c in zip(*rows, strict=True)]
    got = formulas.hierarchical_allreduce_seconds(*cols)
    assert got.tolist() == [formulas.hierarchical_allreduce_time(*r) for r in rows]
