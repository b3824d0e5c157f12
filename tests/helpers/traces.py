"""Invariants every trace must satisfy, shared by the engine, execution and golden tests;
hand-made traces (make_trace) and random ones (traces) for the export and format tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from leptonsim.trace import Trace

REL = 1e-9


def _overlaps(resource: np.ndarray, start: np.ndarray, end: np.ndarray) -> bool:
    order = np.lexsort((start, resource))
    r, s, e = resource[order], start[order], end[order]
    same = r[1:] == r[:-1]
    return bool(np.any(same & (s[1:] < e[:-1] - 1e-12 * np.maximum(1, e[:-1]))))


def check_trace_invariants(graph, trace: Trace, exclusive_channels: bool = True) -> None:
    """Every task once; no unit (and, unless links are shared, no link direction) does
    two things at once (a zero-duration task is an instant, run beside the compute as
    NCCL's ring steps are: sim.engine); no task starts before its predecessors end and
    their data has arrived."""
    assert np.array_equal(np.sort(trace.task), np.arange(graph.size))
    busy = trace.task_end > trace.task_start
    assert not _overlaps(trace.task_unit[busy], trace.task_start[busy], trace.task_end[busy])
    if exclusive_channels:
        assert not _overlaps(trace.xfer_channel, trace.xfer_start, trace.xfer_end)
    start, end, unit = (np.empty(graph.size), np.empty(graph.size),
                        np.empty(graph.size, np.int64))
    start[trace.task], end[trace.task], unit[trace.task] = (
        trace.task_start, trace.task_end, trace.task_unit)
    src, dst = graph.edge_src, graph.edge_dst
    assert np.all(start[dst] >= end[src])
    # per (producer, consumer) pair: when its first hop left and its last hop arrived
    pair = trace.xfer_src_task * graph.size + trace.xfer_dst_task
    keys, which = np.unique(pair, return_inverse=True)
    first = np.full(len(keys), np.inf)
    last = np.full(len(keys), -np.inf)
    np.minimum.at(first, which, trace.xfer_start)
    np.maximum.at(last, which, trace.xfer_end)
    moved = (unit[src] != unit[dst]) & (graph.edge_bytes > 0)
    wanted = src[moved] * graph.size + dst[moved]
    assert len(keys) or not len(wanted), "an edge crossed units without a transfer"
    at = np.searchsorted(keys, wanted)
    found = (at < len(keys)) & (keys[np.minimum(at, len(keys) - 1)] == wanted)
    assert found.all(), "an edge crossed units without a transfer"
    assert np.all(first[at] >= end[src[moved]])
    assert np.all(last[at] <= start[dst[moved]])


def ready_times(graph, trace: Trace) -> np.ndarray:
    """Per task id: when its last input was in (producer's end, or last hop's end)."""
    end = np.empty(graph.size)
    end[trace.task] = trace.task_end
    ready = np.zeros(graph.size)
    np.maximum.at(ready, graph.edge_dst, end[graph.edge_src])
    np.maximum.at(ready, trace.xfer_dst_task, trace.xfer_end)
    return ready


def check_work_conserving(graph, trace: Trace) -> None:
    """Between a task's ready time and its start, its unit is never idle."""
    ready = ready_times(graph, trace)
    for u in np.unique(trace.task_unit).tolist():
        mine = trace.task_unit == u
        order = np.argsort(trace.task_start[mine], kind="stable")
        start, end = trace.task_start[mine][order], trace.task_end[mine][order]
        idle_from, idle_to = [0.0, *end[:-1].tolist()], start.tolist()
        gaps = [(a, b) for a, b in zip(idle_from, idle_to, strict=True) if b > a * (1 + REL) + 1e-15]
        for t, s in zip(trace.task[mine].tolist(), trace.task_start[mine].tolist(), strict=True):
            r = ready[t] * (1 + REL)
            assert not [g for g in gaps if g[0] < s and g[1] > r], (
                f"unit {u} idle during {gaps} while task {t} was ready at {ready[t]} (start {s})")


def make_trace(
    tasks: list[tuple[int, int, float, float]],
    xfers: list[tuple[int, int, int, float, float, float]],
    *,
    n_names: int | None = None,
    units: int = 2,
    channels: int = 2,
) -> Trace:
    """tasks: (task, unit, start, end); xfers: (src, dst, channel, bytes, start, end)."""
    n = n_names if n_names is not None else max([t[0] for t in tasks] + [-1]) + 1
    kinds = ["fwd", "bwd", "opt"]
    t = np.array(tasks, dtype=float).reshape(-1, 4)
    x = np.array(xfers, dtype=float).reshape(-1, 6)
    return Trace(
        task_names=[f"t{i}" for i in range(n)],
        task_kinds=[kinds[i % 3] for i in range(n)],
        unit_names=[f"gpu{u}" for u in range(units)],
        channel_names=[f"nvlink{c // 2} gpu{c % 2}→gpu{1 - c % 2}" for c in range(channels)],
        task=t[:, 0].astype(np.int64),
        task_unit=t[:, 1].astype(np.int64),
        task_start=t[:, 2],
        task_end=t[:, 3],
        xfer_src_task=x[:, 0].astype(np.int64),
        xfer_dst_task=x[:, 1].astype(np.int64),
        xfer_channel=x[:, 2].astype(np.int64),
        xfer_bytes=x[:, 3],
        xfer_start=x[:, 4],
        xfer_end=x[:, 5],
    )


def base(name: str) -> str:
    head, sep, tail = name.rpartition(" #")
    return head if sep and tail.isdigit() else name


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    n_names = draw(st.integers(1, 8))
    units = draw(st.integers(1, 4))
    channels = draw(st.integers(0, 4))
    time = st.floats(0.0, 100.0, allow_nan=False, allow_infinity=False)
    tasks = []
    for _ in range(draw(st.integers(0, 15))):
        a, b = sorted((draw(time), draw(time)))
        tasks.append((draw(st.integers(0, n_names - 1)), draw(st.integers(0, units - 1)), a, b))
    xfers = []
    for _ in range(draw(st.integers(0, 15)) if channels else 0):
        a, b = sorted((draw(time), draw(time)))
        xfers.append(
            (
                draw(st.integers(0, n_names - 1)),
                draw(st.integers(0, n_names - 1)),
                draw(st.integers(0, channels - 1)),
                draw(st.floats(0.0, 1e12, allow_nan=False)),
                a,
                b,
            )
        )
    return make_trace(tasks, xfers, n_names=n_names, units=units, channels=channels)
