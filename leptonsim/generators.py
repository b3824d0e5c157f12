"""Seeded task-graph generators: independent, chain, fork-join, layered random DAG,
and the seed's splitting of tasks into sub-tasks no longer than a cap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import IndexedNames, TaskGraph


@dataclass(frozen=True, slots=True)
class TaskCost:
    """What each generated task costs: a fixed duration, or FLOPs and memory bytes.
    `spread` > 0 draws each task's cost uniformly in [1-spread, 1+spread] times it."""

    duration_s: float | None = None
    flops: float = 0.0
    nbytes: float = 0.0
    spread: float = 0.0

    def columns(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        scale = np.ones(n) if self.spread == 0 else rng.uniform(1 - self.spread, 1 + self.spread, n)
        duration = np.full(n, np.nan) if self.duration_s is None else self.duration_s * scale
        return self.flops * scale, self.nbytes * scale, duration


KINDS = ("independent", "chain", "fork_join", "layered")
"""The generators, by the name a scenario's [workload.generator] kind gives them."""


def _graph(n: int, cost: TaskCost, rng: np.random.Generator, src: np.ndarray,
           dst: np.ndarray, edge_bytes: float, prefix: str = "t") -> TaskGraph:
    flops, nbytes, duration = cost.columns(n, rng)
    return TaskGraph(
        names=IndexedNames(prefix, n), flops=flops, nbytes=nbytes, duration_s=duration,
        pin=np.full(n, -1, np.int64), edge_src=src.astype(np.int64),
        edge_dst=dst.astype(np.int64), edge_bytes=np.full(len(src), float(edge_bytes)),
    )


def independent(n: int, cost: TaskCost, seed: int = 0) -> TaskGraph:
    empty = np.zeros(0, np.int64)
    return _graph(n, cost, np.random.default_rng(seed), empty, empty, 0.0)


def chain(n: int, cost: TaskCost, edge_bytes: float = 0.0, seed: int = 0) -> TaskGraph:
    src = np.arange(max(n - 1, 0))
    return _graph(n, cost, np.random.default_rng(seed), src, src + 1, edge_bytes)


def fork_join(width: int, stages: int, cost: TaskCost, edge_bytes: float = 0.0,
              seed: int = 0) -> TaskGraph:
    """`stages` repetitions of: one fork task → `width` parallel tasks → (next fork).
    A final join task closes the graph. Tasks: stages*(width+1) + 1."""
    block = width + 1
    forks = np.arange(stages) * block
    workers = forks[:, None] + 1 + np.arange(width)[None, :]
    joins = forks + block  # the next fork, or the final join
    src = np.concatenate([np.repeat(forks, width), workers.ravel()])
    dst = np.concatenate([workers.ravel(), np.repeat(joins, width)])
    return _graph(stages * block + 1, cost, np.random.default_rng(seed), src, dst, edge_bytes)


def layered(n: int, width: int, degree: int, cost: TaskCost, edge_bytes: float = 0.0,
            seed: int = 0) -> TaskGraph:
    """Layers of `width` tasks; each task after the first layer depends on `degree`
    distinct random tasks of the layer before (fewer if that layer is smaller)."""
    rng = np.random.default_rng(seed)
    width = min(width, max(n, 1))  # a layer wider than the graph is the whole graph
    layer = np.arange(n) // width
    first = np.flatnonzero(layer > 0)
    if first.size == 0:
        return independent(n, cost, seed)
    k = min(degree, width)
    prev_start = (layer[first] - 1) * width
    offsets = _distinct(rng, first.size, width, k)
    src = (prev_start[:, None] + offsets).ravel()
    dst = np.repeat(first, k)
    return _graph(n, cost, rng, src, dst, edge_bytes)


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def _distinct(rng: np.random.Generator, rows: int, width: int, k: int) -> np.ndarray:
    """Per row, k distinct integers in [0, width): Floyd's sampling, vectorised
    over rows so memory stays O(rows * k) rather than O(rows * width)."""
    out = np.empty((rows, k), np.int64)
    for j in range(k):
        pick = rng.integers(0, width - k + j + 1, rows)
        taken = (out[:, :j] == pick[:, None]).any(axis=1)
        out[:, j] = np.where(taken, width - k + j, pick)
    return out


def split_tasks(graph: TaskGraph, max_duration_s: float) -> TaskGraph:
    """The seed's sub-task split: each fixed-duration task of duration d becomes
    ceil(d / cap) equal pieces that may run in parallel; every piece of a successor
    depends on every piece of its predecessor, and edge bytes are shared evenly."""
    if max_duration_s <= 0:
        raise ValueError("max_duration_s must be > 0")
    d = graph.duration_s
    if np.isnan(d).any():
        raise ValueError("only fixed-duration tasks can be split by duration")
    pieces = np.maximum(1, np.ceil(d / max_duration_s - 1e-12)).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(pieces)[:-1]])
    owner = np.repeat(np.arange(graph.size), pieces)
    names = [f"{graph.names[t]}.{i}" for t, c in enumerate(pieces) for i in range(c)]
    src_list, dst_list, byte_list = [], [], []
    for e in range(graph.num_edges):
        a, b = int(graph.edge_src[e]), int(graph.edge_dst[e])
        pa, pb = np.arange(pieces[a]) + first[a], np.arange(pieces[b]) + first[b]
        src_list.append(np.repeat(pa, pieces[b]))
        dst_list.append(np.tile(pb, pieces[a]))
        byte_list.append(np.full(pieces[a] * pieces[b], graph.edge_bytes[e] / (pieces[a] * pieces[b])))
    return TaskGraph(
        names=tuple(names), flops=graph.flops[owner] / pieces[owner],
        nbytes=graph.nbytes[owner] / pieces[owner], duration_s=d[owner] / pieces[owner],
        pin=graph.pin[owner], edge_src=_cat(src_list, np.int64), edge_dst=_cat(dst_list, np.int64),
        edge_bytes=_cat(byte_list, float),
    )
