"""One worker process: runs its tasks, sends and receives tensors, records times.

A worker is single-threaded, like an MPI rank without a progress thread: it handles
incoming messages between tasks and while idle. So a transfer whose consumer is busy
ends only when the consumer finishes its current task and copies the bytes out: the
trace shows that wait as part of the transfer, because it is.

Messages (tuples over one-way pipes, one pipe per ordered worker pair):
  ("d", edge, start_ns, dtype, shape)  edge's bytes are in its lane's slot
  ("z", [edge, ...])                    zero-byte cross-worker dependencies are met
  ("a", lane)                          the consumer copied lane's slot: it is free
"""

from __future__ import annotations

import mmap
import os
import time
import traceback
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from heapq import heappop, heappush
from multiprocessing.connection import Connection, wait
from typing import Any, cast

import numpy as np

from ..graph import TaskGraph
from .kernels import Kernel, KernelSource
from .layout import Layout

now = time.perf_counter_ns  # CLOCK_MONOTONIC on Linux: one clock for all processes


@dataclass(frozen=True)
class WorkerSpec:
    worker: int
    graph: TaskGraph
    layout: Layout
    priority: np.ndarray
    slots: tuple[int, ...]  # per lane: a shared-memory file descriptor (same number here)
    kernels: KernelSource
    verify: bool
    warmup: int = 0  # untimed runs of the whole graph before the timed one


def blas_threads() -> dict[str, Any]:
    """What this process's BLAS will use: threadpoolctl's view, or the env fallback."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {"source": "env", "threads": int(os.environ.get("OPENBLAS_NUM_THREADS", "0"))}
    blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return {"source": "threadpoolctl", "threads": max((p["num_threads"] for p in blas), default=0),
            "libraries": [f"{p['internal_api']} {p['version']}" for p in blas]}


def boot(fd: int) -> None:
    """Process entry point: receive the spec and pipe ends, set up, report ready, then
    for each warm-up run and the timed run wait for "go", run, and report ("warm" or
    the records). Any failure is reported, never left to hang."""
    control = Connection(fd)
    try:
        _limit_blas()
        spec, inbox_fds, outbox_fds = control.recv()
        inbox = [Connection(f, writable=False) for f in inbox_fds]
        outbox = {v: Connection(f, readable=False) for v, f in outbox_fds.items()}
        worker = _Worker(spec, control, inbox, outbox)
        control.send(("ready", blas_threads()))
        for _ in range(spec.warmup):
            if control.recv() != "go":
                return
            worker.run()
            worker.reset()
            control.send(("warm", None))
        if control.recv() != "go":
            return
        worker.run()
        control.send(("done", worker.records()))
    except (EOFError, BrokenPipeError):
        pass  # the coordinator has gone: nothing left to report to
    except BaseException:  # noqa: BLE001
        control.send(("error", traceback.format_exc()))
    finally:
        control.close()


def _limit_blas() -> None:
    """One BLAS thread per worker. The coordinator already set the env variables
    before this process started; threadpoolctl also catches a BLAS that ignores them."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1)


def _warm_up_blas() -> None:
    """BLAS allocates its work buffers on the first call: not in the first task."""
    for dtype in (np.float32, np.float64):
        a = np.ones((64, 64), dtype)
        a @ a


class _Worker:
    def __init__(self, spec: WorkerSpec, control: Connection, inbox: Sequence[Connection],
                 outbox: dict[int, Connection]) -> None:
        g, lay = spec.graph, spec.layout
        self.me, self.graph, self.verify = spec.worker, g, spec.verify
        # the control connection only becomes readable if the coordinator goes away
        self.inbox, self.outbox, self.control = [*inbox, control], outbox, control
        self.worker_of: list[int] = lay.worker_of.tolist()
        self.lane_of: list[int] = lay.lane_of_edge.tolist()
        self.nbytes: list[int] = np.rint(g.edge_bytes).astype(np.int64).tolist()
        self.edge_src: list[int] = g.edge_src.tolist()
        self.edge_dst: list[int] = g.edge_dst.tolist()
        self.prio: list[int] = spec.priority.tolist()
        self.succ = _csr_lists(g.successors)
        self.pred = _csr_lists(g.predecessors)
        self.mine: list[int] = np.flatnonzero(lay.worker_of == self.me).tolist()
        self.kernels: dict[int, Kernel] = {t: spec.kernels.prepare(g, t) for t in self.mine}
        _warm_up_blas()
        # populated now, so no transfer pays for the slot's first-touch page faults
        populate = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        self.maps = [mmap.mmap(fd, os.fstat(fd).st_size, flags=populate) for fd in spec.slots]
        self.slot = [np.frombuffer(m, np.uint8) for m in self.maps]
        self.queue: dict[int, deque[tuple[int, np.ndarray]]] = {}
        self.busy: set[int] = set()
        self.reset()
        self._warm_lanes(lay)

    def reset(self) -> None:
        """Everything a run consumes, as before the first. Between runs every message
        of the last one has been handled: a worker ends a run only once all its
        tasks ran (so it received all their inputs) and all its sends were acknowledged."""
        self.pending: list[int] = self.graph.in_degree.tolist()
        self.left = len(self.mine)
        self.ready: list[tuple[int, int]] = sorted(
            (self.prio[t], t) for t in self.mine if self.pending[t] == 0)
        self.inputs: dict[int, np.ndarray] = {}
        self.rec_task: list[tuple[int, int, int]] = []
        self.rec_xfer: list[tuple[int, int, int, int]] = []  # edge, start, end, crc
        self.sent_crc: dict[int, int] = {}

    def _warm_lanes(self, lay: Layout) -> None:
        """Touch every lane once, as a sender writes it and a receiver copies it out, so
        the timed run is a steady-state step: on this VM the first use of a lane paid up
        to 0.3 ms more per MB (first write to the shared pages, and the heap growing for
        the receive buffer), which a training loop pays once, not every step. The freed
        receive buffer stays in the heap when a KernelSource keeps freed memory."""
        for lane, sender in enumerate(lay.lane_sender.tolist()):
            if sender == self.me:
                self.slot[lane][:] = 0
            elif self.me in self._receivers(lay, lane):
                np.copyto(np.empty(self.slot[lane].size, np.uint8), self.slot[lane])

    def _receivers(self, lay: Layout, lane: int) -> set[int]:
        edges = np.flatnonzero(lay.lane_of_edge == lane)
        return set(lay.worker_of[self.graph.edge_dst[edges]].tolist())

    # -- main loop ------------------------------------------------------------------
    def run(self) -> None:
        while self.left or self.busy:
            self._poll(0.0)
            if self.ready:
                self._run_task(heappop(self.ready)[1])
            elif self.left or self.busy:
                # block, not spin: spinning steals the core from a worker that shares it
                self._poll(None)

    def _poll(self, timeout: float | None) -> None:
        for conn in cast(list[Connection], wait(self.inbox, timeout)):
            if conn is self.control:
                raise EOFError("coordinator stopped the run")
            try:
                while conn.poll():
                    self._handle(conn.recv())
            except EOFError:  # that peer has finished (or failed: the coordinator sees it)
                self.inbox.remove(conn)

    def _run_task(self, t: int) -> None:
        inputs = [self.inputs.pop(e) for e in self.pred[t] if self.nbytes[e] > 0]
        kernel = self.kernels[t]
        start = now()
        out = kernel(inputs)
        end = now()
        self.rec_task.append((t, start, end))
        self.left -= 1
        self._push_outputs(t, np.zeros(0, np.uint8) if out is None else np.asarray(out))

    # -- sending ------------------------------------------------------------------------
    def _push_outputs(self, t: int, out: np.ndarray) -> None:
        deps: dict[int, list[int]] = {}  # one message per worker, however wide the fan-out
        for e in self.succ[t]:
            w = self.worker_of[self.edge_dst[e]]
            if self.nbytes[e] == 0:  # a pure dependency carries no data, anywhere
                if w == self.me:
                    self._satisfied(e)
                else:
                    deps.setdefault(w, []).append(e)
            elif w == self.me:
                self.inputs[e] = out
                self._satisfied(e)
            else:
                self.queue.setdefault(self.lane_of[e], deque()).append((e, out))
                self._start_next(self.lane_of[e])
        for w, edges in deps.items():
            self.outbox[w].send(("z", edges))

    def _start_next(self, lane: int) -> None:
        queue = self.queue.get(lane)
        if lane in self.busy or not queue:
            return
        e, out = queue.popleft()
        n = self.nbytes[e]
        start = now()
        raw = np.ascontiguousarray(out).reshape(-1).view(np.uint8)[:n]
        slot = self.slot[lane]
        slot[:raw.size] = raw
        slot[raw.size:n] = 0
        same = out.nbytes == n
        self.outbox[self.worker_of[self.edge_dst[e]]].send(
            ("d", e, start, out.dtype.str if same else None, out.shape if same else None))
        self.busy.add(lane)
        if self.verify:  # after the send, outside the consumer's measured copy
            self.sent_crc[e] = zlib.crc32(slot[:n].data)

    # -- receiving ----------------------------------------------------------------------
    def _handle(self, msg: tuple) -> None:
        if msg[0] == "d":
            self._receive(*msg[1:])
        elif msg[0] == "z":
            for e in msg[1]:
                self._satisfied(e)
        else:
            self.busy.discard(msg[1])
            self._start_next(msg[1])

    def _receive(self, e: int, start: int, dtype: str | None, shape: tuple | None) -> None:
        lane, n = self.lane_of[e], self.nbytes[e]
        buf = np.empty(n, np.uint8)
        np.copyto(buf, self.slot[lane][:n])
        end = now()
        self.outbox[self.worker_of[self.edge_src[e]]].send(("a", lane))
        crc = zlib.crc32(buf.data) if self.verify else 0
        self.rec_xfer.append((e, start, end, crc))
        self.inputs[e] = buf.view(np.dtype(dtype)).reshape(shape) if dtype else buf
        self._satisfied(e)

    def _satisfied(self, e: int) -> None:
        d = self.edge_dst[e]
        self.pending[d] -= 1
        if self.pending[d] == 0:
            heappush(self.ready, (self.prio[d], d))

    def records(self) -> dict[str, Any]:
        return {"tasks": np.array(self.rec_task, np.int64).reshape(-1, 3),
                "xfers": np.array(self.rec_xfer, np.int64).reshape(-1, 4),
                "sent_crc": self.sent_crc}


def _csr_lists(csr: tuple[np.ndarray, np.ndarray]) -> list[list[int]]:
    ptr, eids = csr
    flat = eids.tolist()
    bounds = ptr.tolist()
    return [flat[bounds[i]:bounds[i + 1]] for i in range(len(bounds) - 1)]
