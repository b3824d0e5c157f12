"""Run a placed TaskGraph for real on worker processes and return its Trace.

The coordinator only sets up and collects: it creates the shared-memory lanes and
the pipes, spawns one process per unit, waits until every worker has prepared its
kernels, takes t0 and says "go". From then on the workers drive themselves: readiness
is tracked where the tasks run, and data flows worker to worker.

Clock: every timestamp is `time.perf_counter_ns()`, which on Linux reads
CLOCK_MONOTONIC, one system-wide clock shared by all processes (checked at run time:
`check_clock`); times in the Trace are seconds after t0, taken just before "go".
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, cast

import numpy as np

from ..errors import LeptonError
from ..graph import TaskGraph
from ..hardware import Cluster
from ..trace import Trace
from . import worker
from .kernels import KernelSource, SyntheticKernels
from .layout import Layout, plan_layout

ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                               "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}


class ExecutionError(LeptonError, RuntimeError):
    """A worker failed, died, or delivered bytes that differ from those sent."""


@dataclass(frozen=True)
class Execution:
    trace: Trace
    blas: tuple[dict[str, Any], ...]  # per worker, as the worker itself reported it
    verified_transfers: int           # transfers whose checksums matched (verify=True)
    wall_s: float                     # spawn to last record, setup included


def check_clock() -> None:
    """Refuse to run where perf_counter is not one monotonic clock for all processes."""
    info = time.get_clock_info("perf_counter")
    if not info.monotonic or (os.name == "posix" and "CLOCK_MONOTONIC" not in info.implementation
                              and "mach" not in info.implementation):
        raise ExecutionError(f"perf_counter is {info.implementation}: not a system-wide clock")


def execute(graph: TaskGraph, placement: np.ndarray, workers: int | None = None, *,
            priority: np.ndarray | None = None, cluster: Cluster | None = None,
            kernels: KernelSource | None = None, unit_names: Sequence[str] | None = None,
            verify: bool = False, warmup: int = 0) -> Trace:
    """Run `graph` with task i on worker `placement[i]` (one process per unit); the Trace.

    priority: per task, lower first among a worker's ready tasks, ties by id (default:
    task id, as the static scheduler); pass `plan.priority` to replay a Plan.
    cluster: names the units and maps transfers onto its channels (see layout.py).
    verify: checksum every transfer on both sides and raise ExecutionError on a mismatch.
    warmup: untimed runs of the whole graph first, in the same processes, so the timed
    run is a steady-state step (memory mapped, caches and allocator as a previous
    step left them), as a benchmark's warm-up iterations do.
    """
    return run_workers(graph, placement, workers, priority=priority, cluster=cluster,
                       kernels=kernels, unit_names=unit_names, verify=verify,
                       warmup=warmup).trace


def run_workers(graph: TaskGraph, placement: np.ndarray, workers: int | None = None, *,
                priority: np.ndarray | None = None, cluster: Cluster | None = None,
                kernels: KernelSource | None = None, unit_names: Sequence[str] | None = None,
                verify: bool = False, warmup: int = 0) -> Execution:
    """`execute`, also returning what each worker reported (BLAS threads, checksums)."""
    check_clock()
    layout = plan_layout(graph, placement, workers, cluster, unit_names)
    prio = np.arange(graph.size) if priority is None else np.asarray(priority, np.int64)
    if prio.shape != (graph.size,):
        raise ValueError(f"priority must have one entry per task ({graph.size}), got {prio.shape}")
    began = time.perf_counter_ns()
    with _lanes(layout) as slots:
        specs = [worker.WorkerSpec(w, graph, layout, prio, tuple(slots),
                                   kernels or SyntheticKernels(), verify, warmup)
                 for w in range(layout.workers)]
        with _spawned(specs) as controls:
            blas = _gather(controls, "ready")
            for _ in range(warmup):  # all workers finish a run before the next starts
                for c in controls:
                    c.send("go")
                _gather(controls, "warm")
            t0 = time.perf_counter_ns()
            for c in controls:
                c.send("go")
            records = _gather(controls, "done")
    verified = _verify(records) if verify else 0
    trace = _trace(graph, layout, records, t0)
    return Execution(trace, tuple(blas), verified, (time.perf_counter_ns() - began) / 1e9)


@contextlib.contextmanager
def _lanes(layout: Layout) -> Iterator[list[int]]:
    """One anonymous shared-memory file per lane, as a file descriptor the workers map.

    Anonymous (memfd on Linux, an unlinked temp file elsewhere): it disappears with
    the last descriptor, so no run, however it ends, leaves a segment behind, and no
    resource-tracker process is needed to clean up after the workers.
    """
    fds: list[int] = []
    try:
        for n in layout.lane_bytes.tolist():
            fds.append(_anonymous_file(max(int(n), 1)))
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def _anonymous_file(size: int) -> int:
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("leptonsim-lane")
    else:
        with tempfile.TemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as f:
            fd = os.dup(f.fileno())
    os.ftruncate(fd, size)
    return fd


@contextlib.contextmanager
def _spawned(specs: list[worker.WorkerSpec]) -> Iterator[list[Connection]]:
    """Start one fresh interpreter per worker, wired with one one-way pipe per ordered
    pair; yield the control connections; stop any worker still running at the end.

    A fresh interpreter, not fork: BLAS reads its thread count when it loads, and a
    forked child would inherit the parent's already-loaded, multi-threaded BLAS. Not
    multiprocessing's spawn either: that re-runs the caller's main script in every
    worker, which breaks any script without an `if __name__ == "__main__"` guard.
    """
    n = len(specs)
    pipes = {(u, v): os.pipe() for u in range(n) for v in range(n) if u != v}
    env = {**os.environ, **ONE_THREAD,
           "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in sys.path)}
    controls: list[Connection] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for w, spec in enumerate(specs):
            inbox = [pipes[(u, w)][0] for u in range(n) if u != w]
            outbox = {v: pipes[(w, v)][1] for v in range(n) if v != w}
            mine, theirs = socket.socketpair()
            procs.append(subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(theirs.fileno())], env=env,
                pass_fds=[theirs.fileno(), *inbox, *outbox.values(), *spec.slots]))
            theirs.close()
            controls.append(Connection(mine.detach()))
            controls[-1].send((spec, inbox, outbox))
        for r, w in pipes.values():  # each worker holds its own ends now
            os.close(r)
            os.close(w)
        pipes.clear()
        yield controls
    finally:
        for r, w in pipes.values():
            os.close(r)
            os.close(w)
        for c in controls:
            c.close()
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait()


_BOOT = "import sys; from leptonsim.execute.worker import boot; boot(int(sys.argv[1]))"


def _gather(controls: list[Connection], kind: str) -> list[Any]:
    """One `kind` message from every worker; ExecutionError if one fails or dies."""
    got: dict[int, Any] = {}
    while len(got) < len(controls):
        waiting = [c for w, c in enumerate(controls) if w not in got]
        for conn in cast(list[Connection], wait(waiting)):
            w = controls.index(conn)
            try:
                msg = conn.recv()
            except EOFError:
                raise ExecutionError(f"worker {w} died before reporting {kind!r}") from None
            if msg[0] == "error":
                raise ExecutionError(f"worker {w} failed:\n{msg[1]}")
            got[w] = msg[1]
    return [got[w] for w in range(len(controls))]


def _verify(records: list[dict[str, Any]]) -> int:
    sent: dict[int, int] = {}
    for r in records:
        sent.update(r["sent_crc"])
    count = 0
    for r in records:
        for e, _, _, crc in r["xfers"].tolist():
            if sent.get(e) != crc:
                raise ExecutionError(f"edge {e}: bytes received differ from bytes sent")
            count += 1
    return count


def _trace(graph: TaskGraph, layout: Layout, records: list[dict[str, Any]], t0: int) -> Trace:
    tasks = np.concatenate([r["tasks"] for r in records])
    tasks = tasks[np.argsort(tasks[:, 1], kind="stable")]
    xfers = np.concatenate([r["xfers"] for r in records])
    xfers = xfers[np.argsort(xfers[:, 1], kind="stable")]
    edge = xfers[:, 0]
    seconds = lambda ns: (ns - t0) / 1e9  # noqa: E731
    return Trace(
        task_names=graph.names, task_kinds=graph.kinds or (),
        unit_names=list(layout.unit_names), channel_names=list(layout.channel_names),
        task=tasks[:, 0].copy(), task_unit=layout.worker_of[tasks[:, 0]],
        task_start=seconds(tasks[:, 1]), task_end=seconds(tasks[:, 2]),
        xfer_src_task=graph.edge_src[edge], xfer_dst_task=graph.edge_dst[edge],
        xfer_channel=layout.lane_channel[layout.lane_of_edge[edge]],
        xfer_bytes=np.rint(graph.edge_bytes[edge]), xfer_start=seconds(xfers[:, 1]),
        xfer_end=seconds(xfers[:, 2]),
    )
