"""An iteration's time (serve/iteration.py) keeps the cost model's bounds: a decode
step reads every weight at no more than the achievable bandwidth, a prefill runs its
GEMM FLOPs at no more than peak x efficiency, the TP all-reduces are the ring formula's,
and more tokens or more context never cost less."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.formulas import ring_allreduce_seconds
from leptonsim.serve.iteration import IterationCost
from tests.helpers.serving import service

SVC = service()
COST = SVC.cost
UNIT = SVC.cluster.units[0]


def test_a_decode_step_reads_every_weight() -> None:
    weights = SVC.memory.weights
    floor = weights / (UNIT.memory_bandwidth * UNIT.bandwidth_efficiency)
    one = COST.seconds(1, 1, 1000, 1000)
    assert one >= floor
    assert one < 1.5 * floor  # and is memory-bound: the weights are most of it


def test_a_prefill_runs_no_faster_than_peak() -> None:
    spec, tokens = SVC.spec, 4096
    linear = spec.layers * sum(2 * m * n * k for m, n, k in COST.shard.layer_gemms(tokens))
    assert COST.seconds(tokens, 1, tokens * (tokens + 1) / 2, tokens) >= linear / (
        UNIT.peak("bf16") * UNIT.efficiency)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 4095), st.integers(1, 64), st.floats(0, 1e7), st.floats(0, 1e5))
def test_more_work_never_costs_less(tokens: int, emits: int, pairs: float, context: float
                                    ) -> None:
    emits = min(emits, tokens)
    t = COST.seconds(tokens, emits, pairs, context)
    assert COST.seconds(tokens, emits, pairs * 2, context) >= t
    assert COST.seconds(tokens, emits, pairs, context * 2) >= t


def test_tp_adds_two_ring_all_reduces_per_layer() -> None:
    svc = service(tp=2)
    cost = svc.cost
    free = IterationCost(cost.shard, cost.unit, "bf16", (0.0, 1e30), 4096, 64)
    tokens = 512
    words = tokens * svc.spec.hidden * 2
    reduce = 2 * svc.spec.layers * ring_allreduce_seconds(2, words, cost.latency,
                                                          cost.bandwidth)
    got = cost.seconds(tokens, 1, 1e5, 1e4) - free.seconds(tokens, 1, 1e5, 1e4)
    assert got == pytest.approx(float(reduce), rel=1e-9)
    assert reduce > 0
