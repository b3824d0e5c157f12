"""What a task does when it is executed for real: the pluggable `KernelSource`.

A `KernelSource` is shipped (pickled) to every worker process, so it must be an
instance of a module-level class. In the worker, `prepare(graph, task)` is called
once per task the worker owns, *before* the common clock starts: allocate operands
there. The returned `Kernel` is what gets timed: it receives the task's inputs, one
array per in-edge in the order of `graph.predecessors`, and returns the task's output
(or None for no output).

Inputs: an edge within a worker hands the producer's output over as is. An edge
between workers moves exactly `edge_bytes` bytes; the consumer receives them with the
producer's dtype and shape when the output has exactly that many bytes, and as a flat
uint8 array otherwise (the output's leading bytes, zero-padded when it is shorter).

`SyntheticKernels` (the default) makes each task cost what the graph says it costs:
a float32 GEMM of the task's FLOPs, a memory stream of its bytes when bytes dominate,
a busy wait for fixed-duration tasks, nothing for communication stand-ins.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

import numpy as np

from ..graph import TaskGraph

Kernel = Callable[[Sequence[np.ndarray]], "np.ndarray | None"]

PATTERN_PERIOD = 251  # prime, so a task's output pattern differs from its neighbours'


class KernelSource(Protocol):
    def prepare(self, graph: TaskGraph, task: int) -> Kernel:
        """The callable that runs task `task`; called untimed, once per task."""
        ...


def pattern(nbytes: int, task: int) -> np.ndarray:
    """The bytes synthetic task `task` outputs: (i + task) mod 251, checkable anywhere."""
    return ((np.arange(nbytes, dtype=np.int64) + task) % PATTERN_PERIOD).astype(np.uint8)


def output_bytes(graph: TaskGraph, task: int) -> int:
    """The largest edge leaving `task`: the output size that feeds every consumer."""
    ptr, eids = graph.successors
    out = graph.edge_bytes[eids[ptr[task]:ptr[task + 1]]]
    return int(round(float(out.max()))) if out.size else 0


class SyntheticKernels:
    """Kernels that match each task's cost on a single core.

    `balance` is the machine balance in bytes per FLOP (memory bandwidth / peak): a
    task with nbytes > balance * flops is memory-bound and streams its bytes instead
    of multiplying matrices, as the roofline would charge it. Operands and output
    buffers are cached per worker, so a thousand equal tasks share one set.
    """

    def __init__(self, balance: float = 0.2, max_gemm_n: int = 1024,
                 dtype: str = "float32") -> None:
        self.balance, self.max_gemm_n, self.dtype = balance, max_gemm_n, dtype
        self._cache: dict[Any, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"balance": self.balance, "max_gemm_n": self.max_gemm_n, "dtype": self.dtype}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _cache={})  # caches are rebuilt in each worker

    def prepare(self, graph: TaskGraph, task: int) -> Kernel:
        out = self._output(output_bytes(graph, task), task)
        flops, nbytes = float(graph.flops[task]), float(graph.nbytes[task])
        duration = float(graph.duration_s[task])
        if graph.comm is not None and graph.comm[task]:
            return partial(_noop, out)  # communication the graph does not spell out
        if not np.isnan(duration):
            return partial(_spin, duration, out)
        if nbytes > self.balance * flops:
            return partial(_stream, self._stream_buffers(nbytes), out)
        return partial(_gemms, self._gemm_operands(flops), out)

    def _output(self, nbytes: int, task: int) -> np.ndarray:
        # one pattern buffer per worker; a task's output is a view at its own phase
        base = self._cache.get("pattern")
        if base is None or base.size < nbytes + PATTERN_PERIOD:
            base = self._cache["pattern"] = pattern(nbytes + PATTERN_PERIOD, 0)
        phase = task % PATTERN_PERIOD
        return base[phase:phase + nbytes]

    def _gemm_operands(self, flops: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Full GEMMs of the largest size, then one cube GEMM for the remainder."""
        big = self.max_gemm_n
        full, rest = divmod(flops, 2.0 * big**3)
        sizes = [big] * int(full)
        n = round((rest / 2.0) ** (1 / 3))
        if n > 0:
            sizes.append(n)
        return [self._operands(n) for n in sizes]

    def _operands(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = ("gemm", n)
        if key not in self._cache:
            rng = np.random.default_rng(n)
            self._cache[key] = rng.standard_normal((3, n, n)).astype(self.dtype)
        a, b, c = self._cache[key]
        return a, b, c

    def _stream_buffers(self, nbytes: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """A copy reads and writes each byte: moving nbytes copies nbytes / 2, in chunks
        of up to 64 MB (past most caches, so a large task streams from memory)."""
        chunk = 64 << 20
        half = int(nbytes // 2)
        base = self._cache.get("stream")
        if base is None or base.shape[1] < min(half, chunk):
            base = self._cache["stream"] = np.ones((2, min(half, chunk)), np.uint8)
        sizes = [chunk] * (half // chunk) + ([half % chunk] if half % chunk else [])
        return [(base[0, :s], base[1, :s]) for s in sizes]


def _noop(out: np.ndarray, inputs: Sequence[np.ndarray]) -> np.ndarray:
    return out


def _spin(duration_s: float, out: np.ndarray, inputs: Sequence[np.ndarray]) -> np.ndarray:
    # busy, not asleep: a fixed-duration task occupies its core as compute would
    end = time.perf_counter() + duration_s
    while time.perf_counter() < end:
        pass
    return out


def _gemms(operands: list[tuple[np.ndarray, np.ndarray, np.ndarray]], out: np.ndarray,
           inputs: Sequence[np.ndarray]) -> np.ndarray:
    for a, b, c in operands:
        np.matmul(a, b, out=c)
    return out


def _stream(buffers: list[tuple[np.ndarray, np.ndarray]], out: np.ndarray,
            inputs: Sequence[np.ndarray]) -> np.ndarray:
    for src, dst in buffers:
        np.copyto(dst, src)
    return out
