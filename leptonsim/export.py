"""Trace exporters: Chrome trace-event JSON (Perfetto, chrome://tracing) and CSV.

Every writer goes through `atomic_write`, so an exception mid-way never leaves a
partial or truncated file behind: the old file (if any) stays, or there is none.

Chrome trace layout (JSON object format of the "Trace Event Format" document):

* process 1 "units", or with a TraceView that knows nodes processes 1, 2, ... "node
  0", "node 1", ...: one thread (track) per compute unit that ran a task, in unit order;
* then process "links": one thread per link channel (one direction of a link) that
  carried a hop, in channel order; no track is declared for a unit or link without
  events (a symmetric run simulates one unit of each group);
* tasks and transfer hops are complete events (``"ph": "X"``) with ``ts`` and
  ``dur`` in microseconds; arrows and counters follow (chrome_extras).

Perfetto drops complete events on one thread that overlap without nesting, so when
events on a track overlap (e.g. two transfers sharing a link fairly) the extra
events go to overflow tracks named ``"<track> #2"``, ``"<track> #3"`` ... placed
right after their track. Every event is emitted exactly once.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from leptonsim.chrome_extras import Flows, flow_events, link_counters, memory_counters, task_args
from leptonsim.files import atomic_write
from leptonsim.trace import Trace, check_trace
from leptonsim.trace_view import TraceView

__all__ = [
    "atomic_write",
    "check_trace",
    "chrome_events",
    "chrome_trace",
    "write_chrome_trace",
    "write_tasks_csv",
    "write_transfers_csv",
    "TASK_CSV_COLUMNS",
    "TRANSFER_CSV_COLUMNS",
]

UNITS_PID = 1
LINKS_PID = 2
US_PER_S = 1e6

TASK_CSV_COLUMNS = ("task", "name", "kind", "unit", "unit_name", "start_s", "end_s", "duration_s")
TRANSFER_CSV_COLUMNS = (
    "src_task",
    "src_name",
    "dst_task",
    "dst_name",
    "channel",
    "channel_name",
    "nbytes",
    "start_s",
    "end_s",
    "duration_s",
)


# ---------------------------------------------------------------------------- chrome trace


def _lanes(track: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order events by (track, start, end, position) and give each a lane in its track.

    Within a track, events in one lane never overlap (touching is fine). Lane 0 is
    used whenever possible; the greedy interval partition uses the fewest lanes.
    Returns (order, lane) where lane[k] is the lane of event order[k].
    """
    n = len(track)
    order = np.lexsort((np.arange(n), end, start, track))
    lane = np.zeros(n, dtype=np.int64)
    if n == 0:
        return order, lane
    t, s, e = track[order], start[order], end[order]
    bounds = np.flatnonzero(np.diff(t)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, n], strict=True):
        if hi - lo < 2:
            continue
        ss, ee = s[lo:hi], e[lo:hi]
        if np.all(ss[1:] >= np.maximum.accumulate(ee[:-1])):
            continue  # the common case: no overlap on this track
        free: list[tuple[float, int]] = []  # (end of last event, lane)
        used = 0
        for k in range(hi - lo):
            if free and free[0][0] <= ss[k]:
                _, ln = heapq.heappop(free)
            else:
                ln = used
                used += 1
            lane[lo + k] = ln
            heapq.heappush(free, (float(ee[k]), ln))
    return order, lane


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": args}


def _number(x: float) -> float | int:
    """Integral byte counts print as integers; everything else stays a float."""
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else float(x)


class _Tracks:
    """Allocates tids (1, 2, ...) per process for each (track, lane) in track order,
    declaring only tracks that carry an event. `pid_of[i]` is track i's process."""

    def __init__(self, pid_of: np.ndarray, names: Sequence[str], track: np.ndarray,
                 lane: np.ndarray):
        n_lanes = np.zeros(len(names), dtype=np.int64)
        if len(track):
            np.maximum.at(n_lanes, track, lane + 1)
        self.first_tid = np.zeros(len(names), dtype=np.int64)
        self.meta: list[dict[str, Any]] = []
        next_tid: dict[int, int] = {}
        for i in np.flatnonzero(n_lanes).tolist():
            pid = int(pid_of[i])
            self.first_tid[i] = tid = next_tid.get(pid, 1)
            next_tid[pid] = tid + int(n_lanes[i])
            for ln in range(int(n_lanes[i])):
                label = names[i] if ln == 0 else f"{names[i]} #{ln + 1}"
                self.meta.append(_meta("thread_name", pid, tid + ln, {"name": label}))
                self.meta.append(_meta("thread_sort_index", pid, tid + ln,
                                       {"sort_index": tid + ln}))
        self.pids = sorted(next_tid)


CHUNK = 1 << 16  # rows converted to Python objects at a time: memory stays flat


def task_columns(trace: Trace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The one accessor the writers read task records through: (task, unit, start_s,
    end_s) arrays, one entry per executed task."""
    return (np.asarray(trace.task, dtype=np.int64), np.asarray(trace.task_unit, dtype=np.int64),
            np.asarray(trace.task_start, dtype=float), np.asarray(trace.task_end, dtype=float))


def transfer_columns(trace: Trace) -> tuple[np.ndarray, ...]:
    """Transfer-hop records: (src_task, dst_task, channel, nbytes, start_s, end_s)."""
    return (np.asarray(trace.xfer_src_task, dtype=np.int64),
            np.asarray(trace.xfer_dst_task, dtype=np.int64),
            np.asarray(trace.xfer_channel, dtype=np.int64),
            np.asarray(trace.xfer_bytes, dtype=float),
            np.asarray(trace.xfer_start, dtype=float), np.asarray(trace.xfer_end, dtype=float))


def _chunks(n: int, *cols: np.ndarray) -> Iterator[tuple[list[Any], ...]]:
    """The columns' rows `CHUNK` at a time, as Python lists (zip-ready)."""
    for lo in range(0, n, CHUNK):
        yield tuple(c[lo : lo + CHUNK].tolist() for c in cols)


@dataclass(frozen=True)
class _Layout:
    """Rows of one kind (tasks or hops) in file order, with each row's process and tid."""

    order: np.ndarray
    pid: np.ndarray
    tid: np.ndarray
    tracks: _Tracks


def _layout(track: np.ndarray, start: np.ndarray, end: np.ndarray, pid_of: np.ndarray,
            names: Sequence[str]) -> _Layout:
    order, lane = _lanes(track, start, end)
    tracks = _Tracks(pid_of, names, track[order], lane)
    tid = tracks.first_tid[track[order]] + lane if len(order) else lane
    return _Layout(order, pid_of[track[order]], tid, tracks)


def _unit_pids(trace: Trace, view: TraceView | None) -> tuple[np.ndarray, list[str]]:
    """Each unit's process and the processes' names: one per node when the view knows
    nodes, else the single process "units"."""
    n = len(trace.unit_names)
    if view is None or view.node is None or len(view.node) != n:
        return np.full(n, UNITS_PID, np.int64), ["units"]
    return UNITS_PID + np.asarray(view.node, np.int64), list(view.node_names)


def _task_events(trace: Trace, lay: _Layout, view: TraceView | None
                 ) -> Iterator[dict[str, Any]]:
    ids, unit, start, end = task_columns(trace)
    o = lay.order
    names, kinds, unit_names = trace.task_names, trace.task_kinds, trace.unit_names
    for ts, us, pids, tids, a, d in _chunks(len(o), ids[o], unit[o], lay.pid, lay.tid,
                                            start[o] * US_PER_S, (end[o] - start[o]) * US_PER_S):
        for t, u, p, i, b, du in zip(ts, us, pids, tids, a, d, strict=True):
            yield {"name": names[t], "cat": kinds[t], "ph": "X", "pid": p, "tid": i, "ts": b,
                   "dur": du, "args": task_args(view, t, unit_names[u])}


def _transfer_events(trace: Trace, lay: _Layout) -> Iterator[dict[str, Any]]:
    src, dst, _, nbytes, start, end = transfer_columns(trace)
    o, names = lay.order, trace.task_names
    for ss, ds, bs, tids, a, d in _chunks(len(o), src[o], dst[o], nbytes[o], lay.tid,
                                          start[o] * US_PER_S, (end[o] - start[o]) * US_PER_S):
        for i, j, b, t, ts, du in zip(ss, ds, bs, tids, a, d, strict=True):
            yield {"name": f"{names[i]}→{names[j]}", "cat": "transfer", "ph": "X",
                   "pid": int(lay.pid[0]), "tid": t, "ts": ts, "dur": du,
                   "args": {"bytes": _number(b), "src_task": i, "dst_task": j}}


def _flow_events(trace: Trace, tasks: _Layout, hops: _Layout, flows: Flows
                 ) -> Iterator[dict[str, Any]]:
    """The arrows (chrome_extras.Flows), each end on its slice's midpoint."""
    if not flows.total:
        return
    _, _, start, end = task_columns(trace)
    mid = (start + end) / 2 * US_PER_S
    at = np.empty(len(tasks.order), np.int64)
    at[tasks.order] = np.arange(len(tasks.order))  # task row -> position in file order
    src, dst = flows.ends()
    task_slot = {t: (int(tasks.pid[at[r]]), int(tasks.tid[at[r]]), float(mid[r]))
                 for t in set(src.tolist()) | set(dst.tolist()) for r in [int(flows.row[t])]}
    rank = np.empty(len(hops.order), np.int64)
    rank[hops.order] = np.arange(len(hops.order))  # hop row -> position in file order
    hmid = (np.asarray(trace.xfer_start, float) + np.asarray(trace.xfer_end, float)) / 2
    hop_slot = [(int(hops.pid[rank[h]]), int(hops.tid[rank[h]]), float(hmid[h]) * US_PER_S)
                for h in flows.hops.tolist()]
    yield from flow_events(flows, task_slot, hop_slot)


def _other_data(trace: Trace, flows: Flows | None = None) -> dict[str, Any]:
    flows = flows or Flows(trace)
    return {
        "generator": "leptonsim",
        "makespan_s": trace.makespan_s,
        "units": len(trace.unit_names),
        "channels": len(trace.channel_names),
        "tasks": len(trace.task),
        "transfer_hops": len(trace.xfer_channel),
        "dependency_arrows": len(flows.pair),
        "dependency_arrows_left_out": flows.total - len(flows.pair),
    }


def chrome_events(trace: Trace, view: TraceView | None = None) -> Iterator[dict[str, Any]]:
    """The trace's events one at a time, in file order: metadata events first (a process
    per node, or "units", then "links"; a track per unit or link direction that carries
    an event), then task events ordered by (unit, start, end), transfer hops ordered by
    (channel, start, end), dependency arrows, link and memory counters
    (chrome_extras). Only the sort orders are held whole (NumPy arrays); each event is
    made when it is consumed, so a writer holds one chunk of rows, never every event.
    `view` (trace_view.view_of) adds nodes, task args and memory; raises ValueError if
    the trace is inconsistent (see `check_trace`)."""
    check_trace(trace)
    _, unit, t_start, t_end = task_columns(trace)
    pid_of, proc_names = _unit_pids(trace, view)
    links_pid = UNITS_PID + len(proc_names)
    tasks = _layout(unit, t_start, t_end, pid_of, trace.unit_names)
    chan, x_start, x_end = transfer_columns(trace)[2], trace.xfer_start, trace.xfer_end
    hops = _layout(chan, np.asarray(x_start, float), np.asarray(x_end, float),
                   np.full(len(trace.channel_names), links_pid, np.int64), trace.channel_names)
    procs = [(p, proc_names[p - UNITS_PID]) for p in tasks.tracks.pids]
    for pid, name in procs + [(links_pid, "links")] * bool(hops.tracks.pids):
        yield _meta("process_name", pid, 0, {"name": name})
        yield _meta("process_sort_index", pid, 0, {"sort_index": pid})
    yield from tasks.tracks.meta
    yield from hops.tracks.meta
    yield from _task_events(trace, tasks, view)
    yield from _transfer_events(trace, hops)
    yield from _flow_events(trace, tasks, hops, Flows(trace))
    yield from link_counters(trace, links_pid, trace.channel_names)
    if view is not None:
        ran = {u: (int(pid_of[u]), 0) for u in np.unique(unit).tolist()}
        yield from memory_counters(view, ran, trace.unit_names)


def chrome_trace(trace: Trace, view: TraceView | None = None) -> dict[str, Any]:
    """The trace as a Chrome trace-event JSON object (opens in Perfetto / chrome://tracing),
    in memory: `write_chrome_trace` streams the same events instead.

    Deterministic: the same trace always gives equal dicts (and byte-identical JSON
    from `write_chrome_trace`); event order as `chrome_events`.
    """
    events = list(chrome_events(trace, view))
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": _other_data(trace)}


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_dump = _ENCODER.encode


def chrome_chunks(trace: Trace, view: TraceView | None = None) -> Iterator[str]:
    """The trace's JSON text piece by piece: compact, one event per line (diffable),
    each event encoded as `chrome_events` makes it."""
    yield '{"displayTimeUnit":"ms","otherData":' + _dump(_other_data(trace))
    yield ',"traceEvents":['
    sep = "\n"
    lines: list[str] = []
    for event in chrome_events(trace, view):
        lines.append(sep + _dump(event))
        sep = ",\n"
        if len(lines) == 4096:  # one write per few hundred kB
            yield "".join(lines)
            lines.clear()
    yield "".join(lines) + "\n]}\n"


TRACE_FORMATS = ("json", "json.gz")


def write_chrome_trace(trace: Trace, path: str | os.PathLike[str],
                       view: TraceView | None = None) -> Path:
    """Stream the trace as UTF-8 JSON to `path` atomically, gzip-compressed if `path`
    ends in .gz (Perfetto and chrome://tracing open .json.gz as they are). The bytes
    are deterministic: the gzip header carries no name and no time."""
    if not str(path).endswith(".gz"):
        return atomic_write(path, lambda f: f.writelines(chrome_chunks(trace, view)))

    def writer(f: IO[bytes]) -> None:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=6, mtime=0) as z:
            for chunk in chrome_chunks(trace, view):
                z.write(chunk.encode("utf-8"))

    return atomic_write(path, writer, binary=True)


# ---------------------------------------------------------------------------- CSV


def write_tasks_csv(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """One row per executed task, in trace order; columns `TASK_CSV_COLUMNS`."""
    check_trace(trace)
    ids, unit, start, end = task_columns(trace)
    names, kinds, unit_names = trace.task_names, trace.task_kinds, trace.unit_names

    def writer(f: IO[str]) -> None:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(TASK_CSV_COLUMNS)
        for rows in _chunks(len(ids), ids, unit, start, end, end - start):
            w.writerows((t, names[t], kinds[t], u, unit_names[u], s, e, d)
                        for t, u, s, e, d in zip(*rows, strict=True))

    return atomic_write(path, writer)


def write_transfers_csv(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """One row per transfer hop, in trace order; columns `TRANSFER_CSV_COLUMNS`."""
    check_trace(trace)
    src, dst, chan, nbytes, start, end = transfer_columns(trace)
    names, channel_names = trace.task_names, trace.channel_names

    def writer(f: IO[str]) -> None:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(TRANSFER_CSV_COLUMNS)
        for rows in _chunks(len(src), src, dst, chan, nbytes, start, end, end - start):
            w.writerows((s, names[s], d, names[d], c, channel_names[c], b, a, e, du)
                        for s, d, c, b, a, e, du in zip(*rows, strict=True))

    return atomic_write(path, writer)
