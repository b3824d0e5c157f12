"""TaskGraph: a DAG of compute tasks and data edges, stored as compact arrays.

Per-task state lives in NumPy columns and successor/predecessor lists in CSR form,
so a million tasks fit in a few hundred megabytes. Validation happens once, in
`TaskGraph.__post_init__`; everything downstream trusts the graph.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .errors import GraphError, did_you_mean
from .limits import guard_size


class IndexedNames(Sequence[str]):
    """Names prefix0, prefix1, ... without storing a million strings."""

    def __init__(self, prefix: str, count: int) -> None:
        self.prefix, self.length = prefix, count

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.length))]
        if not -self.length <= i < self.length:
            raise IndexError(i)
        return f"{self.prefix}{i % self.length}"

    def __iter__(self) -> Iterator[str]:
        return (f"{self.prefix}{i}" for i in range(self.length))


class Labels(Sequence[str]):
    """A per-task label drawn from a small vocabulary (op kinds)."""

    def __init__(self, vocabulary: Sequence[str], ids: np.ndarray) -> None:
        self.vocabulary, self.ids = tuple(vocabulary), ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self.vocabulary[j] for j in self.ids[i]]
        return self.vocabulary[int(self.ids[i])]


GEMM_FIELDS = ("m", "n", "k", "batch", "count")


@dataclass(frozen=True, eq=False)
class GemmRows:
    """The GEMMs inside tasks (or layer columns), one row per GEMM as flat int64
    columns: `task` (the row's owner), m, n, k, batch (products per launch) and count
    (launches in sequence). A ragged table, not an object per task: a graph of 10^6
    tasks carries its GEMMs in six arrays (ops.base.Gemm says what a row means)."""

    task: np.ndarray
    m: np.ndarray
    n: np.ndarray
    k: np.ndarray
    batch: np.ndarray
    count: np.ndarray

    @staticmethod
    def of(per_task: Sequence[Sequence[object]]) -> GemmRows:
        """Rows from, per task in order, its GEMMs (objects with m, n, k, batch, count)."""
        owner = np.repeat(np.arange(len(per_task), dtype=np.int64),
                          [len(g) for g in per_task])
        cols = [np.array([getattr(g, f) for gs in per_task for g in gs], np.int64)
                for f in GEMM_FIELDS]
        return GemmRows(owner, *cols)

    def __len__(self) -> int:
        return len(self.task)

    def flops(self) -> np.ndarray:
        """Per row, 2 m n k batch count, as floats."""
        return 2.0 * self.m * self.n * self.k * self.batch * self.count


@dataclass(frozen=True, eq=False)
class TaskGraph:
    """Tasks 0..n-1 and edges 0..m-1. A task is either roofline-costed (flops, nbytes)
    or fixed (duration_s not NaN). pin[i] is a unit index or -1 for "anywhere".
    comm[i] marks a fixed task that stands for communication the graph does not
    spell out as transfers (a collapsed collective): its duration is not divided by
    the unit's efficiency. `gemms` are the GEMMs among the tasks' FLOPs (None: none
    known, a generated or listed graph), `kernels[i]` the kernels task i launches (1
    each when None)."""

    names: Sequence[str]
    flops: np.ndarray
    nbytes: np.ndarray
    duration_s: np.ndarray
    pin: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_bytes: np.ndarray
    kinds: Sequence[str] | None = None
    comm: np.ndarray | None = None
    gemms: GemmRows | None = None
    kernels: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.names)
        if self.comm is None:
            object.__setattr__(self, "comm", np.zeros(n, bool))
        if self.kernels is None:  # 1 each, read-only and without memory of its own
            object.__setattr__(self, "kernels", np.broadcast_to(np.int64(1), (n,)))
        for col in ("flops", "nbytes", "duration_s", "pin", "comm", "kernels"):
            if len(getattr(self, col)) != n:
                raise GraphError(f"column {col} has {len(getattr(self, col))} entries for {n} tasks")
        self._check_sizes()
        self._check_edges(n)
        self._check_gemms(n)
        if self.kinds is None:
            object.__setattr__(self, "kinds", Labels(("task",), np.zeros(n, np.int8)))
        _ = self.levels  # raises on a cycle

    def _check_sizes(self) -> None:
        for col in ("flops", "nbytes", "duration_s"):
            values = getattr(self, col)
            bad = np.flatnonzero(values < 0)
            if bad.size:
                i = int(bad[0])
                raise GraphError(f"task {self.names[i]}: {col} must be >= 0, found {values[i]}",
                                 path=f"{self.names[i]}.{col}")
        bad = np.flatnonzero(self.edge_bytes < 0)
        if bad.size:
            e = int(bad[0])
            raise GraphError(
                f"edge {self.names[self.edge_src[e]]}→{self.names[self.edge_dst[e]]}: "
                f"bytes must be >= 0, found {self.edge_bytes[e]}")

    def _check_gemms(self, n: int) -> None:
        if np.any(np.asarray(self.kernels) < 0):
            raise GraphError("kernels per task must be >= 0")
        if self.gemms is None:
            return
        rows = self.gemms
        if np.any((rows.task < 0) | (rows.task >= n)):
            raise GraphError(f"a GEMM row refers to a task outside 0..{n - 1}")
        for f in GEMM_FIELDS:
            if np.any(getattr(rows, f) < 1):
                raise GraphError(f"every GEMM's {f} must be >= 1")

    def _check_edges(self, n: int) -> None:
        for col in (self.edge_src, self.edge_dst):
            bad = np.flatnonzero((col < 0) | (col >= n))
            if bad.size:
                raise GraphError(f"edge {int(bad[0])} refers to unknown task {int(col[bad[0]])}")

    # -- sizes and adjacency ------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def num_edges(self) -> int:
        return len(self.edge_src)

    @cached_property
    def successors(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR (ptr, edge ids) of out-edges, edges of a task in insertion order."""
        return _csr(self.edge_src, self.size)

    @cached_property
    def predecessors(self) -> tuple[np.ndarray, np.ndarray]:
        return _csr(self.edge_dst, self.size)

    @cached_property
    def in_degree(self) -> np.ndarray:
        return np.bincount(self.edge_dst, minlength=self.size).astype(np.int32)

    # -- order ------------------------------------------------------------------------
    @cached_property
    def levels(self) -> tuple[np.ndarray, ...]:
        """Tasks grouped by depth: level k holds the tasks whose longest chain of
        predecessors has k edges. Raises GraphError naming the tasks on a cycle."""
        n = self.size
        indeg = self.in_degree.copy()
        ptr, eids = self.successors
        frontier = np.flatnonzero(indeg == 0)
        out: list[np.ndarray] = []
        seen = 0
        while frontier.size:
            out.append(frontier.astype(np.int32))  # ids as int32: half the bytes
            seen += frontier.size
            starts, ends = ptr[frontier], ptr[frontier + 1]
            edges = eids[_ranges(starts, ends)]
            dst = self.edge_dst[edges]
            np.subtract.at(indeg, dst, 1)
            frontier = np.unique(dst[indeg[dst] == 0])
        if seen < n:
            raise GraphError(f"cycle in task graph: {' → '.join(self._find_cycle(indeg))}")
        return tuple(out)

    @cached_property
    def level_of(self) -> np.ndarray:
        level = np.empty(self.size, np.int64)
        for k, tasks in enumerate(self.levels):
            level[tasks] = k
        return level

    def _find_cycle(self, indeg: np.ndarray) -> list[str]:
        """Walk predecessors inside the unresolved set until a task repeats."""
        stuck = indeg > 0
        ptr, eids = self.predecessors
        node = int(np.flatnonzero(stuck)[0])
        order: dict[int, int] = {}
        while node not in order:
            order[node] = len(order)
            preds = self.edge_src[eids[ptr[node]:ptr[node + 1]]]
            node = int(preds[stuck[preds]][0])
        cycle = [k for k, i in sorted(order.items(), key=lambda kv: kv[1]) if i >= order[node]]
        cycle.reverse()  # we walked backwards
        return [self.names[i] for i in cycle + [cycle[0]]]

    # -- paths ------------------------------------------------------------------------
    def longest_path(self, task_s: np.ndarray, edge_s: np.ndarray | None = None
                     ) -> tuple[float, list[int]]:
        """Length and tasks of the heaviest path with task weights task_s and edge
        weights edge_s (0 when None): the critical path."""
        finish, start = self._forward_pass(task_s, edge_s)
        if self.size == 0:
            return 0.0, []
        node = int(np.argmax(finish))
        path = [node]
        ptr, eids = self.predecessors
        while start[node] > 0:
            edges = eids[ptr[node]:ptr[node + 1]]
            arrive = finish[self.edge_src[edges]] + (0 if edge_s is None else edge_s[edges])
            node = int(self.edge_src[edges[int(np.argmax(arrive))]])
            path.append(node)
        path.reverse()
        return float(finish.max()), path

    def _forward_pass(self, task_s: np.ndarray, edge_s: np.ndarray | None
                      ) -> tuple[np.ndarray, np.ndarray]:
        start = np.zeros(self.size)
        finish = np.zeros(self.size)
        by_level = self._edges_by_level(self.edge_dst)
        for tasks, edges in zip(self.levels, by_level, strict=True):
            if edges.size:
                arrive = finish[self.edge_src[edges]]
                if edge_s is not None:
                    arrive = arrive + edge_s[edges]
                np.maximum.at(start, self.edge_dst[edges], arrive)
            finish[tasks] = start[tasks] + task_s[tasks]
        return finish, start

    def upward_rank(self, task_s: np.ndarray, edge_s: np.ndarray | None = None) -> np.ndarray:
        """HEFT's rank_u: a task's weight plus the heaviest path (edge weights
        included) from it to an exit task."""
        rank = np.zeros(self.size)
        tail = np.zeros(self.size)
        by_level = self._edges_by_level(self.edge_src)
        for tasks, edges in zip(reversed(self.levels), reversed(by_level), strict=True):
            if edges.size:
                after = rank[self.edge_dst[edges]]
                if edge_s is not None:
                    after = after + edge_s[edges]
                np.maximum.at(tail, self.edge_src[edges], after)
            rank[tasks] = task_s[tasks] + tail[tasks]
        return rank

    def _edges_by_level(self, endpoint: np.ndarray) -> list[np.ndarray]:
        """Edge ids grouped by the level of the given endpoint (src or dst)."""
        lv = self.level_of[endpoint]
        order = np.argsort(lv, kind="stable")
        bounds = np.searchsorted(lv[order], np.arange(len(self.levels) + 1))
        return [order[bounds[k]:bounds[k + 1]] for k in range(len(self.levels))]


def _csr(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(ptr, edge ids by key); the ids as int32 while they fit, half the bytes."""
    order = np.argsort(keys, kind="stable")
    if len(keys) < 2**31:
        order = order.astype(np.int32)
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=ptr[1:])
    return ptr, order


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, e) for each pair, vectorised."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return offsets + np.arange(total)


class GraphBuilder:
    """Collects tasks and edges by name, then builds one validated TaskGraph; past
    limits.SIZES["tasks"] or ["edges"] it raises SizeError instead of growing."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._names: list[str] = []
        self._kinds: list[str] = []
        self._cols: tuple[list[float], ...] = ([], [], [], [])
        self._comm: list[bool] = []
        self._gemms: list[Sequence[object]] = []
        self._kernels: list[int] = []
        self._edges: tuple[list[int], list[int], list[float]] = ([], [], [])

    def task(self, name: str, *, flops: float = 0.0, nbytes: float = 0.0,
             duration_s: float | None = None, pin: int = -1, kind: str = "task",
             comm: bool = False, gemms: Sequence[object] = (), kernels: int = 1) -> int:
        """A task; `gemms` are the GEMMs among its FLOPs (ops.base.Gemm), `kernels` the
        kernels it launches."""
        if name in self._index:
            raise GraphError(f"duplicate task name {name!r}", path=name)
        guard_size("tasks", len(self._names) + 1)
        self._index[name] = len(self._names)
        self._names.append(name)
        self._kinds.append(kind)
        self._comm.append(comm)
        self._gemms.append(gemms)
        self._kernels.append(kernels)
        for col, value in zip(self._cols, (flops, nbytes, np.nan if duration_s is None
                                           else duration_s, pin), strict=True):
            col.append(value)
        return self._index[name]

    def edge(self, src: str | int, dst: str | int, nbytes: float = 0.0) -> None:
        guard_size("edges", len(self._edges[2]) + 1)
        self._edges[0].append(self._resolve(src))
        self._edges[1].append(self._resolve(dst))
        self._edges[2].append(nbytes)

    def _resolve(self, ref: str | int) -> int:
        if isinstance(ref, int):
            return ref
        if ref not in self._index:
            hint = did_you_mean(ref, self._index)
            raise GraphError(f"unknown task {ref!r}" + (f" ({hint})" if hint else ""), path=ref)
        return self._index[ref]

    def build(self) -> TaskGraph:
        vocab = sorted(set(self._kinds))
        index = {k: i for i, k in enumerate(vocab)}
        kind_ids = np.array([index[k] for k in self._kinds], np.int16)
        flops, nbytes, duration, pin = self._cols
        return TaskGraph(
            names=tuple(self._names),
            flops=np.array(flops, float), nbytes=np.array(nbytes, float),
            duration_s=np.array(duration, float), pin=np.array(pin, np.int64),
            edge_src=np.array(self._edges[0], np.int64),
            edge_dst=np.array(self._edges[1], np.int64),
            edge_bytes=np.array(self._edges[2], float),
            kinds=Labels(vocab, kind_ids), comm=np.array(self._comm, bool),
            gemms=GemmRows.of(self._gemms) if any(self._gemms) else None,
            kernels=np.array(self._kernels, np.int64),
        )

