"""Collectives are communication in every mode: a symmetric tensor-parallel run reports
the metrics and energy of the same step simulated rank by rank (tp_mode = "full")."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.result import run
from leptonsim.scenario import loads
from tests.helpers.scenarios import a100_switch

REL = 1e-9


def _layers(blocks: int, heads: int, head_dim: int, seq: int, ffn: int) -> str:
    """A pre-LN transformer of `blocks` blocks declared op by op, ending in a
    vocabulary-parallel head (an all-gather) and the loss."""
    hidden = heads * head_dim
    block = (f'{{ op = "layernorm" }}, {{ op = "attention", heads = {heads} }}, '
             f'{{ op = "layernorm" }}, {{ op = "dense", units = {ffn * hidden} }}, '
             f'{{ op = "gelu" }}, {{ op = "dense", units = {hidden} }}')
    head = f'{{ op = "dense", units = {2 * hidden}, use_bias = false }}, {{ op = "softmax_xent" }}'
    return (f"input_shape = [{seq}, {hidden}]\n"
            f"layers = [{', '.join([block] * blocks)}, {head}]")


def _zero_or(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Zero, or a physical magnitude: a tiny subnormal latency is a refused input."""
    return st.one_of(st.just(0.0), st.floats(lo, hi))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, int]:
    heads = draw(st.sampled_from([2, 4, 6, 8]))
    tp = draw(st.sampled_from([t for t in (2, 3, 4, 6, 8) if heads % t == 0]))
    if draw(st.booleans()):
        model = _layers(draw(st.integers(1, 3)), heads, draw(st.sampled_from([8, 16])),
                        draw(st.sampled_from([8, 16, 32])), draw(st.integers(1, 4)))
    else:
        model = 'name = "bert_base"'
        tp = draw(st.sampled_from([2, 3, 4]))
    m = draw(st.integers(1, 3))
    training = draw(st.booleans())
    text = f"""
[scenario]
name = "theorem"
[hardware]
topology = "{draw(st.sampled_from(['full', 'switch']))}"
[[hardware.units]]
name = "gpu"
count = {tp}
peak = "{draw(st.floats(1, 300)):.6g} TFLOP/s"
memory_bandwidth = "{draw(st.floats(0.1, 3)):.6g} TB/s"
memory = "80 GB"
efficiency = {draw(st.floats(0.2, 1)):.6g}
overhead = "{draw(_zero_or(0.01, 20)):.6g} us"
idle_power = "{draw(_zero_or(0.01, 100)):.6g} W"
busy_power = "{draw(st.floats(100, 500)):.6g} W"
[hardware.link]
latency = "{draw(_zero_or(0.01, 10)):.6g} us"
bandwidth = "{draw(st.floats(1, 600)):.6g} GB/s"
energy_per_byte = "{draw(_zero_or(0.01, 50)):.6g} pJ/B"
[workload.model]
{model}
batch = {m * draw(st.integers(1, 2))}
microbatches = {m}
training = {str(training).lower()}
[parallel]
tp = {tp}
tp_mode = "MODE"
"""
    return text, tp


def _run(text: str, mode: str):
    return run(loads(text.replace("MODE", mode))[0])


@settings(max_examples=25, deadline=None)
@given(scenarios())
def test_symmetric_reports_the_metrics_and_energy_of_full(case):
    """Theorem: with nothing but a group's own collectives on its links, symmetric and
    full runs of one step agree on makespan, total work, critical path, utilisation,
    parallel efficiency and every part of the energy, to 1e-9 relative."""
    text, tp = case
    full, sym = _run(text, "full"), _run(text, "symmetric")
    assert sym.scenario.graph.comm.any() and not full.scenario.graph.comm.any()
    f, s = full.metrics, sym.metrics
    for name in ("makespan_s", "total_work_s", "critical_path_s", "speedup",
                 "parallel_efficiency", "capacity"):
        assert getattr(s, name) == pytest.approx(getattr(f, name), rel=REL), name
    assert [u.busy_s for u in s.units] == pytest.approx([u.busy_s for u in f.units], rel=REL)
    assert [u.utilization for u in s.units] == pytest.approx(
        [u.utilization for u in f.units], rel=REL)
    for part in ("compute_j", "idle_j", "network_j", "total_j"):
        assert getattr(sym.energy, part) == pytest.approx(getattr(full.energy, part),
                                                          rel=REL, abs=1e-15), part
    verdicts = [(r.name, r.prediction, r.within_bounds) for r in full.formulas]
    assert [(r.name, r.within_bounds) for r in sym.formulas] == [(n, w) for n, _, w in verdicts]
    assert [r.prediction for r in sym.formulas] == pytest.approx([p for _, p, _ in verdicts],
                                                                 rel=REL)


def test_a_collapsed_collective_is_no_work_and_keeps_no_unit_busy():
    """The issue's example, bert_base at tp 4: the collectives were 7.8 ms of 'work',
    every unit 100 % busy, and moved no byte over the network."""
    sym = _run(_bert(4), "symmetric")
    graph = sym.scenario.graph
    comm_s = float(graph.duration_s[graph.comm].sum())
    assert comm_s > 0
    assert sym.metrics.total_work_s == pytest.approx(_run(_bert(4), "full").metrics.total_work_s,
                                                     rel=REL)
    # busy while computing only: at most the step's time outside its collectives
    assert all(u.busy_s <= (sym.metrics.makespan_s - comm_s) * (1 + REL) for u in sym.metrics.units)
    assert all(u.busy_s < sym.metrics.makespan_s for u in sym.metrics.units)
    assert sym.energy.network_j > 0


def _bert(tp: int) -> str:
    return a100_switch(tp, "bert") + f"""[workload.model]
name = "bert_base"
batch = 8
[parallel]
tp = {tp}
tp_mode = "MODE"
"""
