"""The neutral workload file (`.lsdag`, plain text) shared by leptonsim and the SimGrid
runner (sg_dag.cpp): writer, reader, and leptonsim's simulation of a file.

Format, version 1 (one record per line; `#` lines are comments; floats are written with
Python's shortest round-trip repr, so both readers get the same doubles):

    lsdag 1
    speed <flop/s>                       host speed for SimGrid: exec flops = seconds * speed
    nodes <U> <S>                        U units (node ids 0..U-1), then S switches (U..U+S-1)
    links <L>
    <a> <b> <latency_s> <bandwidth_B/s> <duplex 0|1>           L lines, link id = line order
    routes <R>
    <src_unit> <dst_unit> <k> <link> <dir> ... (k pairs)       dir 0: a->b, 1: b->a, 2: half-duplex
    tasks <N>
    <seconds> <unit>                     N lines, task id = line order, unit = where it is pinned
    edges <M>
    <src_task> <dst_task> <bytes>        M lines, in leptonsim's edge order
    end

Routes are leptonsim's own (`Cluster.route`, BFS in node order), written out so that
SimGrid follows exactly the same channels; the reader rebuilds the cluster from nodes and
links and refuses a file whose routes are not the ones leptonsim would take. Task seconds
are leptonsim's Roofline times on the pinned unit, so both sides use fixed durations.
A malformed file raises ScenarioError naming the file and line: one line on stderr.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from leptonsim.cost import Roofline
from leptonsim.errors import ScenarioError
from leptonsim.graph import IndexedNames, TaskGraph
from leptonsim.hardware import Cluster, ComputeUnit, Link, LinkSpec, replicate
from leptonsim.sim import simulate
from leptonsim.trace import Trace


def units(k: int, speed: float = 1e12) -> tuple[ComputeUnit, ...]:
    """k units whose Roofline time of a fixed-duration task is that duration."""
    return replicate(ComputeUnit("u", peak_flops=speed, memory_bandwidth=1e30), k, "u")


def channel_dirs(cluster: Cluster) -> list[tuple[int, int]]:
    """channel id -> (link id, dir) in the order Cluster builds its channels."""
    out: list[tuple[int, int]] = []
    for i, link in enumerate(cluster.links):
        out += [(i, 0), (i, 1)] if link.spec.duplex else [(i, 2)]
    return out


# -- writing ---------------------------------------------------------------------------------
def write(path: str | Path, graph: TaskGraph, cluster: Cluster, *, speed: float = 1e12,
          comment: str = "") -> None:
    """Write graph (every task pinned) and cluster; task seconds from leptonsim's Roofline."""
    if (graph.pin < 0).any():
        raise ValueError("every task must be pinned")
    if any(link.spec.bus_efficiency != 1.0 for link in cluster.links):
        raise ValueError("links with a bus efficiency below 1 have no SimGrid counterpart here")
    times = Roofline().task_times(graph, cluster)
    seconds = times[cluster.unit_type[graph.pin], np.arange(graph.size)]
    index, dirs = cluster.node_index, channel_dirs(cluster)
    with open(path, "w") as f:
        f.write("lsdag 1\n")
        f.writelines(f"# {line}\n" for line in comment.splitlines())
        f.write(f"speed {float(speed)!r}\nnodes {cluster.size} {len(cluster.switches)}\n")
        f.write(f"links {len(cluster.links)}\n")
        for link in cluster.links:
            s = link.spec
            f.write(f"{index[link.a]} {index[link.b]} {float(s.latency_s)!r} {float(s.bandwidth)!r} "
                    f"{int(s.duplex)}\n")
        pairs = [(i, j) for i in range(cluster.size) for j in range(cluster.size) if i != j]
        f.write(f"routes {len(pairs)}\n")
        for i, j in pairs:
            hops = [dirs[c] for c in cluster.route(i, j)]
            f.write(f"{i} {j} {len(hops)} " + " ".join(f"{li} {d}" for li, d in hops) + "\n")
        f.write(f"tasks {graph.size}\n")
        _write_rows(f, seconds.tolist(), graph.pin.tolist())
        f.write(f"edges {graph.num_edges}\n")
        _write_rows(f, graph.edge_src.tolist(), graph.edge_dst.tolist(), graph.edge_bytes.tolist())
        f.write("end\n")


def _write_rows(f: TextIO, *cols: list, chunk: int = 1 << 16) -> None:
    for a in range(0, len(cols[0]), chunk):
        rows = zip(*(c[a:a + chunk] for c in cols), strict=True)
        f.write("".join(" ".join(map(repr, row)) + "\n" for row in rows))


# -- reading ---------------------------------------------------------------------------------
@dataclass
class Workload:
    speed: float
    cluster: Cluster
    seconds: np.ndarray
    unit: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    nbytes: np.ndarray

    def graph(self) -> TaskGraph:
        n = len(self.seconds)
        return TaskGraph(names=IndexedNames("t", n), flops=np.zeros(n), nbytes=np.zeros(n),
                         duration_s=self.seconds, pin=self.unit, edge_src=self.src,
                         edge_dst=self.dst, edge_bytes=self.nbytes)


class _Lines:
    """The file's lines with their numbers, comments skipped; refusals name file and line."""

    def __init__(self, f: TextIO, file: str) -> None:
        self.f, self.file, self.number = f, file, 0

    def fail(self, expected: str, found: object, hint: str = "") -> ScenarioError:
        return ScenarioError(f"line {self.number}", expected, found, file=self.file, hint=hint)

    def next(self, expected: str) -> list[str]:
        for line in self.f:
            self.number += 1
            if not line.startswith("#"):
                return line.split()
        raise self.fail(expected, "<the end of the file>")

    def header(self, word: str, count: int) -> list[str]:
        parts = self.next(f"'{word}'")
        if not parts or parts[0] != word or len(parts) != count + 1:
            raise self.fail(f"'{word}' and {count} number(s)", " ".join(parts))
        return parts[1:]

    def ints(self, word: str, count: int = 1) -> list[int]:
        parts = self.header(word, count)
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise self.fail(f"'{word}' and {count} integer(s)", " ".join(parts)) from None
        if min(values) < 0:
            raise self.fail("counts >= 0", " ".join(parts))
        return values

    def rows(self, count: int, cols: int, what: str) -> Iterator[list[str]]:
        for _ in range(count):
            parts = self.next(f"{count} {what} lines")
            if len(parts) != cols:
                raise self.fail(f"{cols} numbers ({what})", " ".join(parts) or "<an empty line>")
            yield parts

    def table(self, count: int, cols: int, what: str) -> np.ndarray:
        """count rows of cols numbers (10^7 lines in seconds: parsed by NumPy)."""
        out = np.empty((count, cols))
        chunk = 1 << 16
        for a in range(0, count, chunk):
            block = list(self.rows(min(chunk, count - a), cols, what))
            try:
                out[a:a + len(block)] = np.array(block, dtype=float)
            except ValueError:
                self.number -= len(block)
                for parts in block:
                    self.number += 1
                    try:
                        [float(p) for p in parts]
                    except ValueError:
                        raise self.fail(f"{cols} numbers ({what})", " ".join(parts)) from None
        return out


def read(path: str | Path) -> Workload:
    """The file as leptonsim's cluster and graph columns; ScenarioError if malformed."""
    with open(path) as f:
        lines = _Lines(f, str(path))
        first = lines.next("'lsdag 1'")
        if first != ["lsdag", "1"]:
            raise lines.fail("'lsdag 1'", " ".join(first) or "<an empty line>", "not an lsdag 1 file")
        speed = float(lines.header("speed", 1)[0])
        nu, ns = lines.ints("nodes", 2)
        links = [(int(a), int(b), float(lat), float(bw), dup == "1")
                 for a, b, lat, bw, dup in lines.rows(lines.ints("links")[0], 5, "link")]
        routes = {(int(v[0]), int(v[1])): [(int(v[3 + 2 * h]), int(v[4 + 2 * h])) for h in range(int(v[2]))]
                  for v in _route_rows(lines, lines.ints("routes")[0])}
        t = lines.table(lines.ints("tasks")[0], 2, "task")
        e = lines.table(lines.ints("edges")[0], 3, "edge")
        end = lines.next("'end'")
        if end != ["end"]:
            raise lines.fail("'end'", " ".join(end), "more rows than the section's count?")
    return Workload(speed, _cluster(str(path), nu, ns, links, routes, speed), t[:, 0].copy(),
                    t[:, 1].astype(np.int64), e[:, 0].astype(np.int64), e[:, 1].astype(np.int64),
                    e[:, 2].copy())


def _route_rows(lines: _Lines, count: int) -> Iterator[list[str]]:
    for _ in range(count):
        v = lines.next(f"{count} route lines")
        if len(v) < 3 or not v[2].isdigit() or len(v) != 3 + 2 * int(v[2]):
            raise lines.fail("'src dst k' and k (link, dir) pairs", " ".join(v) or "<an empty line>")
        yield v


def _cluster(file: str, nu: int, ns: int, links: list, routes: dict, speed: float) -> Cluster:
    us = units(nu, speed)
    names = [u.name for u in us] + [f"sw{i}" for i in range(ns)]
    try:
        cluster = Cluster(us, tuple(Link(f"l{i}", names[a], names[b], LinkSpec(lat, bw, dup))
                                    for i, (a, b, lat, bw, dup) in enumerate(links)), tuple(names[nu:]))
    except (IndexError, ValueError) as err:
        raise ScenarioError("links", f"links between nodes 0..{nu + ns - 1}", str(err), file=file) from None
    dirs = channel_dirs(cluster)
    for (i, j), hops in routes.items():   # leptonsim must route as the file says
        ours = [dirs[c] for c in cluster.route(i, j)]
        if ours != hops:
            raise ScenarioError(f"routes.{i}->{j}", f"leptonsim's route {ours}", hops, file=file)
    return cluster


def simulate_file(wl: Workload, network: str, graph: TaskGraph | None = None) -> Trace:
    """leptonsim's engine, static scheduler: every task where the file pins it."""
    return simulate(graph if graph is not None else wl.graph(), wl.cluster, "static", network=network)
