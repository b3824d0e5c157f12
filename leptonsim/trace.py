"""The one record of what happened, shared by the simulator and real execution.

Columns are NumPy arrays so a million-task trace stays compact; rows are
reachable through `task_rows()` / `transfer_rows()` for exporters and tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True, slots=True)
class TaskRow:
    task: int
    name: str
    kind: str
    unit: int
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class TransferRow:
    src_task: int
    dst_task: int
    channel: int
    nbytes: float
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Trace:
    """Every task run and every transfer hop, where and when.

    `task_*` columns have one entry per executed task; `xfer_*` columns one entry per
    hop of every transfer (a transfer over a two-hop route appears twice, once per
    link direction it occupied). `wait_until_s`: the run lasts at least this long
    even if every task ended sooner (a training step waiting for its input pipeline,
    which runs on the hosts beside it: StepGraph.with_input).
    """

    task_names: Sequence[str]
    task_kinds: Sequence[str]
    unit_names: Sequence[str]
    channel_names: Sequence[str]
    task: np.ndarray
    task_unit: np.ndarray
    task_start: np.ndarray
    task_end: np.ndarray
    xfer_src_task: np.ndarray
    xfer_dst_task: np.ndarray
    xfer_channel: np.ndarray
    xfer_bytes: np.ndarray
    xfer_start: np.ndarray
    xfer_end: np.ndarray
    wait_until_s: float = 0.0

    @property
    def makespan_s(self) -> float:
        ends = [self.task_end.max(initial=0.0), self.xfer_end.max(initial=0.0), self.wait_until_s]
        return float(max(ends))

    def task_rows(self) -> Iterator[TaskRow]:
        for i in range(len(self.task)):
            t = int(self.task[i])
            yield TaskRow(
                t,
                self.task_names[t],
                self.task_kinds[t],
                int(self.task_unit[i]),
                float(self.task_start[i]),
                float(self.task_end[i]),
            )

    def transfer_rows(self) -> Iterator[TransferRow]:
        for i in range(len(self.xfer_channel)):
            yield TransferRow(
                int(self.xfer_src_task[i]),
                int(self.xfer_dst_task[i]),
                int(self.xfer_channel[i]),
                float(self.xfer_bytes[i]),
                float(self.xfer_start[i]),
                float(self.xfer_end[i]),
            )


def mirror_units(trace: Trace, groups: dict[int, tuple[int, ...]]) -> Trace:
    """Copy each task row of a representative unit to every unit of its group.

    A symmetric simulation runs one unit per group of identical units doing the same
    work at the same time; mirroring shows the others busy too. Transfers are not
    copied: the representative's already carry the whole group's bytes.
    """
    members = [np.array(groups.get(u, (u,)), np.int64) for u in range(len(trace.unit_names))]
    count = np.array([len(m) for m in members])[trace.task_unit]
    rows = np.repeat(np.arange(len(trace.task)), count)
    unit = np.concatenate([members[u] for u in trace.task_unit.tolist()]) if len(rows) else rows
    return replace(trace, task=trace.task[rows], task_unit=unit,
                   task_start=trace.task_start[rows], task_end=trace.task_end[rows])


def spread_to_groups(per_unit: np.ndarray, groups: dict[int, tuple[int, ...]] | None
                     ) -> np.ndarray:
    """Per unit, what its group's simulated representative has in `per_unit` (a sum
    over trace rows per unit): what the rows mirror_units copies would sum to on each
    member, without making the rows (a mirrored 16,384-GPU run would make 258 million
    of them, 8 GB). None: nothing mirrored."""
    if groups is None:
        return per_unit
    out = np.zeros(len(per_unit), np.asarray(per_unit).dtype)
    for u in range(len(per_unit)):
        out[list(groups.get(u, (u,)))] += per_unit[u]
    return out


def busy_seconds(trace: Trace, units: int, comm: np.ndarray | None = None) -> np.ndarray:
    """Per unit 0..units-1, the seconds it spent computing: the lengths of its task
    rows, except rows of communication tasks (comm[task], graph.comm: a collective
    collapsed into one task). Communication keeps no unit busy in any mode: spelled
    out, the same collective is transfers, which occupy links, not units."""
    length = np.asarray(trace.task_end) - np.asarray(trace.task_start)
    if comm is not None:
        length = np.where(np.asarray(comm, bool)[trace.task], 0.0, length)
    return np.bincount(np.asarray(trace.task_unit, np.int64), length, minlength=units)


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
