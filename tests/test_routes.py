"""Routes are the fewest-hop paths, ties resolved by node order: the SciPy BFS that
computes them agrees with the plain FIFO-queue search that defines them."""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.hardware import Cluster, ComputeUnit, Link, LinkSpec

UNIT = ComputeUnit("u", peak_flops=1e12, memory_bandwidth=1e11)
SPEC = LinkSpec(latency_s=1e-6, bandwidth=1e9)


def reference_route(cluster: Cluster, src: int, dst: int) -> tuple[int, ...]:
    """The definition: breadth-first from src with a FIFO queue, each node's neighbours
    in node order; the route is the channels of the tree's path to dst."""
    channel_of = cluster._channels[1]  # (node, node) -> the channel between them
    neighbours = [sorted(b for a, b in channel_of if a == n) for n in range(len(cluster.node_index))]
    parent = {src: src}
    queue = deque([src])
    while queue:
        node = queue.popleft()
        for nxt in neighbours[node]:
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    hops, node = [], dst
    while node != src:
        hops.append(channel_of[(parent[node], node)])
        node = parent[node]
    return tuple(reversed(hops))


@st.composite
def connected_clusters(draw: st.DrawFn) -> Cluster:
    """Units and switches joined by a random spanning tree plus random extra links."""
    n_units, n_switches = draw(st.integers(2, 8)), draw(st.integers(0, 4))
    units = tuple(replace(UNIT, name=f"u{i}") for i in range(n_units))
    names = [u.name for u in units] + [f"s{i}" for i in range(n_switches)]
    order = draw(st.permutations(range(len(names))))
    pairs = {tuple(sorted((order[i], order[draw(st.integers(0, i - 1))])))
             for i in range(1, len(names))}
    extra = draw(st.lists(st.tuples(st.integers(0, len(names) - 1),
                                    st.integers(0, len(names) - 1)), max_size=8))
    pairs |= {tuple(sorted(p)) for p in extra if p[0] != p[1]}
    links = tuple(Link(f"l{i}", names[a], names[b], SPEC) for i, (a, b) in enumerate(sorted(pairs)))
    return Cluster(units, links, tuple(names[n_units:]))


@settings(max_examples=150, deadline=None)
@given(connected_clusters(), st.data())
def test_every_route_is_the_fifo_breadth_first_searchs(cluster: Cluster, data: st.DataObject):
    src = data.draw(st.integers(0, cluster.size - 1))
    dst = data.draw(st.integers(0, cluster.size - 1))
    assert cluster.route(src, dst) == reference_route(cluster, src, dst)
