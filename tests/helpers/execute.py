"""Kernel sources for test_execute.py, in a module of their own: a worker process
imports the module its KernelSource class lives in, and this one imports only numpy
(importing test_execute.py would pull in pytest, hypothesis and matplotlib: seconds)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from leptonsim.graph import TaskGraph


class PatternKernels:
    """Each task outputs a float32 array of exactly its out-edge bytes (or 3 more
    values, to test the byte-prefix path) and checks that every input is what its
    producer made: the received bytes equal the sent bytes, end to end. Within a
    worker the producer's array itself is handed over."""

    def __init__(self, longer: bool, placement: np.ndarray) -> None:
        self.longer, self.placement = longer, placement

    def prepare(self, graph: TaskGraph, task: int):
        ptr, eids = graph.successors
        out_bytes = int(graph.edge_bytes[eids[ptr[task]:ptr[task + 1]]].max(initial=0))
        out = self.payload(task, out_bytes // 4 + (3 if self.longer else 0))
        ptr, eids = graph.predecessors
        expected = [self.expect(graph, e) for e in eids[ptr[task]:ptr[task + 1]]
                    if graph.edge_bytes[e] > 0]
        return lambda inputs: self.check(inputs, expected, out)

    @staticmethod
    def payload(task: int, count: int) -> np.ndarray:
        return (np.arange(count, dtype=np.float32) * 0.5 + task).reshape(-1, 1)

    def expect(self, graph: TaskGraph, e: int) -> np.ndarray:
        n = int(graph.edge_bytes[e])
        ptr, eids = graph.successors
        src = int(graph.edge_src[e])
        full = self.payload(src, int(graph.edge_bytes[eids[ptr[src]:ptr[src + 1]]].max()) // 4
                            + (3 if self.longer else 0))
        same = self.placement[src] == self.placement[graph.edge_dst[e]]
        return full if same or full.nbytes == n else full.reshape(-1).view(np.uint8)[:n]

    @staticmethod
    def check(inputs: Sequence[np.ndarray], expected: list[np.ndarray], out: np.ndarray):
        assert len(inputs) == len(expected)
        for got, want in zip(inputs, expected, strict=True):
            assert got.dtype == want.dtype and np.array_equal(got.reshape(want.shape), want)
        return out


class Failing:
    def prepare(self, graph: TaskGraph, task: int):
        def kernel(inputs):
            if task == 2:
                raise ValueError("kernel 2 broke")
            return None
        return kernel


class CallLimit:
    """Every kernel fails on its call number `limit + 1`: a run that calls a task's
    kernel more often than `limit` times is reported as an ExecutionError."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def prepare(self, graph: TaskGraph, task: int):
        calls = [0]

        def kernel(inputs):
            calls[0] += 1
            if calls[0] > self.limit:
                raise ValueError(f"task {task} called {calls[0]} times")
            return None
        return kernel
