"""From a checked, normalised document (SI floats, defaults filled) to model objects.

What JSON Schema cannot see is checked here: unique names, references to units, tasks
and switches, what each topology needs, divisibility, cycles and reachability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import GraphError, ScenarioError
from ..generators import TaskCost, chain, fork_join, independent, layered, split_tasks
from ..graph import GraphBuilder, TaskGraph
from ..hardware import (
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
from ..parallel.recsys import build_recsys_step, is_recommender
from ..parallel.step import StepGraph, build_step
from ..parallel.tensor import TensorSplitError
from .model import build_model, build_parallel
from .validate import format_path, hint_for, schema_root

Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Objective:
    """The seed's third formula: E_t + lam * E_r."""

    training_error: float
    inference_error: float
    lam: float

    @property
    def value(self) -> float:
        return self.training_error + self.lam * self.inference_error


@dataclass(frozen=True)
class Scenario:
    """One runnable scenario: hardware, workload and scheduler, all in SI units."""

    name: str
    variant: str
    description: str
    seed: int
    cluster: Cluster
    graph: TaskGraph
    scheduler: str
    claims: dict[str, float]
    claim_source: str
    objective: Objective | None
    file: str
    step: StepGraph | None = None  # the DNN step the graph was built from, if any
    network: str = "fifo"          # how links are shared: "fifo" or "fair"

    @property
    def label(self) -> str:
        """'name' or 'name [variant]'."""
        return f"{self.name} [{self.variant}]" if self.variant else self.name


def build(doc: Doc, variant: str = "", file: str = "<string>") -> Scenario:
    meta = doc["scenario"]
    seed = int(meta["seed"])
    cluster = build_cluster(doc["hardware"])
    step = _step(doc, cluster) if "model" in doc["workload"] else None
    graph = step.graph if step else build_graph(doc["workload"], cluster, seed)
    scheduler = doc.get("schedule", {}).get("scheduler", "static" if step else "heft")
    if scheduler == "static" and graph.size and (graph.pin < 0).any():
        first = graph.names[int((graph.pin < 0).nonzero()[0][0])]
        raise ScenarioError("schedule.scheduler", "every task pinned with unit = ... for the "
                            "static scheduler", f"<task {first!r} unpinned>",
                            hint="pin every task, or use 'heft' or 'greedy'")
    claims_doc = doc.get("claims", {})
    keys = schema_root()["properties"]["claims"]["properties"]
    claims = {keys[k]["x-claim-key"]: float(v) for k, v in claims_doc.items()
              if "x-claim-key" in keys[k]}
    obj = doc.get("objective")
    objective = None if obj is None else Objective(
        float(obj["training_error"]), float(obj["inference_error"]), float(obj["lambda"]))
    return Scenario(
        name=meta["name"], variant=variant, description=meta["description"], seed=seed,
        cluster=cluster, graph=graph, scheduler=scheduler, claims=claims,
        claim_source=claims_doc.get("source", ""), objective=objective, file=file, step=step,
        network=doc.get("schedule", {}).get("network", "fifo"),
    )


def _step(doc: Doc, cluster: Cluster) -> StepGraph:
    table = doc["workload"]["model"]
    model = build_model(table)
    cfg = build_parallel(table, doc.get("parallel", {}), cluster.size)
    sharded = doc.get("parallel", {}).get("embeddings") == "sharded"
    try:
        if sharded:
            if not is_recommender(model):
                raise ValueError(f"{model.name} has no embedding tables and interaction to shard")
            return build_recsys_step(model, cfg, cluster)
        return build_step(model, cfg, cluster)
    except TensorSplitError as err:
        raise ScenarioError("parallel.tp", err.expected, err.tp, hint=err.hint) from None
    except ValueError as err:
        raise ScenarioError("parallel", f"a configuration that splits {model.name}",
                            f"<{err}>") from None


# -- hardware ---------------------------------------------------------------------------

def _spec(link: Doc) -> LinkSpec:
    return LinkSpec(latency_s=link["latency"], bandwidth=link["bandwidth"],
                    duplex=bool(link["duplex"]), energy_per_byte_j=link["energy_per_byte"])


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
        builder = {"full": fully_connected, "ring": ring, "switch": switch}[topology]
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
                                    hint=hint_for(t[end], [*names, *switches]))
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


# -- workload -----------------------------------------------------------------------------

def build_graph(workload: Doc, cluster: Cluster, seed: int) -> TaskGraph:
    if "generator" in workload:
        return _generate(workload["generator"], seed)
    return _explicit_graph(workload["tasks"], cluster)


def _generate(g: Doc, seed: int) -> TaskGraph:
    cost = TaskCost(duration_s=g.get("duration"), flops=g.get("flops", 0.0),
                    nbytes=g["bytes"], spread=g["spread"])
    kind, edge = g["kind"], g["edge_bytes"]
    if kind == "independent":
        graph = independent(int(g["tasks"]), cost, seed)
    elif kind == "chain":
        graph = chain(int(g["tasks"]), cost, edge, seed)
    elif kind == "fork_join":
        graph = fork_join(int(g["width"]), int(g["stages"]), cost, edge, seed)
    else:
        graph = layered(int(g["tasks"]), int(g["width"]), int(g["degree"]), cost, edge, seed)
    if "split_max" in g:
        graph = split_tasks(graph, g["split_max"])
    return graph


def _explicit_graph(tasks: list[Doc], cluster: Cluster) -> TaskGraph:
    units = {u.name: i for i, u in enumerate(cluster.units)}
    first: dict[str, int] = {}
    for i, t in enumerate(tasks):
        if t["name"] in first:
            raise ScenarioError(f"workload.tasks[{i}].name", "task names that are unique",
                                f"<{t['name']!r} again>",
                                hint=f"workload.tasks[{first[t['name']]}] already names it")
        first[t["name"]] = i
    builder = GraphBuilder()
    for i, t in enumerate(tasks):
        pin = -1
        if "unit" in t:
            if t["unit"] not in units:
                raise ScenarioError(f"workload.tasks[{i}].unit", "the name of a compute unit",
                                    t["unit"], hint=hint_for(t["unit"], units))
            pin = units[t["unit"]]
        builder.task(t["name"], flops=t.get("flops", 0.0), nbytes=t["bytes"],
                     duration_s=t.get("duration"), pin=pin, kind=t["kind"])
    for i, t in enumerate(tasks):
        refs = [(f"after[{j}]", src, 0.0) for j, src in enumerate(t.get("after", []))]
        refs += [(f"inputs[{j}].from", e["from"], e["bytes"])
                 for j, e in enumerate(t.get("inputs", []))]
        for where, src, nbytes in refs:
            if src not in first:
                raise ScenarioError(f"workload.tasks[{i}].{where}", "the name of a task", src,
                                    hint=hint_for(src, first))
            builder.edge(src, t["name"], nbytes)
    try:
        return builder.build()
    except GraphError as exc:
        text = str(exc)
        if text.startswith("cycle"):
            cycle = text.split(": ", 1)[-1]
            raise ScenarioError("workload.tasks", "an acyclic task graph",
                                f"<a cycle {cycle}>") from None
        raise ScenarioError("workload.tasks", "a valid task graph", f"<{text}>") from None
