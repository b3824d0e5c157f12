"""Trace exporters: Chrome trace-event JSON (Perfetto, chrome://tracing) and CSV.

Every writer goes through `atomic_write`, so an exception mid-way never leaves a
partial or truncated file behind: the old file (if any) stays, or there is none.

Chrome trace layout (JSON object format of the "Trace Event Format" document):

* process 1 "units": one thread (track) per compute unit, in unit order;
* process 2 "links": one thread per link channel (one direction of a link), in
  channel order;
* tasks and transfer hops are complete events (``"ph": "X"``) with ``ts`` and
  ``dur`` in microseconds.

Perfetto drops complete events on one thread that overlap without nesting, so when
events on a track overlap (e.g. two transfers sharing a link fairly) the extra
events go to overflow tracks named ``"<track> #2"``, ``"<track> #3"`` ... placed
right after their track. Every event is emitted exactly once.
"""

from __future__ import annotations

import csv
import heapq
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from leptonsim.files import atomic_write
from leptonsim.trace import Trace

__all__ = [
    "atomic_write",
    "check_trace",
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


# ---------------------------------------------------------------------------- checks


def check_trace(trace: Trace) -> None:
    """Raise ValueError unless the trace's columns are consistent and exportable.

    Checks column lengths, that task / unit / channel indices are in range, and that
    times are finite with end >= start.
    """
    n_task = len(trace.task)
    for col in ("task_unit", "task_start", "task_end"):
        if len(getattr(trace, col)) != n_task:
            raise ValueError(
                f"trace.{col} has {len(getattr(trace, col))} entries, expected {n_task}"
            )
    n_xfer = len(trace.xfer_channel)
    for col in ("xfer_src_task", "xfer_dst_task", "xfer_bytes", "xfer_start", "xfer_end"):
        if len(getattr(trace, col)) != n_xfer:
            raise ValueError(
                f"trace.{col} has {len(getattr(trace, col))} entries, expected {n_xfer}"
            )
    if len(trace.task_kinds) != len(trace.task_names):
        raise ValueError(
            f"trace.task_kinds has {len(trace.task_kinds)} entries, "
            f"expected {len(trace.task_names)} (one per task name)"
        )
    _check_index(trace.task, len(trace.task_names), "trace.task", "task_names")
    _check_index(trace.xfer_src_task, len(trace.task_names), "trace.xfer_src_task", "task_names")
    _check_index(trace.xfer_dst_task, len(trace.task_names), "trace.xfer_dst_task", "task_names")
    _check_index(trace.task_unit, len(trace.unit_names), "trace.task_unit", "unit_names")
    _check_index(
        trace.xfer_channel, len(trace.channel_names), "trace.xfer_channel", "channel_names"
    )
    _check_times(trace.task_start, trace.task_end, "task")
    _check_times(trace.xfer_start, trace.xfer_end, "xfer")
    if n_xfer and not np.all(np.isfinite(np.asarray(trace.xfer_bytes, dtype=float))):
        raise ValueError("trace.xfer_bytes has a non-finite entry")


def _check_index(col: np.ndarray, size: int, what: str, names: str) -> None:
    a = np.asarray(col)
    if a.size == 0:
        return
    if not np.issubdtype(a.dtype, np.integer) and not (
        np.all(np.isfinite(a)) and np.all(a == np.floor(a))
    ):
        raise ValueError(f"{what} must hold integer indices, found dtype {a.dtype}")
    lo, hi = a.min(), a.max()
    if lo < 0 or hi >= size:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{what} has index {int(bad)}, outside 0..{size - 1} of trace.{names}")


def _check_times(start: np.ndarray, end: np.ndarray, prefix: str) -> None:
    s = np.asarray(start, dtype=float)
    e = np.asarray(end, dtype=float)
    if s.size == 0:
        return
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(e))):
        raise ValueError(f"trace.{prefix}_start / {prefix}_end have a non-finite time")
    bad = np.flatnonzero(e < s)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"trace.{prefix}_end[{i}] = {float(e[i])!r} s is before "
            f"{prefix}_start[{i}] = {float(s[i])!r} s"
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
    """Allocates tids (1, 2, ...) for each (track, lane) of one process in track order."""

    def __init__(self, pid: int, names: Sequence[str], track: np.ndarray, lane: np.ndarray):
        n_lanes = np.ones(len(names), dtype=np.int64)
        if len(track):
            np.maximum.at(n_lanes, track, lane + 1)
        self.pid = pid
        self.first_tid = np.concatenate([[1], 1 + np.cumsum(n_lanes)])[:-1]
        self.meta: list[dict[str, Any]] = []
        for i, name in enumerate(names):
            for ln in range(int(n_lanes[i])):
                tid = int(self.first_tid[i]) + ln
                label = name if ln == 0 else f"{name} #{ln + 1}"
                self.meta.append(_meta("thread_name", pid, tid, {"name": label}))
                self.meta.append(_meta("thread_sort_index", pid, tid, {"sort_index": tid}))

    def tids(self, track: np.ndarray, lane: np.ndarray) -> list[int]:
        tids: list[int] = (self.first_tid[track] + lane).tolist() if len(track) else []
        return tids


def _task_events(trace: Trace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    unit = np.asarray(trace.task_unit, dtype=np.int64)
    start = np.asarray(trace.task_start, dtype=float)
    end = np.asarray(trace.task_end, dtype=float)
    order, lane = _lanes(unit, start, end)
    tracks = _Tracks(UNITS_PID, trace.unit_names, unit[order], lane)
    tids = tracks.tids(unit[order], lane)
    ids = np.asarray(trace.task, dtype=np.int64)[order].tolist()
    units = unit[order].tolist()
    ts = (start[order] * US_PER_S).tolist()
    dur = ((end[order] - start[order]) * US_PER_S).tolist()
    names, kinds, unit_names = trace.task_names, trace.task_kinds, trace.unit_names
    events = [
        {
            "name": names[t],
            "cat": kinds[t],
            "ph": "X",
            "pid": UNITS_PID,
            "tid": tid,
            "ts": a,
            "dur": d,
            "args": {"task": t, "unit": unit_names[u]},
        }
        for t, u, tid, a, d in zip(ids, units, tids, ts, dur, strict=True)
    ]
    return tracks.meta, events


def _transfer_events(trace: Trace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    chan = np.asarray(trace.xfer_channel, dtype=np.int64)
    start = np.asarray(trace.xfer_start, dtype=float)
    end = np.asarray(trace.xfer_end, dtype=float)
    order, lane = _lanes(chan, start, end)
    tracks = _Tracks(LINKS_PID, trace.channel_names, chan[order], lane)
    tids = tracks.tids(chan[order], lane)
    src = np.asarray(trace.xfer_src_task, dtype=np.int64)[order].tolist()
    dst = np.asarray(trace.xfer_dst_task, dtype=np.int64)[order].tolist()
    nbytes = np.asarray(trace.xfer_bytes, dtype=float)[order].tolist()
    ts = (start[order] * US_PER_S).tolist()
    dur = ((end[order] - start[order]) * US_PER_S).tolist()
    names = trace.task_names
    events = [
        {
            "name": f"{names[s]}→{names[d]}",
            "cat": "transfer",
            "ph": "X",
            "pid": LINKS_PID,
            "tid": tid,
            "ts": a,
            "dur": du,
            "args": {"bytes": _number(b), "src_task": s, "dst_task": d},
        }
        for s, d, b, tid, a, du in zip(src, dst, nbytes, tids, ts, dur, strict=True)
    ]
    return tracks.meta, events


def chrome_trace(trace: Trace) -> dict[str, Any]:
    """The trace as a Chrome trace-event JSON object (opens in Perfetto / chrome://tracing).

    Deterministic: the same trace always gives equal dicts (and byte-identical JSON
    from `write_chrome_trace`). Metadata events come first, then task events ordered
    by (unit, start, end), then transfer hops ordered by (channel, start, end).
    Raises ValueError if the trace is inconsistent (see `check_trace`).
    """
    check_trace(trace)
    unit_meta, task_events = _task_events(trace)
    link_meta, xfer_events = _transfer_events(trace)
    events: list[dict[str, Any]] = [
        _meta("process_name", UNITS_PID, 0, {"name": "units"}),
        _meta("process_sort_index", UNITS_PID, 0, {"sort_index": UNITS_PID}),
        _meta("process_name", LINKS_PID, 0, {"name": "links"}),
        _meta("process_sort_index", LINKS_PID, 0, {"sort_index": LINKS_PID}),
        *unit_meta,
        *link_meta,
        *task_events,
        *xfer_events,
    ]
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "generator": "leptonsim",
            "makespan_s": trace.makespan_s,
            "units": len(trace.unit_names),
            "channels": len(trace.channel_names),
            "tasks": len(trace.task),
            "transfer_hops": len(trace.xfer_channel),
        },
    }


def _dump(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _chrome_chunks(doc: dict[str, Any]) -> Iterator[str]:
    """Compact JSON with one event per line (diffable, streamable)."""
    yield '{"displayTimeUnit":' + _dump(doc["displayTimeUnit"])
    yield ',"otherData":' + _dump(doc["otherData"])
    yield ',"traceEvents":['
    for i, event in enumerate(doc["traceEvents"]):
        yield ("\n" if i == 0 else ",\n") + _dump(event)
    yield "\n]}\n"


def write_chrome_trace(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """Write `chrome_trace(trace)` as UTF-8 JSON to `path`, atomically."""
    doc = chrome_trace(trace)

    def writer(f: IO[str]) -> None:
        for chunk in _chrome_chunks(doc):
            f.write(chunk)

    return atomic_write(path, writer)


# ---------------------------------------------------------------------------- CSV


def write_tasks_csv(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """One row per executed task, in trace order; columns `TASK_CSV_COLUMNS`."""
    check_trace(trace)
    ids = np.asarray(trace.task, dtype=np.int64).tolist()
    units = np.asarray(trace.task_unit, dtype=np.int64).tolist()
    start = np.asarray(trace.task_start, dtype=float)
    end = np.asarray(trace.task_end, dtype=float)
    names, kinds, unit_names = trace.task_names, trace.task_kinds, trace.unit_names

    def writer(f: IO[str]) -> None:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(TASK_CSV_COLUMNS)
        w.writerows(
            (t, names[t], kinds[t], u, unit_names[u], s, e, d)
            for t, u, s, e, d in zip(
                ids, units, start.tolist(), end.tolist(), (end - start).tolist(), strict=True
            )
        )

    return atomic_write(path, writer)


def write_transfers_csv(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """One row per transfer hop, in trace order; columns `TRANSFER_CSV_COLUMNS`."""
    check_trace(trace)
    src = np.asarray(trace.xfer_src_task, dtype=np.int64).tolist()
    dst = np.asarray(trace.xfer_dst_task, dtype=np.int64).tolist()
    chan = np.asarray(trace.xfer_channel, dtype=np.int64).tolist()
    nbytes = np.asarray(trace.xfer_bytes, dtype=float).tolist()
    start = np.asarray(trace.xfer_start, dtype=float)
    end = np.asarray(trace.xfer_end, dtype=float)
    names, channel_names = trace.task_names, trace.channel_names

    def writer(f: IO[str]) -> None:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(TRANSFER_CSV_COLUMNS)
        w.writerows(
            (s, names[s], d, names[d], c, channel_names[c], b, a, e, du)
            for s, d, c, b, a, e, du in zip(
                src,
                dst,
                chan,
                nbytes,
                start.tolist(),
                end.tolist(),
                (end - start).tolist(),
                strict=True,
            )
        )

    return atomic_write(path, writer)
