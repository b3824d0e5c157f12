"""Ring all-reduce on real arrays: one schedule, run in-process or across processes.

`ring_schedule(p)` is the step structure of `leptonsim.parallel.collectives.
ring_allreduce`: 2(p-1) steps; at each, every rank i sends one of the p chunks of its
buffer to rank i+1 (mod p). In the p-1 reduce-scatter steps rank i sends chunk
(i - s) mod p and the receiver adds it into its own copy, so rank i ends holding the
fully reduced chunk (i + 1) mod p; in the p-1 all-gather steps rank i sends chunk
(i + 1 - s) mod p and the receiver overwrites its copy. Chunks are np.array_split's
(sizes differ by at most one element).

`ring_allreduce` runs the schedule on arrays in one process (every send of a step
taken before any receive is applied, as if simultaneous). `process_ring_allreduce`
runs it on p fresh interpreters: each rank's buffer is a row of one anonymous
shared-memory file, a message is a chunk copied into the sender's one-slot mailbox
in that file, and 1-byte tokens on pipes say "posted" (to the right neighbour) and
"taken" (back to the sender). No rank reads another's row: data moves only as
messages, so the schedule, not the shared file, is what gets checked.
"""

from __future__ import annotations

import mmap
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]


@dataclass(frozen=True)
class RingStep:
    """One step: chunks[i] is the chunk rank i sends to rank i+1; reduce adds, else copies."""

    reduce: bool
    chunks: tuple[int, ...]


def ring_schedule(p: int) -> list[RingStep]:
    """The 2(p-1) steps of a ring all-reduce over p ranks (none for p = 1)."""
    if p < 1:
        raise ValueError(f"a ring needs at least one rank, got {p}")
    scatter = [RingStep(True, tuple((i - s) % p for i in range(p))) for s in range(p - 1)]
    gather = [RingStep(False, tuple((i + 1 - s) % p for i in range(p))) for s in range(p - 1)]
    return scatter + gather


def chunk_bounds(n: int, p: int) -> list[tuple[int, int]]:
    """[lo, hi) of each of the p chunks of n elements, as np.array_split cuts them."""
    edges = np.cumsum([0] + [len(c) for c in np.array_split(np.empty(n), p)])
    return [(int(edges[c]), int(edges[c + 1])) for c in range(p)]


def _check(buffers: list[Array]) -> None:
    if not buffers:
        raise ValueError("an all-reduce needs at least one rank")
    if any(b.shape != buffers[0].shape or b.dtype != buffers[0].dtype for b in buffers):
        raise ValueError("all-reduce buffers must share one shape and dtype")


def ring_allreduce(buffers: list[Array]) -> list[Array]:
    """Every rank's copy of the sum of `buffers`, computed by the ring schedule."""
    _check(buffers)
    p, shape = len(buffers), buffers[0].shape
    rows = [b.ravel().copy() for b in buffers]
    bounds = chunk_bounds(rows[0].size, p)
    for step in ring_schedule(p):
        sent = [rows[i][slice(*bounds[c])].copy() for i, c in enumerate(step.chunks)]
        for i, (c, message) in enumerate(zip(step.chunks, sent, strict=True)):
            mine = rows[(i + 1) % p][slice(*bounds[c])]
            if step.reduce:
                mine += message
            else:
                mine[...] = message
    return [r.reshape(shape) for r in rows]


def sent_elements(n: int, p: int) -> list[int]:
    """Elements each rank sends in a ring all-reduce of n elements (2(p-1)/p n if p | n)."""
    bounds = chunk_bounds(n, p)
    sizes = [hi - lo for lo, hi in bounds]
    return [sum(sizes[step.chunks[i]] for step in ring_schedule(p)) for i in range(p)]


def process_ring_allreduce(buffers: list[Array], timeout_s: float = 60.0) -> list[Array]:
    """ring_allreduce with each rank a separate process (see the module docstring)."""
    _check(buffers)
    p, shape, dtype = len(buffers), buffers[0].shape, buffers[0].dtype
    if p == 1:
        return [buffers[0].copy()]
    n = buffers[0].size
    size = (p * n + p * -(-n // p)) * dtype.itemsize
    fd = _anonymous_file()
    try:
        os.ftruncate(fd, max(size, 1))
        with mmap.mmap(fd, max(size, 1)) as mm:
            view = np.ndarray((p, n), dtype, buffer=mm)
            view[:] = [b.ravel() for b in buffers]
            _run_ranks(fd, p, n, dtype.str, timeout_s)
            out = [view[i].copy().reshape(shape) for i in range(p)]
            del view
        return out
    finally:
        os.close(fd)


def _anonymous_file() -> int:
    """A shared-memory file that vanishes with its last descriptor (memfd on Linux)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("leptonsim-ring")
    with tempfile.TemporaryFile() as f:
        return os.dup(f.fileno())


_BOOT = "import sys; from tests.oracle.ring import worker_main; worker_main(sys.argv[1:])"


def _run_ranks(fd: int, p: int, n: int, dtype: str, timeout_s: float) -> None:
    posted = [os.pipe() for _ in range(p)]  # rank i -> i+1: "my mailbox holds your chunk"
    taken = [os.pipe() for _ in range(p)]   # rank i+1 -> i: "I have read your mailbox"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(os.path.abspath(x) for x in sys.path)}
    procs = []
    try:
        for i in range(p):
            left = (i - 1) % p
            fds = [fd, posted[i][1], posted[left][0], taken[left][1], taken[i][0]]
            args = [str(a) for a in (i, p, n, dtype, *fds)]
            procs.append(subprocess.Popen([sys.executable, "-c", _BOOT, *args], env=env, pass_fds=fds,
                                          stderr=subprocess.PIPE))
    finally:
        for r, w in posted + taken:  # the ranks hold their ends; EOF reaches them if one dies
            os.close(r)
            os.close(w)
    failures = []
    for i, proc in enumerate(procs):
        try:
            _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise RuntimeError(f"ring all-reduce: rank {i} did not finish in {timeout_s} s") from None
        if proc.returncode:
            failures.append(f"rank {i}: {err.decode(errors='replace').strip().splitlines()[-1:]}")
    if failures:
        raise RuntimeError("ring all-reduce failed: " + "; ".join(failures))


def worker_main(argv: list[str]) -> None:
    """One rank: argv = rank, p, n, dtype, fd, post_fd, posted_fd, ack_fd, acked_fd."""
    rank, p, n = (int(a) for a in argv[:3])
    dtype = np.dtype(argv[3])
    fd, post, posted, ack, acked = (int(a) for a in argv[4:9])
    cmax = -(-n // p)
    size = (p * n + p * cmax) * dtype.itemsize
    with mmap.mmap(fd, max(size, 1)) as mm:
        mine = np.ndarray((n,), dtype, buffer=mm, offset=rank * n * dtype.itemsize)
        mail = np.ndarray((p, cmax), dtype, buffer=mm, offset=p * n * dtype.itemsize)
        _ring(rank, p, mine, mail, (post, posted, ack, acked))
        del mine, mail


def _ring(rank: int, p: int, mine: Array, mail: Array, fds: tuple[int, int, int, int]) -> None:
    post, posted, ack, acked = fds
    left = (rank - 1) % p
    bounds = chunk_bounds(mine.size, p)
    for step in ring_schedule(p):
        lo, hi = bounds[step.chunks[rank]]
        mail[rank, : hi - lo] = mine[lo:hi]
        os.write(post, b"+")
        _token(posted)
        lo, hi = bounds[step.chunks[left]]
        if step.reduce:
            mine[lo:hi] += mail[left, : hi - lo]
        else:
            mine[lo:hi] = mail[left, : hi - lo]
        os.write(ack, b"+")
        _token(acked)  # my mailbox is free again for the next step


def _token(fd: int) -> None:
    if os.read(fd, 1) != b"+":
        raise RuntimeError("ring all-reduce: a neighbour closed its pipe")
