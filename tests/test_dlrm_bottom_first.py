"""NVIDIA's DLRM placement, embeddings = "sharded_bottom_first" (DeepLearningExamples,
PyTorch/Recommendation/DLRM, dlrm/utils/distributed.py get_device_mapping): the bottom
MLP on unit 0 over the global batch, the tables on the other units above 4, and every
unit's memory plan what it holds and runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.parallel.placement import place_tables
from leptonsim.parallel.recsys import BOTTOM_ALONE_ABOVE
from leptonsim.scenario import loads
from tests.helpers.scenarios import a100_switch

TABLES = (1000, 30, 7, 500, 60, 9, 4000, 12, 300, 80)
DIM, BOTTOM, TOP = 16, (32, 16), (64, 1)
SPEC = (f"{{ tables = {list(TABLES)}, dim = {DIM}, bottom = {list(BOTTOM)}, "
        f"top = {list(TOP)} }}")


def step(units: int, embeddings: str, batch: int = 120):
    text = a100_switch(units, "d") + (
        f'[workload.model]\nbatch = {batch}\nprecision = "fp32"\noptimizer = "sgd"\n'
        f"dlrm = {SPEC}\n[parallel]\nembeddings = \"{embeddings}\"\n")
    (s,) = loads(text)
    assert s.step is not None
    return s


def mlp(widths: tuple[int, ...]) -> int:
    return sum(a * b + b for a, b in zip(widths, widths[1:], strict=False))


def tasks_on(s, prefix: str) -> dict[int, list[int]]:
    g = s.graph
    out: dict[int, list[int]] = {}
    for i, name in enumerate(g.names):
        if name.startswith(prefix):
            out.setdefault(int(g.pin[i]), []).append(i)
    return out


@pytest.mark.parametrize("units", [2, 4, 5, 8])
def test_the_bottom_mlp_runs_on_unit_0_alone_over_the_global_batch(units: int) -> None:
    batch = 120
    s, plain = step(units, "sharded_bottom_first", batch), step(units, "sharded", batch)
    for phase in ("bottom.fwd", "bottom.bwd"):
        (only,) = tasks_on(s, phase).values()
        assert set(tasks_on(s, phase)) == {0} and len(only) == 1
        # the same layers over units x the samples of a data-parallel replica
        replica = tasks_on(plain, phase)[0][0]
        assert s.graph.flops[only[0]] == pytest.approx(units * plain.graph.flops[replica], rel=1e-12)


@pytest.mark.parametrize("units", [1, 2, 4, 5, 8])
def test_each_table_is_on_one_unit_and_unit_0_has_none_above_4(units: int) -> None:
    """Tables by NVIDIA's greedy rule, on P units up to 4 and on units 1..P-1 above."""
    s = step(units, "sharded_bottom_first")
    held = [m.weights_bytes for _, m in s.step.memory]
    tables = [r * DIM * 4 for r in TABLES]
    alone = units > BOTTOM_ALONE_ABOVE
    placed = place_tables(tables, units - 1 if alone else units)
    owners = ([[]] if alone else []) + placed
    assert sorted(t for mine in owners for t in mine) == list(range(len(TABLES)))
    for u, mine in enumerate(owners):
        dense = mlp((13, *BOTTOM)) if u == 0 else 0
        top = mlp((DIM + math.comb(len(TABLES) + 1, 2), *TOP))
        assert held[u] == pytest.approx(sum(tables[t] for t in mine) + (dense + top) * 4,
                                        rel=1e-12)


@pytest.mark.parametrize("units", [2, 8])
def test_memory_over_the_units_sums_to_the_tables_the_bottom_and_a_top_each(units: int) -> None:
    s = step(units, "sharded_bottom_first")
    weights = sum(m.weights_bytes for _, m in s.step.memory)
    top = mlp((DIM + math.comb(len(TABLES) + 1, 2), *TOP))
    assert weights == pytest.approx(
        (sum(TABLES) * DIM + mlp((13, *BOTTOM)) + units * top) * 4, rel=1e-12)
    # gradients and SGD state for the MLPs a unit runs only: the bottom's on unit 0
    grads = [m.gradients_bytes for _, m in s.step.memory]
    assert grads[0] - grads[1] == pytest.approx(mlp((13, *BOTTOM)) * 4, rel=1e-12)
    assert len(set(grads[1:])) == 1


def test_on_one_unit_it_is_the_sharded_step_exactly() -> None:
    a, b = step(1, "sharded_bottom_first"), step(1, "sharded")
    assert [m for _, m in a.step.memory] == [m for _, m in b.step.memory]
    assert np.array_equal(a.graph.flops, b.graph.flops)
    assert np.array_equal(a.graph.nbytes, b.graph.nbytes)


@settings(max_examples=12, deadline=None)
@given(st.integers(2, 8), st.sampled_from([8, 16, 32]))
def test_unit_0_sends_the_bottom_output_beside_its_tables_rows(units: int, local: int) -> None:
    """Theorem: in each all-to-all unit 0 sends (P - 1) / P of its vectors for the global
    batch, its tables' and the bottom MLP's output (DIM values a sample)."""
    batch = units * local
    s = step(units, "sharded_bottom_first", batch)
    g = s.graph
    alone = units > BOTTOM_ALONE_ABOVE
    tables = [r * DIM * 4 for r in TABLES]
    mine = [] if alone else place_tables(tables, units)[0]
    for direction in ("fwd", "bwd"):
        ours = np.array([n.startswith(f"a2a.{direction}") for n in g.names])
        across = ours[g.edge_src] & ours[g.edge_dst] & (g.pin[g.edge_src] != g.pin[g.edge_dst])
        sent = g.edge_bytes[across & (g.pin[g.edge_src] == 0)].sum()
        assert sent == pytest.approx((len(mine) + 1) * DIM * 4 * batch * (units - 1) / units,
                                     rel=1e-12)


def test_only_the_top_mlps_gradients_are_all_reduced() -> None:
    """The bottom MLP has one copy: the data-parallel ring carries the top MLP alone."""
    a, b = step(4, "sharded_bottom_first"), step(4, "sharded")
    ring = [np.array([n.startswith("dp.mlp") for n in s.graph.names]) for s in (a, b)]
    moved = [s.graph.edge_bytes[r[s.graph.edge_src] & r[s.graph.edge_dst]].sum()
             for s, r in zip((a, b), ring, strict=True)]
    top = mlp((DIM + math.comb(len(TABLES) + 1, 2), *TOP))
    assert moved[0] / moved[1] == pytest.approx(top / (top + mlp((13, *BOTTOM))), rel=1e-12)
