"""The Gantt chart's phases (gantt_phases.py) and their colours (figure_style.py)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_hex, to_rgba

from leptonsim.figure_style import MAKESPAN, PHASE_PALETTE, SHADES, shade
from leptonsim.gantt_phases import PHASES, SHADED, micro_batch, phase, task_phases, transfer_phases
from leptonsim.plots import gantt
from leptonsim.trace import Trace

# (kind, name) as the step graphs of the bundled scenarios make them
CASES = [
    ("dense", "F.d0.layer.5.ffn.proj.k0.t0", "forward"),
    ("gemm.overlapped", "F.d0.layer.2.attn.qkv.k3.t1", "forward"),
    ("dense.bwd", "B.d0.layer.5.ffn.proj.k0.t0", "backward"),
    ("gemm.overlapped", "B.d0.layer.2.attn.qkv.k3.t1", "backward"),
    ("ring_allreduce", "dp.s0.t0.147.r4.s15", "all-reduce"),
    ("hierarchical_allreduce", "dp.s0.t0.1.n0.rs.r1.s0", "all-reduce"),
    ("tp_allreduce+allreduce", "tp.allreduce+allreduce.d0.s10.16377", "all-reduce"),
    ("tp_reducescatter+allreduce", "tp.reducescatter+allreduce.d0.s0.7", "all-gather / reduce-scatter"),
    ("ring_reduce_scatter", "dp.s6.t0.404.wait.r0", "all-gather / reduce-scatter"),
    ("tp_allgather+reducescatter", "tp.allgather+reducescatter.d0.s1.9", "all-gather / reduce-scatter"),
    ("all_to_all", "F.k0.dispatch.r3", "all-to-all"),
    ("cp_ring", "cp.F.attn.d0.k0.t0.1.c2", "p2p / transfer"),
    ("ring_exchange", "attn.qkv.step1.r0", "p2p / transfer"),
    ("host", "activations.d0.244.k0.t0", "p2p / transfer"),
    ("host", "offload.d0.s0.t0.adam.257", "optimizer"),
    ("optimizer", "optimizer.d0.s0.t0", "optimizer"),
    ("task", "t24", "other"),
    ("join", "join.attn", "other"),
]


@pytest.mark.parametrize(("kind", "name", "expected"), CASES)
def test_phase_of_the_step_graphs_kinds(kind: str, name: str, expected: str) -> None:
    assert phase(kind, name) == expected


@given(st.text(max_size=20), st.text(max_size=30))
def test_every_task_has_one_of_the_phases(kind: str, name: str) -> None:
    assert phase(kind, name) in PHASES


@given(st.sampled_from(["allreduce", "allgather", "reducescatter"]),
       st.lists(st.sampled_from(["allreduce", "allgather", "reducescatter"]), max_size=3))
def test_a_fused_kind_is_its_first_collective(first: str, rest: list[str]) -> None:
    fused = phase("tp_" + "+".join([first, *rest]), "tp.x")
    assert fused == phase(f"tp_{first}", "tp.x") != "other"


@given(st.integers(0, 10**6), st.sampled_from("FB"), st.integers(0, 64))
def test_micro_batch_is_the_k_part_of_forward_and_backward_names(k: int, fb: str, t: int) -> None:
    assert micro_batch(f"{fb}.d0.layer.3.mlp.k{k}.t{t}") == k
    assert micro_batch(f"tp.allreduce.d0.k{k}") == -1  # not a forward or backward task
    assert micro_batch(f"{fb}.d0.layer.3.mlp") == -1


def _trace(kinds: list[str], names: list[str], hops: list[tuple[int, int]]) -> Trace:
    n, h = len(names), len(hops)
    src, dst = (np.array([p[i] for p in hops], np.int64).reshape(h) for i in (0, 1))
    return Trace(task_names=names, task_kinds=kinds, unit_names=["u"], channel_names=["c"],
                 task=np.arange(n), task_unit=np.zeros(n, np.int64),
                 task_start=np.zeros(n), task_end=np.ones(n), xfer_src_task=src,
                 xfer_dst_task=dst, xfer_channel=np.zeros(h, np.int64),
                 xfer_bytes=np.ones(h), xfer_start=np.zeros(h), xfer_end=np.ones(h))


def test_a_hop_serves_its_collective_else_it_is_point_to_point() -> None:
    trace = _trace(["dense", "dense", "ring_allreduce", "all_to_all"],
                   ["F.d0.a.k0.t0", "F.d0.b.k1.t0", "dp.r0.s0", "F.k0.dispatch.r0"],
                   [(0, 1), (0, 2), (2, 1), (3, 2)])
    ph, mb = task_phases(trace)
    assert [PHASES[p] for p in ph] == ["forward", "forward", "all-reduce", "all-to-all"]
    assert mb.tolist() == [0, 1, -1, -1]
    hops = [PHASES[p] for p in transfer_phases(trace, ph)]
    assert hops == ["p2p / transfer", "all-reduce", "all-reduce", "all-reduce"]  # dst first


def test_the_colours_drawn_are_far_apart() -> None:
    """Every phase's colour, the forward and backward shades and the makespan line are
    pairwise at least 0.15 apart in RGB (Okabe-Ito's closest pair, vermillion and
    orange, is 0.26): a colour names one thing (issue 17: three greys)."""
    assert len(PHASE_PALETTE) == len(PHASES)
    drawn = [np.array(to_rgba(c)) for c in (*PHASE_PALETTE, MAKESPAN)]
    drawn += [np.array(shade(PHASE_PALETTE[PHASES.index(p)], i))
              for p in SHADED for i in range(1, SHADES)]
    gaps = [np.linalg.norm(a - b) for a, b in itertools.combinations(drawn, 2)]
    assert min(gaps) >= 0.15
    assert all(shade(c, 0) == to_rgba(c) for c in PHASE_PALETTE)  # shade 0: the colour


KINDS = [(k, n) for k, n, _ in CASES]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.booleans()), min_size=1, max_size=12),
       st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=6))
def test_the_legend_lists_exactly_the_phases_drawn(
        tasks: list[tuple[tuple[str, str], bool]], hops: list[tuple[int, int]]) -> None:
    """Legend entries = the phases of the bars of positive length (tasks and hops), in
    PHASES order, then the makespan; each entry's colour is its phase's."""
    n = len(tasks)
    hops = [(a % n, b % n) for a, b in hops]
    names = [f"{name}.{i}" for i, ((_, name), _) in enumerate(tasks)]  # one name per task
    trace = _trace([kind for (kind, _), _ in tasks], names, hops)
    long = np.array([lg for _, lg in tasks])  # the others last 0 s: they draw no bar
    trace = dataclasses.replace(trace, task_end=long.astype(float))
    ph, _ = task_phases(trace)
    want = {int(p) for p in ph[long]} | set(transfer_phases(trace, ph).tolist())
    legend = gantt(trace, "p").axes[0].get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[:-1] == [PHASES[p] for p in sorted(want)]
    assert labels[-1].startswith("makespan")
    faces = [to_hex(h.get_facecolor()) for h in legend.legend_handles[:-1]]
    assert faces == [to_hex(PHASE_PALETTE[p]) for p in sorted(want)]
