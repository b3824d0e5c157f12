"""Compute units, links, topologies and deterministic shortest-path routing.

All quantities are SI floats (seconds, bytes, FLOP/s, B/s); parsing of "25 GB/s"
happens once, in the scenario layer. Objects are immutable; a Cluster derives its
channels (one contended resource per link direction) and routes on construction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order

from .errors import SimulationError

PRECISIONS = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8")
"""The arithmetic precisions a unit may have a dense peak for (ComputeUnit.peaks)."""


@dataclass(frozen=True, slots=True)
class ComputeUnit:
    """A kind of compute unit. `peak_flops` is its default peak (the one a bare `peak`
    gives); `peaks` are its dense peaks by precision ("fp64", "fp32", "tf32", "fp16",
    "bf16", "fp8", "int8"), which `peak(precision)` reads. `efficiency` is the achievable
    fraction of a peak on large GEMMs, `bandwidth_efficiency` that of memory bandwidth
    on streaming kernels; `sms` is the count of streaming multiprocessors (compute
    units, cores) work is spread over, 0 when unknown (no wave quantisation then)."""

    name: str
    peak_flops: float
    memory_bandwidth: float
    memory_bytes: float = float("inf")
    efficiency: float = 1.0
    overhead_s: float = 0.0
    idle_power_w: float = 0.0
    busy_power_w: float = 0.0
    price_per_hour: float = 0.0  # USD per unit-hour, for cost reports
    peaks: tuple[tuple[str, float], ...] = ()
    bandwidth_efficiency: float = 1.0
    sms: int = 0
    slowdown: float = 1.0  # its compute tasks take this many times longer: a noise draw

    def __post_init__(self) -> None:
        if not self.slowdown > 0:
            raise ValueError(f"unit {self.name}: slowdown must be > 0, got {self.slowdown}")
        if not 0.0 < self.efficiency <= 1.0:
            raise ValueError(f"unit {self.name}: efficiency must be in (0, 1], got {self.efficiency}")
        if not 0.0 < self.bandwidth_efficiency <= 1.0:
            raise ValueError(f"unit {self.name}: bandwidth efficiency must be in (0, 1], "
                             f"got {self.bandwidth_efficiency}")
        if self.peak_flops <= 0 or self.memory_bandwidth <= 0:
            raise ValueError(f"unit {self.name}: peak and memory bandwidth must be positive")
        if any(rate <= 0 for _, rate in self.peaks):
            raise ValueError(f"unit {self.name}: every peak must be positive")
        if self.overhead_s < 0 or self.sms < 0:
            raise ValueError(f"unit {self.name}: overhead and sms must be >= 0")

    def peak(self, precision: str | None = None) -> float:
        """The dense peak FLOP/s at `precision`; the default peak for None, and for every
        precision of a unit described by one peak alone (no `peaks`). A precision the
        unit's `peaks` leave out raises PrecisionError (naming the unit)."""
        if precision is None or not self.peaks:
            return self.peak_flops
        for name, rate in self.peaks:
            if name == precision:
                return rate
        known = ", ".join(name for name, _ in self.peaks) or "none"
        raise PrecisionError(f"unit {self.name} has no {precision} peak (it has: {known})")

    def spec(self) -> tuple[object, ...]:
        """Everything but the name: units with equal specs share cost columns."""
        return (self.peak_flops, self.memory_bandwidth, self.memory_bytes, self.efficiency,
                self.overhead_s, self.idle_power_w, self.busy_power_w, self.price_per_hour,
                self.peaks, self.bandwidth_efficiency, self.sms, self.slowdown)


class PrecisionError(SimulationError):
    """A precision a unit has no peak for."""


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """A link's physics without its endpoints: a template for generated topologies.
    `bus_efficiency` is the fraction of `bandwidth` communication libraries achieve
    over it (nccl-tests' bus bandwidth / link rate): its channels carry bandwidth x
    bus_efficiency. `in_network_reduction`: the switch it leads to reduces data
    itself (NVLink SHARP, InfiniBand SHARP), which the NVLS all-reduce needs."""

    latency_s: float
    bandwidth: float
    duplex: bool = True
    energy_per_byte_j: float = 0.0
    bus_efficiency: float = 1.0
    in_network_reduction: bool = False

    def __post_init__(self) -> None:
        if self.bandwidth <= 0 or self.latency_s < 0:
            raise ValueError("a link needs bandwidth > 0 and latency >= 0")
        if not 0.0 < self.bus_efficiency <= 1.0:
            raise ValueError(f"a link's bus efficiency must be in (0, 1], got {self.bus_efficiency}")

    @property
    def achievable_bandwidth(self) -> float:
        return self.bandwidth * self.bus_efficiency


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    a: str
    b: str
    spec: LinkSpec


@dataclass(frozen=True, slots=True)
class Channel:
    """One direction of a link (or both, for a half-duplex link): the contended resource,
    at the link's achievable bandwidth (LinkSpec.achievable_bandwidth)."""

    name: str
    link: int
    latency_s: float
    bandwidth: float


@dataclass(frozen=True)
class Cluster:
    """Compute units, the links (and switches) between them, and the directed channels
    and shortest routes over those links that transfers take."""

    units: tuple[ComputeUnit, ...]
    links: tuple[Link, ...] = ()
    switches: tuple[str, ...] = ()
    units_per_node: int | None = None   # two-level clusters: units behind one node switch
    mesh: tuple[tuple[int, int, int], ...] = ()  # a switchless mesh's (unit a, unit b, bricks)
    _route_cache: dict[tuple[int, int], tuple[int, ...]] = field(
        default_factory=dict, repr=False, compare=False)
    _parents: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [u.name for u in self.units] + list(self.switches)
        if not self.units:
            raise ValueError("a cluster needs at least one compute unit")
        dup = sorted(n for n, k in Counter(names).items() if k > 1)  # linear: 65k units
        if dup:
            raise ValueError(f"duplicate unit or switch names: {', '.join(dup)}")
        for link in self.links:
            for end in (link.a, link.b):
                if end not in self.node_index:
                    raise ValueError(f"link {link.name}: unknown endpoint {end!r}")

    # -- identity -------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.units)

    @cached_property
    def node_index(self) -> dict[str, int]:
        names = [u.name for u in self.units] + list(self.switches)
        return {n: i for i, n in enumerate(names)}

    @cached_property
    def unit_types(self) -> tuple[ComputeUnit, ...]:
        """One representative per distinct spec, in order of first appearance."""
        seen: dict[tuple[object, ...], ComputeUnit] = {}
        for u in self.units:
            seen.setdefault(u.spec(), u)
        return tuple(seen.values())

    @cached_property
    def unit_type(self) -> np.ndarray:
        index = {u.spec(): i for i, u in enumerate(self.unit_types)}
        return np.array([index[u.spec()] for u in self.units], dtype=np.int64)

    # -- channels and routes ----------------------------------------------------
    @cached_property
    def _channels(self) -> tuple[tuple[Channel, ...], dict[tuple[int, int], int]]:
        channels: list[Channel] = []
        by_hop: dict[tuple[int, int], int] = {}
        for i, link in enumerate(self.links):
            a, b = self.node_index[link.a], self.node_index[link.b]
            s = link.spec
            rate = s.achievable_bandwidth
            if s.duplex:
                by_hop[(a, b)] = len(channels)
                channels.append(Channel(f"{link.name} {link.a}→{link.b}", i, s.latency_s, rate))
                by_hop[(b, a)] = len(channels)
                channels.append(Channel(f"{link.name} {link.b}→{link.a}", i, s.latency_s, rate))
            else:
                by_hop[(a, b)] = by_hop[(b, a)] = len(channels)
                channels.append(Channel(f"{link.name} {link.a}↔{link.b}", i, s.latency_s, rate))
        return tuple(channels), by_hop

    @property
    def channels(self) -> tuple[Channel, ...]:
        return self._channels[0]

    @cached_property
    def _neighbours(self) -> list[list[int]]:
        adj: list[set[int]] = [set() for _ in self.node_index]
        for a, b in self._channels[1]:
            adj[a].add(b)
        return [sorted(s) for s in adj]

    def route(self, src: int, dst: int) -> tuple[int, ...]:
        """Channels of the fewest-hop path from unit src to unit dst.

        Breadth-first search visiting neighbours in node order, so ties between
        equally short paths always resolve the same way.
        """
        if src == dst:
            return ()
        key = (src, dst)
        hit = self._route_cache.get(key)
        if hit is not None:
            return hit
        parent = self._parents.get(src)
        if parent is None:
            parent = self._parents[src] = self._bfs(src)
        if parent[dst] < 0:
            raise SimulationError(
                f"no route from {self.units[src].name} to {self.units[dst].name}")
        hops: list[int] = []
        node = dst
        while node != src:
            up = int(parent[node])
            hops.append(self._channels[1][(up, node)])
            node = up
        path = tuple(reversed(hops))
        self._route_cache[key] = path
        return path

    def _bfs(self, src: int) -> np.ndarray:
        """Each node's parent on the BFS tree from src (-1: unreached): SciPy's
        breadth-first order over the adjacency with each row's neighbours in node order
        visits as a FIFO queue would, in C (a Python BFS cost 0.1 s per source at 16,384
        units, and its list 8 B per node)."""
        parent = breadth_first_order(self._adjacency, src, directed=True,
                                     return_predecessors=True)[1].astype(np.int32)
        parent[parent < 0] = -1
        parent[src] = src
        return parent

    @cached_property
    def _adjacency(self) -> csr_matrix:
        rows = self._neighbours
        indptr = np.cumsum([0] + [len(r) for r in rows])
        indices = np.fromiter((n for r in rows for n in r), np.int32, int(indptr[-1]))
        return csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(rows),) * 2)

    def with_routes(self, routes: dict[tuple[int, int], tuple[int, ...]]) -> Cluster:
        """A copy of the cluster whose route from src to dst is routes[(src, dst)] (its
        channels in order) where given: a mirrored step's loop-back ring messages
        (parallel.mirror). The copy's other routes are its own BFS routes, as here."""
        copy = Cluster(self.units, self.links, self.switches, self.units_per_node, self.mesh)
        copy._route_cache.update(routes)
        return copy

    def comm_tables(self, cut_through: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(L, G): an uncontended transfer of n bytes from i to j takes L[i,j] + n*G[i,j].

        L is the route's summed latency. Cut-through, G is 1 / the route's bottleneck
        bandwidth; store-and-forward, the sum of 1 / bandwidth over its hops.
        Unreachable pairs are inf.
        """
        n = self.size
        lat = np.zeros((n, n))
        gap = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                if i == j:
                    continue
                try:
                    lat[i, j], gap[i, j] = self.path_cost(i, j, cut_through)
                except SimulationError:
                    lat[i, j] = gap[i, j] = np.inf
        return lat, gap

    def path_cost(self, src: int, dst: int, cut_through: bool = True) -> tuple[float, float]:
        """(L, G) of one pair, as in comm_tables, without computing all pairs."""
        chans = self.channels
        path = self.route(src, dst)
        inverse = [1.0 / chans[c].bandwidth for c in path]
        return (sum(chans[c].latency_s for c in path),
                (max(inverse) if cut_through else sum(inverse)) if path else 0.0)

    def transfer_time(self, nbytes: float, src: int, dst: int, cut_through: bool = True) -> float:
        """Uncontended time to move nbytes from unit src to unit dst."""
        lat, gap = self.path_cost(src, dst, cut_through)
        return lat + nbytes * gap


# -- topologies ------------------------------------------------------------------

def replicate(unit: ComputeUnit, count: int, prefix: str | None = None) -> tuple[ComputeUnit, ...]:
    """`count` identical units named prefix0, prefix1, ... (the name itself when count == 1)."""
    if count == 1:
        return (unit,)
    base = prefix if prefix is not None else unit.name
    return tuple(replace(unit, name=f"{base}{i}") for i in range(count))


TOPOLOGIES = ("full", "ring", "switch", "two_level", "explicit", "dgx1")
"""The topologies a cluster can be built in: fully_connected, ring, switch, two_level,
explicit links (a Cluster of the given links and switches), or the DGX-1's NVLink
hybrid cube mesh (leptonsim.mesh.dgx1)."""


def fully_connected(units: Sequence[ComputeUnit], spec: LinkSpec) -> Cluster:
    links = tuple(
        Link(f"link{i}-{j}", units[i].name, units[j].name, spec)
        for i in range(len(units)) for j in range(i + 1, len(units))
    )
    return Cluster(tuple(units), links)


def ring(units: Sequence[ComputeUnit], spec: LinkSpec) -> Cluster:
    n = len(units)
    pairs = [(i, (i + 1) % n) for i in range(n)] if n > 2 else [(0, 1)] if n == 2 else []
    links = tuple(Link(f"ring{i}", units[i].name, units[j].name, spec) for i, j in pairs)
    return Cluster(tuple(units), links)


def switch(units: Sequence[ComputeUnit], spec: LinkSpec, name: str = "switch") -> Cluster:
    links = tuple(Link(f"port{i}", u.name, name, spec) for i, u in enumerate(units))
    return Cluster(tuple(units), links, (name,))


def two_level(
    units: Sequence[ComputeUnit], units_per_node: int, intra: LinkSpec, inter: LinkSpec
) -> Cluster:
    """Nodes of `units_per_node` units behind a node switch; node switches behind a spine.

    Each node has one uplink (`inter`), shared by all of its units: set its bandwidth
    to the node's aggregate network bandwidth.
    """
    if units_per_node < 1 or len(units) % units_per_node:
        raise ValueError(
            f"{len(units)} units do not split into nodes of {units_per_node}")
    nodes = len(units) // units_per_node
    switches = tuple(f"node{k}.switch" for k in range(nodes)) + ("spine",)
    links = [
        Link(f"node{i // units_per_node}.port{i % units_per_node}", u.name,
             f"node{i // units_per_node}.switch", intra)
        for i, u in enumerate(units)
    ]
    links += [Link(f"node{k}.uplink", f"node{k}.switch", "spine", inter) for k in range(nodes)]
    return Cluster(tuple(units), tuple(links), switches, units_per_node)
