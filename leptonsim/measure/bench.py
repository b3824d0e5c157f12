"""Microbenchmarks run *through the executor*, so calibration measures exactly what
executed tasks and transfers experience: the same worker processes (one BLAS
thread), the same synthetic kernels, the same shared-memory lanes and clock.

Each benchmark is a small TaskGraph; its measured Trace is the measurement.
`median_seconds` is the one direct timing loop (`leptonsim profile`'s backends).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..execute import execute
from ..execute.kernels import Kernel, SyntheticKernels
from ..graph import GraphBuilder, TaskGraph


class BenchKernels:
    """SyntheticKernels, with float64 GEMMs for tasks of kind "gemm_float64"."""

    def __init__(self) -> None:
        self.f32 = SyntheticKernels(max_gemm_n=1 << 16)
        self.f64 = SyntheticKernels(max_gemm_n=1 << 16, dtype="float64")

    def prepare(self, graph: TaskGraph, task: int) -> Kernel:
        source = self.f64 if graph.kinds and graph.kinds[task] == "gemm_float64" else self.f32
        return source.prepare(graph, task)


@dataclass(frozen=True)
class Compute:
    gemm: dict[tuple[str, int], float]   # (dtype, n) -> median seconds of one n×n×n GEMM
    copy_s: float                        # median seconds to copy copy_bytes
    copy_bytes: int
    task_overhead_s: float               # median start-to-start of back-to-back no-op tasks


def compute(sizes: Sequence[int], copy_bytes: int, repeats: int, noops: int = 200) -> Compute:
    """GEMM ladder (float32, float64), a large copy and a run of no-op tasks, all on one
    worker. Independent tasks run in id order: a warm-up GEMM first, then each
    measurement `repeats` times in a row."""
    b = GraphBuilder()
    b.task("warmup", flops=2.0 * 256**3, pin=0, kind="gemm_float32")
    for dtype in ("float32", "float64"):
        for n in sizes:
            for r in range(repeats):
                b.task(f"gemm_{dtype}_{n}_{r}", flops=2.0 * n**3, pin=0, kind=f"gemm_{dtype}")
    for r in range(repeats):
        # flops 0: the stream path; nbytes counts read + write, i.e. twice the copy
        b.task(f"copy_{r}", nbytes=2.0 * copy_bytes, pin=0, kind="copy")
    for r in range(noops):
        b.task(f"noop_{r}", comm=True, duration_s=0.0, pin=0, kind="noop")
    graph = b.build()
    trace = execute(graph, graph.pin, 1, kernels=BenchKernels())
    took = np.empty(graph.size)
    took[trace.task] = trace.task_end - trace.task_start
    start = np.empty(graph.size)
    start[trace.task] = trace.task_start
    index = {name: i for i, name in enumerate(graph.names)}
    gemm = {(dt, n): float(np.median([took[index[f"gemm_{dt}_{n}_{r}"]] for r in range(repeats)]))
            for dt in ("float32", "float64") for n in sizes}
    copies = [took[index[f"copy_{r}"]] for r in range(repeats)]
    noop = np.array([start[index[f"noop_{r}"]] for r in range(noops)])
    return Compute(gemm, float(np.median(copies)), copy_bytes, float(np.median(np.diff(noop))))


def ping_pong(sizes: Sequence[int], repeats: int) -> dict[int, float]:
    """Median seconds of one transfer of each size between two workers: a chain of
    no-op tasks alternating between the workers, its edges carrying the bytes."""
    b = GraphBuilder()
    prev = b.task("start", comm=True, duration_s=0.0, pin=0, kind="noop")
    edges: list[int] = []
    for n in sizes:
        for r in range(repeats + 1):  # the first of each size warms its pages up
            t = b.task(f"hop_{n}_{r}", comm=True, duration_s=0.0, pin=(prev + 1) % 2, kind="noop")
            b.edge(prev, t, float(n))
            edges.append(n if r else -1)
            prev = t
    graph = b.build()
    trace = execute(graph, graph.pin, 2)
    took = np.empty(graph.num_edges)
    pos = {(s, d): e for e, (s, d) in enumerate(zip(graph.edge_src.tolist(),
                                                   graph.edge_dst.tolist(), strict=True))}
    for s, d, t in zip(trace.xfer_src_task.tolist(), trace.xfer_dst_task.tolist(),
                       (trace.xfer_end - trace.xfer_start).tolist(), strict=True):
        took[pos[(s, d)]] = t
    size = np.array(edges)
    return {n: float(np.median(took[size == n])) for n in sizes}


def fit_latency_bandwidth(sizes: Sequence[int], seconds: Sequence[float]) -> tuple[float, float]:
    """(alpha, B) of t = alpha + n / B by least squares on *relative* error, so the
    microsecond small-message times weigh as much as the millisecond large ones."""
    n = np.asarray(sizes, float)
    t = np.asarray(seconds, float)
    rows = np.column_stack([np.ones_like(n), n]) / t[:, None]
    (alpha, gap), *_ = np.linalg.lstsq(rows, np.ones_like(t), rcond=None)
    if gap <= 0:  # noise swamped the slope: fall back to the largest transfer's rate
        gap = t[-1] / n[-1]
    alpha = float(alpha) if alpha > 0 else float(t.min())
    return alpha, float(1.0 / gap)


def median_seconds(call: Callable[[], object], synchronize: Callable[[], None], repeats: int,
                   warmup: int = 1, clock: Callable[[], float] = time.perf_counter) -> float:
    """Median wall time of `call()` over `repeats` calls after `warmup` untimed ones, each
    timed from a synchronised device to a synchronised device (an asynchronous backend,
    CUDA, is waited for; the launch is part of the time, as in a training step). For
    `leptonsim profile`, which times ops directly rather than through the executor."""
    for _ in range(warmup):
        call()
    synchronize()
    took = []
    for _ in range(repeats):
        start = clock()
        call()
        synchronize()
        took.append(clock() - start)
    return float(np.median(took))
