"""Real execution on worker processes (issue 3, part 3): the measured Trace obeys the
simulator's invariants, moves exactly the bytes the graph says, and works with every
consumer of a Trace."""

from __future__ import annotations

import time

import numpy as np
import pytest

from leptonsim import metrics
from leptonsim.cost import Roofline
from leptonsim.execute import ExecutionError, SyntheticKernels, execute, kernels, run_workers
from leptonsim.export import write_chrome_trace
from leptonsim.generators import TaskCost, chain, fork_join, independent
from leptonsim.graph import GraphBuilder, TaskGraph
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate, switch
from leptonsim.plots import gantt
from tests.helpers.execute import CallLimit, Failing, PatternKernels
from tests.helpers.traces import check_trace_invariants

CORE = ComputeUnit("core", 1e11, 2e10)
SHM = LinkSpec(2e-5, 4e9)


def cluster(n: int = 2):
    return fully_connected(replicate(CORE, n, "w"), SHM)


def mixed_graph() -> TaskGraph:
    """Same-worker and cross-worker edges, with and without bytes, odd sizes."""
    b = GraphBuilder()
    for i, (flops, pin) in enumerate([(1e6, 0), (2e6, 1), (1e5, 0), (3e6, 1), (1e6, 0), (1e6, 1)]):
        b.task(f"t{i}", flops=flops, pin=pin, kind="fwd" if i % 2 else "bwd")
    for src, dst, nbytes in [(0, 1, 4096), (0, 2, 1000), (1, 3, 0), (2, 3, 12345), (1, 4, 0),
                             (3, 4, 1), (3, 5, 70000), (4, 5, 333)]:
        b.edge(src, dst, nbytes)
    return b.build()


def crossing(graph: TaskGraph, placement: np.ndarray) -> set[tuple[int, int, float]]:
    return {(int(s), int(d), float(n)) for s, d, n in
            zip(graph.edge_src, graph.edge_dst, graph.edge_bytes, strict=True)
            if placement[s] != placement[d] and n > 0}


def transfers(trace) -> set[tuple[int, int, float]]:
    return {(r.src_task, r.dst_task, r.nbytes) for r in trace.transfer_rows()}


@pytest.mark.parametrize("graph", [
    chain(8, TaskCost(flops=2e6), edge_bytes=65536),
    fork_join(3, 2, TaskCost(flops=1e6, spread=0.5), edge_bytes=10_000, seed=3),
    mixed_graph(),
], ids=["chain", "fork_join", "mixed"])
def test_trace_obeys_invariants_and_moves_exactly_the_crossing_bytes(graph):
    placement = graph.pin if (graph.pin >= 0).all() else np.arange(graph.size) % 2
    run = run_workers(graph, placement, 2, verify=True)
    trace = run.trace
    check_trace_invariants(graph, trace)  # once each, no overlaps, data before use
    assert transfers(trace) == crossing(graph, placement)
    assert len(trace.xfer_channel) == len(crossing(graph, placement))
    assert run.verified_transfers == len(trace.xfer_channel)  # checksums matched
    assert np.array_equal(trace.task_unit, placement[trace.task])
    assert trace.channel_names == ["w0→w1", "w1→w0"]
    assert all((placement[r.src_task], placement[r.dst_task]) == [(0, 1), (1, 0)][r.channel]
               for r in trace.transfer_rows())


@pytest.mark.parametrize("longer", [False, True])
def test_consumers_receive_the_producers_bytes(longer):
    graph = fork_join(3, 2, TaskCost(flops=1e5), edge_bytes=4 * 1000)
    placement = np.arange(graph.size) % 2
    trace = execute(graph, placement, 2, kernels=PatternKernels(longer, placement))
    assert len(trace.task) == graph.size  # every check ran inside the workers


@pytest.mark.parametrize("warmup", [1, 2])
def test_warmup_runs_the_whole_graph_before_the_timed_run(warmup):
    graph = mixed_graph()
    trace = execute(graph, graph.pin, 2, kernels=CallLimit(warmup + 1), warmup=warmup)
    check_trace_invariants(graph, trace)  # the timed run alone: each task once
    assert transfers(trace) == crossing(graph, graph.pin)
    with pytest.raises(ExecutionError, match="called"):
        execute(graph, graph.pin, 2, kernels=CallLimit(warmup), warmup=warmup)
    placement = np.arange(graph.size) % 2  # and every run moves the right bytes
    run = run_workers(graph, placement, 2, kernels=PatternKernels(True, placement),
                      verify=True, warmup=warmup)
    assert run.verified_transfers == len(crossing(graph, placement))


def test_a_failing_kernel_is_reported_not_hung():
    graph = chain(4, TaskCost(flops=1e3), edge_bytes=8)
    with pytest.raises(ExecutionError, match="kernel 2 broke"):
        execute(graph, np.array([0, 1, 0, 1]), 2, kernels=Failing())


def test_workers_share_one_clock():
    """A 30 ms busy task on w0 feeds w1: w1's start (its own clock reading) follows
    w0's end (w0's reading) by no more than a transfer's latency and a poll."""
    b = GraphBuilder()
    b.task("spin", duration_s=0.03, pin=0)
    b.task("after", flops=1e3, pin=1)
    b.edge("spin", "after", 64)
    graph = b.build()
    trace = execute(graph, graph.pin, 2)
    start = dict(zip(trace.task.tolist(), trace.task_start.tolist(), strict=True))
    end = dict(zip(trace.task.tolist(), trace.task_end.tolist(), strict=True))
    assert end[0] - start[0] >= 0.03
    assert end[0] <= trace.xfer_start[0] <= trace.xfer_end[0] <= start[1]
    assert start[1] - end[0] < 0.5  # same clock: no offset between the processes
    assert time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)"


def test_blas_is_single_threaded_in_workers():
    run = run_workers(chain(2, TaskCost(flops=1e6)), np.array([0, 1]), 2)
    assert [b["threads"] for b in run.blas] == [1, 1]
    assert all(b["source"] == "threadpoolctl" for b in run.blas)


def test_trace_works_with_metrics_export_and_plots(tmp_path):
    graph = mixed_graph()
    c = cluster()
    trace = execute(graph, graph.pin, cluster=c)
    times = Roofline().task_times(graph, c)
    m = metrics.compute(graph, c, times, trace)
    assert m.makespan_s == trace.makespan_s > 0
    assert m.transfer_bytes == sum(n for *_, n in crossing(graph, graph.pin))
    assert sum(u.tasks for u in m.units) == graph.size
    assert write_chrome_trace(trace, tmp_path / "trace.json").stat().st_size > 0
    assert gantt(trace, "measured").axes
    assert list(trace.channel_names) == [ch.name for ch in c.channels]


def test_cluster_channels_are_the_routes_first_hops():
    c = switch(replicate(CORE, 3, "w"), SHM)
    graph = fork_join(2, 1, TaskCost(flops=1e4), edge_bytes=100)  # 0 → {1, 2} → 3
    placement = np.array([0, 1, 2, 0])
    trace = execute(graph, placement, cluster=c)
    check_trace_invariants(graph, trace)
    for r in trace.transfer_rows():
        assert r.channel == c.route(int(placement[r.src_task]), int(placement[r.dst_task]))[0]


def test_fixed_duration_tasks_take_their_duration_and_comm_tasks_nothing(monkeypatch):
    b = GraphBuilder()
    b.task("wait", duration_s=0.02, pin=0)
    b.task("allreduce", duration_s=5.0, comm=True, pin=0)
    graph = b.build()
    trace = execute(graph, np.array([0, 0]), 1)
    took = trace.task_end - trace.task_start
    assert took[trace.task == 0][0] >= 0.02
    # that the stand-in computes nothing is a property of its kernel, not a timing
    spins: list[float] = []
    monkeypatch.setattr(kernels, "_spin", lambda d, out, inputs: spins.append(d) or out)
    source = SyntheticKernels()
    source.prepare(graph, 1)([])
    assert spins == []
    source.prepare(graph, 0)([])
    assert spins == [0.02]


def test_a_worker_runs_its_ready_tasks_in_priority_order():
    graph = independent(6, TaskCost(flops=1e4))
    placement = np.array([0, 1, 0, 1, 0, 1])
    priority = np.array([5, 4, 3, 2, 1, 0])  # as a Plan would give it
    trace = execute(graph, placement, 2, priority=priority)
    for w in (0, 1):
        mine = trace.task[trace.task_unit == w]
        assert mine.tolist() == sorted(mine.tolist(), key=lambda t: priority[t])


@pytest.mark.parametrize("placement, match", [
    (np.array([0, 2]), "outside 0..1"), (np.array([0]), "one integer unit per task"),
    (np.array([-1, 0]), "outside"),
])
def test_bad_placements_are_refused(placement, match):
    with pytest.raises(ValueError, match=match):
        execute(chain(2, TaskCost(flops=1.0)), placement, 2)
