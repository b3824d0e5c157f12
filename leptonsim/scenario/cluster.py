"""The build-hardware stage's work: a normalised [hardware] table to a Cluster, with
what JSON Schema cannot see checked (unique names, references to units and switches,
what each topology needs, divisibility, reachability)."""

from __future__ import annotations

import math
from typing import Any

from ..errors import ScenarioError, did_you_mean
from ..hardware import (
    PRECISIONS,
    Cluster,
    ComputeUnit,
    Link,
    LinkSpec,
    fully_connected,
    replicate,
    ring,
    switch,
    two_level,
)
from ..limits import check_size
from ..mesh import DGX1_NVLINKS, dgx1
from .validate import format_path

Doc = dict[str, Any]


def _spec(link: Doc) -> LinkSpec:
    return LinkSpec(latency_s=link["latency"], bandwidth=link["bandwidth"],
                    duplex=bool(link["duplex"]), energy_per_byte_j=link["energy_per_byte"],
                    bus_efficiency=float(link["bus_efficiency"]),
                    in_network_reduction=bool(link["in_network_reduction"]))


def _check_counts(hw: Doc) -> None:
    """Units and links are counted before one is built (limits.SIZES)."""
    total = 0
    for i, t in enumerate(hw["units"]):
        total += int(t["count"])
        check_size("units", total, format_path(["hardware", "units", i, "count"]),
                   hint=f"the units up to here number {total:,}" if i else "")
    topology = hw["topology"]
    if topology == "explicit":
        return
    links = {"full": total * (total - 1) // 2, "ring": total if total > 2 else total - 1,
             "switch": total, "dgx1": len(DGX1_NVLINKS)}.get(topology)
    if links is None:  # two_level: a port per unit, an uplink per node
        links = total + total // int(hw["two_level"]["units_per_node"])
    check_size("links", links, "hardware.topology",
               hint=f"topology {topology!r} of {total:,} units"
               + ("; 'switch' or 'two_level' need a link per unit" if topology == "full" else ""))


def _units(tables: list[Doc]) -> tuple[list[ComputeUnit], dict[str, int]]:
    """The units in order, and for each unit name the index of its table."""
    units: list[ComputeUnit] = []
    owner: dict[str, int] = {}
    for i, t in enumerate(tables):
        unit = ComputeUnit(
            name=t["name"], peak_flops=t["peak"], memory_bandwidth=t["memory_bandwidth"],
            memory_bytes=t.get("memory", math.inf), efficiency=t["efficiency"],
            overhead_s=t["overhead"], idle_power_w=t["idle_power"], busy_power_w=t["busy_power"],
            price_per_hour=float(t.get("price_per_hour", 0.0)),
            peaks=tuple((p, t[f"peak_{p}"]) for p in PRECISIONS if f"peak_{p}" in t),
            bandwidth_efficiency=t["bandwidth_efficiency"], sms=int(t["sms"]),
        )
        for u in replicate(unit, int(t["count"])):
            if u.name in owner:
                raise ScenarioError(format_path(["hardware", "units", i, "name"]),
                                    "unit names that are unique", f"<{u.name!r} again>",
                                    hint=f"hardware.units[{owner[u.name]}] already names it")
            owner[u.name] = i
            units.append(u)
    return units, owner


def _reserve(owner: dict[str, int], switches: list[str], topology: str, shown: str) -> None:
    """Generated switch names are not available to units."""
    for name in switches:
        if name in owner:
            raise ScenarioError(format_path(["hardware", "units", owner[name], "name"]),
                                f"a name other than the switches of topology {topology!r} "
                                f"({shown})", name)


def build_cluster(hw: Doc) -> Cluster:
    _check_counts(hw)
    units, owner = _units(hw["units"])
    topology = hw["topology"]
    try:
        if topology == "two_level":
            return _two_level(units, owner, hw["two_level"])
        if topology == "explicit":
            return _explicit(units, hw)
        if "link" not in hw:
            if len(units) > 1:
                raise ScenarioError("hardware.link", f"a link table (topology {topology!r} "
                                    f"with {len(units)} units needs one)", "<nothing>")
            return Cluster(tuple(units))
        if topology == "switch":
            _reserve(owner, ["switch"], topology, "switch")
        if topology == "dgx1" and len(units) != 8:
            raise ScenarioError("hardware.units", "8 units in all (the DGX-1's hybrid cube "
                                "mesh links 8 GPUs)", f"<{len(units)} units>",
                                hint="a group of fewer GPUs is a step's ranks, not the mesh")
        builder = {"full": fully_connected, "ring": ring, "switch": switch,
                   "dgx1": dgx1}[topology]
        return builder(units, _spec(hw["link"]))
    except ValueError as exc:  # e.g. a unit named like a generated switch
        raise ScenarioError("hardware", "a cluster that can be built", f"<{exc}>") from None


def _two_level(units: list[ComputeUnit], owner: dict[str, int], table: Doc) -> Cluster:
    per_node = int(table["units_per_node"])
    if len(units) % per_node:
        raise ScenarioError("hardware.two_level.units_per_node",
                            f"a divisor of the total unit count {len(units)}", per_node)
    nodes = len(units) // per_node
    _reserve(owner, [*(f"node{k}.switch" for k in range(nodes)), "spine"], "two_level",
             "node0.switch ... spine")
    return two_level(units, per_node, _spec(table["intra"]), _spec(table["inter"]))


def _explicit(units: list[ComputeUnit], hw: Doc) -> Cluster:
    names = [u.name for u in units]
    switches: list[str] = list(hw.get("switches", []))
    seen = set(names)
    for j, s in enumerate(switches):
        if s in seen:
            raise ScenarioError(f"hardware.switches[{j}]", "a switch name used by no unit "
                                "or other switch", s)
        seen.add(s)
    links: list[Link] = []
    link_names: dict[str, int] = {}
    for i, t in enumerate(hw["links"]):
        for end in ("a", "b"):
            if t[end] not in seen:
                raise ScenarioError(format_path(["hardware", "links", i, end]),
                                    "the name of a unit or switch", t[end],
                                    hint=did_you_mean(t[end], [*names, *switches]))
        if t["a"] == t["b"]:
            raise ScenarioError(f"hardware.links[{i}].b", "an endpoint other than a",
                                t["b"], hint="a link from a node to itself carries nothing")
        name = t.get("name", f"link{i}")
        if name in link_names:
            raise ScenarioError(f"hardware.links[{i}].name", "link names that are unique",
                                f"<{name!r} again>",
                                hint=f"hardware.links[{link_names[name]}] already names it")
        link_names[name] = i
        links.append(Link(name, t["a"], t["b"], _spec(t)))
    cluster = Cluster(tuple(units), tuple(links), tuple(switches))
    _check_connected(cluster)
    return cluster


def _check_connected(cluster: Cluster) -> None:
    """Every unit reachable from every other (links carry traffic both ways)."""
    index = cluster.node_index
    parent = list(range(len(index)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for link in cluster.links:
        parent[root(index[link.a])] = root(index[link.b])
    first = root(0)
    for i, u in enumerate(cluster.units):
        if root(i) != first:
            raise ScenarioError("hardware.links", "every unit reachable from every other",
                                f"<no route from {cluster.units[0].name} to {u.name}>")
