"""NCCL's all-reduce algorithms on a group of ranks: their closed-form times, and the
choice among them.

NCCL predicts each enabled algorithm's time as latency + bytes / bandwidth and runs the
fastest (NVIDIA/nccl src/graph/tuning.cc, ncclTopoGetAlgoTime); `choose` does the same
with the closed forms of leptonsim.formulas, over the group's own routes:

- ring: 2(p-1) steps to the next rank (formulas.ring_allreduce_seconds);
- tree: NCCL's double binary tree, a chain inside a node (formulas.tree_allreduce_seconds);
- nvls: reduced in the switch, where every link of the group's routes says
  `in_network_reduction` (NVLink SHARP inside a node); across nodes, the hierarchical
  all-reduce with its inter-node phase reduced in the switches (InfiniBand SHARP);
- hierarchical: intra-node reduce-scatter, inter-node all-reduce, intra-node all-gather,
  for a group spread evenly over several nodes of a two-level cluster.

As in NCCL, only all-reduces have a choice; all-gathers and reduce-scatters are rings.
On a store-and-forward network `auto` is the ring (the model before issue 12, whole).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import formulas, mesh
from ..hardware import Cluster

ALGORITHMS = ("auto", "ring", "tree", "nvls", "hierarchical")
SPELLED_OUT = ("auto", "ring", "hierarchical")
"""What tp_mode = "full" spells out as transfers (auto: the ring)."""


@dataclass(frozen=True)
class Group:
    """A collective's ranks as the closed forms see them: the ring's neighbour routes
    (latency, 1 / bandwidth per pair), and for a group spread over nodes, its nodes'
    geometry: the slowest intra-node and inter-node routes, the bandwidth each of the
    per_node inter-node rings gets where they share links, and whether the switches
    on the intra (inter) routes reduce in the network."""

    p: int
    ring_latency: np.ndarray
    ring_gap: np.ndarray
    nodes: int = 1
    per_node: int = 1
    intra: tuple[float, float] = (0.0, np.inf)   # (latency, bandwidth)
    inter: tuple[float, float] = (0.0, np.inf)   # (latency, bandwidth each ring gets)
    node_bandwidth: float = np.inf               # one inter route's bottleneck, unshared
    reduces: bool = False
    inter_reduces: bool = False
    cut_through: bool = True


def group(cluster: Cluster, ranks: Sequence[int], cut_through: bool = True) -> Group:
    p = len(ranks)
    pairs = list(zip(ranks, [*ranks[1:], *ranks[:1]], strict=True))
    latency, gap = _ring_pairs(cluster, ranks, cut_through)
    nodes = nodes_of(cluster, ranks)
    base = Group(p, latency, gap, cut_through=cut_through,
                 reduces=len(nodes) == 1 and _reduce(cluster, pairs, skip_units=False))
    if len(nodes) == 1 or len({len(n) for n in nodes}) > 1:
        return base
    g = len(nodes[0])
    intra = [(n[i], n[(i + 1) % g]) for n in nodes for i in range(g) if g > 1]
    inter = [(nodes[k][i], nodes[(k + 1) % len(nodes)][i]) for k in range(len(nodes))
             for i in range(g)]
    return Group(p, latency, gap, len(nodes), g,
                 _slowest(cluster, intra, cut_through), _shared(cluster, inter, cut_through),
                 _slowest(cluster, inter, cut_through)[1],
                 bool(intra) and _reduce(cluster, intra, skip_units=False),
                 _reduce(cluster, inter, skip_units=True), cut_through)


def candidates(g: Group) -> list[str]:
    """The algorithms that apply to an all-reduce over the group, ring first."""
    if not g.cut_through:
        return ["ring"]
    out = ["ring", "tree"]
    if g.reduces or (g.nodes > 1 and g.inter_reduces):
        out.append("nvls")
    if g.nodes > 1 and g.per_node > 1:
        out.append("hierarchical")
    return out


def choose(g: Group, nbytes: float) -> str:
    """NCCL's rule: the applicable algorithm of least predicted time (ties: the first)."""
    options = candidates(g)
    times = [allreduce_seconds(g, a, nbytes) for a in options]
    return options[int(np.argmin(times))]


def allreduce_seconds(g: Group, algorithm: str, nbytes: float) -> float:
    """The uncontended all-reduce time of `algorithm` (not "auto") over the group."""
    if g.p == 1:
        return 0.0
    if algorithm not in candidates(g):
        raise ValueError(f"collective {algorithm!r} does not apply to a group of {g.p} ranks "
                         f"on {g.nodes} node(s) (applicable: {', '.join(candidates(g))})")
    (a1, b1), (a2, b2) = g.intra, g.inter
    if algorithm == "ring":
        return float(formulas.ring_allreduce_seconds(g.p, nbytes, g.ring_latency,
                                                     1.0 / g.ring_gap).max())
    if algorithm == "tree":
        if g.nodes == 1:
            return float(formulas.tree_allreduce_seconds(1, g.p, nbytes, g.ring_latency.max(),
                                                         0.0, 1.0 / g.ring_gap.max()))
        return float(formulas.tree_allreduce_seconds(g.nodes, g.per_node, nbytes, a1, a2,
                                                     min(b1, g.node_bandwidth)))
    if algorithm == "nvls" and g.nodes == 1:
        return float(formulas.nvls_allreduce_seconds(g.p, nbytes, g.ring_latency.max(),
                                                     1.0 / g.ring_gap.max()))
    return float(formulas.hierarchical_allreduce_cut_through_seconds(
        g.nodes, g.per_node, nbytes, a1, b1, a2, b2, in_network=algorithm == "nvls"))


def ring_seconds(g: Group, nbytes: float) -> float:
    """A ring all-gather or reduce-scatter: the slowest neighbour pair sets the pace."""
    if g.p == 1:
        return 0.0
    return float(formulas.ring_allgather_seconds(g.p, nbytes, g.ring_latency,
                                                 1.0 / g.ring_gap).max())


# -- the group's geometry ---------------------------------------------------------------

def _ring_pairs(cluster: Cluster, ranks: Sequence[int], cut_through: bool
                ) -> tuple[np.ndarray, np.ndarray]:
    """Latency and 1 / bandwidth of every neighbour pair of the group's rings: one ring
    in rank order, or on a mesh NCCL's k rings (mesh.rings), each carrying 1/k of the
    buffer, so a pair's gap counts 1/k (the slowest pair of any ring sets the pace)."""
    orders = mesh.rings(cluster, ranks)
    pairs = [(a, b) for order in orders
             for a, b in zip(order, [*order[1:], *order[:1]], strict=True)]
    latency, gap = np.array([cluster.path_cost(a, b, cut_through) for a, b in pairs]).T
    return latency, gap / len(orders)


def nodes_of(cluster: Cluster, ranks: Sequence[int]) -> list[list[int]]:
    """The ranks grouped by node (a two-level cluster's nodes; else one node), in order."""
    per = cluster.units_per_node
    if not per:
        return [list(ranks)]
    nodes: dict[int, list[int]] = {}
    for r in ranks:
        nodes.setdefault(r // per, []).append(r)
    return list(nodes.values())


def _slowest(cluster: Cluster, pairs: list[tuple[int, int]], cut_through: bool
             ) -> tuple[float, float]:
    if not pairs:
        return 0.0, np.inf
    latency, gap = np.array([cluster.path_cost(a, b, cut_through) for a, b in pairs]).T
    return float(latency.max()), float(1.0 / gap.max())


def _shared(cluster: Cluster, pairs: list[tuple[int, int]], cut_through: bool
            ) -> tuple[float, float]:
    """Slowest latency, and the least bandwidth a message gets when every pair sends at
    once and a channel's bandwidth is split among the messages crossing it."""
    routes = [cluster.route(a, b) for a, b in pairs]
    load = Counter(c for route in routes for c in route)
    chans = cluster.channels
    share = min(chans[c].bandwidth / load[c] for route in routes for c in route)
    return _slowest(cluster, pairs, cut_through)[0], share


def _reduce(cluster: Cluster, pairs: list[tuple[int, int]], skip_units: bool) -> bool:
    """Every route passes a switch, and every link on it (with skip_units, every link
    between switches) reduces in the network."""
    units = {u.name for u in cluster.units}
    for a, b in pairs:
        route = cluster.route(a, b)
        if len(route) < 2:
            return False
        links = [cluster.links[cluster.channels[c].link] for c in route]
        if skip_units:
            links = [lk for lk in links if lk.a not in units and lk.b not in units]
        if not links or not all(lk.spec.in_network_reduction for lk in links):
            return False
    return True
