"""A switchless NVLink mesh: the DGX-1's hybrid cube mesh, and NCCL's rings over a mesh.

NVIDIA, "NVIDIA DGX-1 With Tesla V100 System Architecture" (white paper WP-08437-002,
2017), section "NVLink" and Figure 4: each of the 8 V100 SXM2 GPUs has 6 NVLink 2
bricks (25 GB/s per direction each); the GPUs form two fully connected quads (0-3,
4-7) joined GPU i to GPU i+4, and some pairs are bonded with two bricks. The pairs and
their brick counts below are the board's, as `nvidia-smi topo -m` reports them (NV1 /
NV2) and NCCL's topology dump of a DGX-1 lists them (`<nvlink target=... count=2>`,
NVIDIA/nccl issue #671, 2022): every GPU's counts sum to 6, and 3 of the 7 other GPUs
are not adjacent (`SYS`: only over PCIe and the CPUs' QPI).

Routes: NVLink has no switch, so a transfer between GPUs that are not adjacent goes
through a GPU adjacent to both (a 2-hop route; the mesh's diameter is 2). NCCL does the
same: its path search lets a GPU-to-GPU path cross one intermediate GPU over NVLink
(PATH_NVB, "NVLink through an intermediate GPU", NVIDIA/nccl src/graph/paths.cc,
NCCL_NVB_DISABLE=0 by default) rather than take PCIe and QPI, which NCCL avoids for
peer-to-peer on Intel CPUs (p2pLevel PATH_PXB, same file). The cluster's breadth-first
routes are such 2-hop routes.

Rings: NCCL runs an all-reduce as several rings at once (its channels), each a cycle
over NVLink-adjacent GPUs carrying its share of the buffer, to use every link of the
cube mesh (S. Jeaugey, "Distributed training and fast inter-GPU communication with
NCCL", GTC 2019, S9656, as NVIDIA/nccl issue #299 recounts: "4 rings on DGX1"; issue
#713: 6 ring channels where each V100 has 6 NVLinks). `rings` picks the largest set of
brick-disjoint Hamiltonian cycles of a group (on the DGX-1's 8 GPUs: 3 cycles using all
24 bricks) and runs each both ways, a ring per link direction and brick: every GPU
then sends on its 6 bricks at once, as NCCL's 6 channels at one brick each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from .hardware import Cluster, ComputeUnit, Link, LinkSpec

BRICKS_PER_GPU = 6  # V100 SXM2: six NVLink 2 links (DGX-1 white paper, "NVLink")

DGX1_NVLINKS: tuple[tuple[int, int, int], ...] = (
    # (GPU a, GPU b, NVLink bricks): DGX-1 white paper Figure 4; nvidia-smi topo -m
    (0, 1, 1), (0, 2, 1), (0, 3, 2), (0, 4, 2),
    (1, 2, 2), (1, 3, 1), (1, 5, 2),
    (2, 3, 2), (2, 6, 1),
    (3, 7, 1),
    (4, 5, 1), (4, 6, 1), (4, 7, 2),
    (5, 6, 2), (5, 7, 1),
    (6, 7, 2),
)
MAX_RING_SEARCH = 8  # ranks: the cycle search below is exhaustive, so groups stay small


def dgx1(units: Sequence[ComputeUnit], spec: LinkSpec) -> Cluster:
    """The 8 units on the DGX-1's hybrid cube mesh. `spec` is a GPU's whole NVLink (the
    nvlink2 preset: 6 bricks, 150 GB/s per direction); a pair of k bricks gets k / 6 of
    its bandwidth, one duplex link per adjacent pair."""
    if len(units) != 8:
        raise ValueError(f"the DGX-1 mesh has 8 GPUs, not {len(units)}")
    links = tuple(
        Link(f"nvlink{a}-{b}", units[a].name, units[b].name,
             replace(spec, bandwidth=spec.bandwidth * k / BRICKS_PER_GPU))
        for a, b, k in DGX1_NVLINKS)
    return Cluster(tuple(units), links, mesh=DGX1_NVLINKS)


def rings(cluster: Cluster, ranks: Sequence[int]) -> list[list[int]]:
    """NCCL's rings for a group of ranks (module docstring): on a mesh, the most
    brick-disjoint Hamiltonian cycles over the group's adjacent pairs, each in both
    directions, every one starting at ranks[0]; elsewhere (a switch, or no such cycle)
    the one ring of the ranks in order."""
    if not cluster.mesh or not 3 <= len(ranks) <= MAX_RING_SEARCH:
        return [list(ranks)]
    return [list(order) for order in _mesh_rings(cluster.mesh, tuple(ranks))]


@lru_cache(maxsize=256)
def _mesh_rings(links: tuple[tuple[int, int, int], ...], ranks: tuple[int, ...]
                ) -> tuple[tuple[int, ...], ...]:
    """`rings` on a mesh, once per group (a step asks for every bucket's ring)."""
    inside = set(ranks)
    bricks = Counter({_pair(a, b): k for a, b, k in links if a in inside and b in inside})
    chosen = _most_disjoint(_cycles(list(ranks), bricks), bricks)
    if not chosen:
        return (ranks,)
    return tuple(tuple(order) for c in chosen for order in (c, [c[0], *c[:0:-1]]))


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def _edges(cycle: Sequence[int]) -> Counter[tuple[int, int]]:
    return Counter(_pair(a, b) for a, b in zip(cycle, [*cycle[1:], cycle[0]], strict=True))


def _cycles(ranks: list[int], bricks: Counter[tuple[int, int]]) -> list[list[int]]:
    """Every Hamiltonian cycle over adjacent pairs, from ranks[0], each once (of its two
    directions, the one whose second rank comes first in `ranks`), in rank order."""
    order = {r: i for i, r in enumerate(ranks)}
    found: list[list[int]] = []

    def extend(path: list[int], left: set[int]) -> None:
        if not left:
            if bricks[_pair(path[-1], path[0])] and order[path[1]] < order[path[-1]]:
                found.append(list(path))
            return
        for nxt in ranks:
            if nxt in left and bricks[_pair(path[-1], nxt)]:
                path.append(nxt)
                extend(path, left - {nxt})
                path.pop()

    extend([ranks[0]], set(ranks[1:]))
    return found


def _most_disjoint(cycles: list[list[int]], bricks: Counter[tuple[int, int]]) -> list[list[int]]:
    """The largest set of cycles whose pairs use no more bricks than the pairs have
    (the first such set in the cycles' order: deterministic)."""
    best: list[list[int]] = []

    def search(start: int, chosen: list[list[int]], free: Counter[tuple[int, int]]) -> None:
        nonlocal best
        if len(chosen) > len(best):
            best = list(chosen)
        for i in range(start, len(cycles)):
            need = _edges(cycles[i])
            if all(free[e] >= k for e, k in need.items()):
                search(i + 1, [*chosen, cycles[i]], free - need)

    search(0, [], bricks)
    return best
