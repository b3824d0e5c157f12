"""Pipeline partition and schedules: exact optima, completeness, deadlock freedom, bubbles."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.formulas import gpipe_bubble_fraction
from leptonsim.parallel.pipeline import (
    DeadlockError,
    Op,
    partition,
    schedule,
    simulate_order,
)


def dependencies_ok(order: Sequence[Sequence[Op]], stages: int, microbatches: int, chunks: int = 1) -> bool:
    """True if every device runs each (F/B, microbatch, chunk) once and nothing deadlocks."""
    expected = sorted((ph, k, c) for ph in "BF" for k in range(microbatches) for c in range(chunks))
    if len(order) != stages or any(sorted(ops) != expected for ops in order):
        return False
    try:
        simulate_order(order, 1.0, 1.0, stages, chunks)
    except DeadlockError:
        return False
    return True


def interleaved_bubble_fraction(p: int, m: int, v: int) -> float:
    """Narayanan et al. (SC'21 section 2.2.2): bubble time (p - 1)(t_f + t_b) / v over
    busy m (t_f + t_b), a ratio r = (p - 1) / (v m), as a fraction r / (1 + r)."""
    return (p - 1) / (v * m + p - 1)

times = st.floats(0.01, 10.0)


def _stage_costs(costs: list[int] | list[float], ranges: list[tuple[int, int]]) -> list[float]:
    return [sum(costs[a:b]) for a, b in ranges]


def _all_partitions(n: int, k: int) -> list[list[tuple[int, int]]]:
    """Every composition of n layers into k non-empty contiguous stages, lexicographic."""
    return [list(zip((0, *cuts), (*cuts, n), strict=True)) for cuts in combinations(range(1, n), k - 1)]


@st.composite
def costs_and_stages(draw: st.DrawFn, values: st.SearchStrategy) -> tuple[list, int]:
    costs = draw(st.lists(values, min_size=1, max_size=9))
    return costs, draw(st.integers(1, len(costs)))


@given(costs_and_stages(st.integers(0, 20)))
def test_partition_matches_brute_force_with_earliest_boundaries(case: tuple[list[int], int]) -> None:
    costs, k = case
    ranges = partition(costs, k)
    candidates = _all_partitions(len(costs), k)
    best = min(max(_stage_costs(costs, c)) for c in candidates)
    assert max(_stage_costs(costs, ranges)) == best
    # ties go to the earliest boundaries: the lexicographically first optimum
    assert ranges == next(c for c in candidates if max(_stage_costs(costs, c)) == best)


@given(costs_and_stages(st.floats(0.0, 1e6)))
def test_partition_of_floats_is_optimal(case: tuple[list[float], int]) -> None:
    costs, k = case
    best = min(max(_stage_costs(costs, c)) for c in _all_partitions(len(costs), k))
    assert max(_stage_costs(costs, partition(costs, k))) == pytest.approx(best, rel=1e-12)


@given(st.lists(st.floats(0.0, 1e3), min_size=1, max_size=200), st.data())
def test_partition_covers_all_layers_contiguously(costs: list[float], data: st.DataObject) -> None:
    k = data.draw(st.integers(1, len(costs)))
    ranges = partition(costs, k)
    assert len(ranges) == k
    assert ranges[0][0] == 0 and ranges[-1][1] == len(costs)
    assert all(a < b for a, b in ranges)
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(k - 1))


def test_partition_examples_and_errors() -> None:
    assert partition([1, 1, 1, 1], 2) == [(0, 2), (2, 4)]
    assert partition([5, 1, 1, 1, 1, 1], 2) == [(0, 1), (1, 6)]
    assert partition([1, 2, 3, 4, 5, 6, 7, 8, 9], 3) == [(0, 5), (5, 7), (7, 9)]
    assert partition([0, 0, 0], 3) == [(0, 1), (1, 2), (2, 3)]
    assert partition([7], 1) == [(0, 1)]
    with pytest.raises(ValueError, match="stages must be between 1 and 3"):
        partition([1, 2, 3], 4)
    with pytest.raises(ValueError, match="stages must be between 1 and 3"):
        partition([1, 2, 3], 0)
    with pytest.raises(ValueError, match="non-negative"):
        partition([1, -2, 3], 2)


def test_partition_is_fast_for_a_large_model() -> None:
    costs = [float(i % 9 + 1) for i in range(2000)]
    ranges = partition(costs, 64)
    assert len(ranges) == 64


@st.composite
def configs(draw: st.DrawFn, kind: str) -> tuple[int, int, int]:
    p = draw(st.integers(1, 8))
    if kind == "interleaved":
        return p, p * draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return p, draw(st.integers(1, 16)), 1


@pytest.mark.parametrize("kind", ["gpipe", "1f1b", "interleaved"])
@given(data=st.data())
def test_schedules_are_complete_and_deadlock_free(kind: str, data: st.DataObject) -> None:
    p, m, v = data.draw(configs(kind))
    order = schedule(kind, p, m, v)
    expected = sorted((ph, k, c) for ph in "FB" for k in range(m) for c in range(v))
    assert [sorted(ops) for ops in order] == [expected] * p
    assert dependencies_ok(order, p, m, v)
    simulate_order(order, 1.0, 2.0, p, v)  # raises on deadlock


@pytest.mark.parametrize("kind", ["gpipe", "1f1b"])
@given(p=st.integers(1, 8), m=st.integers(1, 16), t_f=times, t_b=times)
def test_gpipe_and_1f1b_makespan_and_bubble(kind: str, p: int, m: int, t_f: float, t_b: float) -> None:
    makespan = simulate_order(schedule(kind, p, m), t_f, t_b, p)
    assert makespan == pytest.approx((m + p - 1) * (t_f + t_b), rel=1e-12)
    idle = 1 - m * (t_f + t_b) / makespan
    assert idle == pytest.approx(gpipe_bubble_fraction(p, m), abs=1e-12)


@settings(max_examples=60)
@given(p=st.integers(2, 8), groups=st.integers(1, 4), v=st.integers(2, 4), t_f=times, t_b=times)
def test_interleaving_shrinks_the_bubble(p: int, groups: int, v: int, t_f: float, t_b: float) -> None:
    m = p * groups
    one_f_one_b = simulate_order(schedule("1f1b", p, m), t_f, t_b, p)
    # a chunk holds 1/v of a device's layers, so its ops take 1/v of the time
    interleaved = simulate_order(schedule("interleaved", p, m, v), t_f / v, t_b / v, p, v)
    assert interleaved < one_f_one_b
    # with free communication Megatron's order meets the paper's bubble exactly
    assert interleaved == pytest.approx(m * (t_f + t_b) + (p - 1) * (t_f + t_b) / v, rel=1e-12)
    idle = 1 - m * (t_f + t_b) / interleaved
    assert idle == pytest.approx(interleaved_bubble_fraction(p, m, v), abs=1e-12)


def _max_in_flight(ops: list[Op]) -> int:
    live = peak = 0
    for phase, _, _ in ops:
        live += 1 if phase == "F" else -1
        peak = max(peak, live)
    return peak


@given(p=st.integers(1, 8), m=st.integers(1, 16))
def test_in_flight_microbatches(p: int, m: int) -> None:
    for s, ops in enumerate(schedule("1f1b", p, m)):
        assert _max_in_flight(ops) == min(p - s, m)
    assert all(_max_in_flight(ops) == m for ops in schedule("gpipe", p, m))


def test_schedule_examples() -> None:
    assert schedule("1f1b", 2, 3) == [
        [("F", 0, 0), ("F", 1, 0), ("B", 0, 0), ("F", 2, 0), ("B", 1, 0), ("B", 2, 0)],
        [("F", 0, 0), ("B", 0, 0), ("F", 1, 0), ("B", 1, 0), ("F", 2, 0), ("B", 2, 0)],
    ]
    # Megatron, p=2, m=4, v=2: device 0 warms up with 2*(2-0-1) + (2-1)*2 = 4 forwards
    assert schedule("interleaved", 2, 4, 2)[0][:6] == [
        ("F", 0, 0), ("F", 1, 0), ("F", 0, 1), ("F", 1, 1), ("F", 2, 0), ("B", 0, 1),
    ]  # fmt: skip


def test_schedule_errors() -> None:
    with pytest.raises(ValueError, match="unknown pipeline schedule 'zb'"):
        schedule("zb", 2, 4)
    with pytest.raises(ValueError, match="schedule '1f1b' takes chunks=1, got 2"):
        schedule("1f1b", 2, 4, 2)
    with pytest.raises(ValueError, match=r"microbatches \(6\) to be a multiple of stages \(4\)"):
        schedule("interleaved", 4, 6, 2)


def test_bad_orders_are_caught() -> None:
    order = schedule("1f1b", 2, 2)
    swapped = [order[0], [("B", 0, 0), ("F", 0, 0), ("F", 1, 0), ("B", 1, 0)]]
    with pytest.raises(DeadlockError, match="deadlocks"):
        simulate_order(swapped, 1.0, 1.0, 2)
    assert not dependencies_ok(swapped, 2, 2, 1)
    assert not dependencies_ok([order[0], order[1][:-1]], 2, 2, 1)  # a backward missing
    assert not dependencies_ok(order, 2, 3, 1)
