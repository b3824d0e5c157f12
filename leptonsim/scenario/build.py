"""From a checked, normalised document (SI floats, defaults filled) to model objects:
the last two stages of the scenario pipeline, `build_hardware` (a Cluster) and
`build_workload` (its task graph, and the DNN step it came from), and `scenario`, which
puts them together with the scheduler and claims.

What JSON Schema cannot see is checked here: unique names, references to units, tasks
and switches, what each topology needs, divisibility, cycles and reachability, and keys
that would have no effect (a [parallel] table beside a task graph).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cost import Roofline
from ..errors import DoesNotFit, GraphError, ScenarioError, SizeError, did_you_mean
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
from ..limits import check_size
from ..parallel.config import ParallelConfig
from ..parallel.recsys import build_recsys_step, is_recommender
from ..parallel.step import StepGraph, build_step
from ..parallel.tensor import TensorSplitError
from .model import build_model, build_parallel
from .schema import AUTO
from .validate import format_path, schema_root

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


@dataclass(frozen=True)
class Unbuilt:
    """A variant whose hardware or workload cannot be built, and why."""

    name: str
    variant: str
    error: ScenarioError

    @property
    def label(self) -> str:
        return f"{self.name} [{self.variant}]" if self.variant else self.name


@dataclass(frozen=True)
class Workload:
    """What a scenario runs: a task graph, and the DNN step it was built from, if any."""

    graph: TaskGraph
    step: StepGraph | None = None


def build(doc: Doc, variant: str = "", file: str = "<string>") -> Scenario:
    """Both build stages and the scenario of a normalised document."""
    cluster = build_hardware(doc)
    return scenario(doc, cluster, build_workload(doc, cluster), variant, file)


def build_hardware(doc: Doc) -> Cluster:
    """The cluster of a normalised document's [hardware]."""
    return build_cluster(doc["hardware"])


def build_workload(doc: Doc, cluster: Cluster) -> Workload:
    """The task graph of a normalised document's [workload] on `cluster`: a DNN step of
    [workload.model] split as [parallel] says, or the generated or explicit graph."""
    if "model" in doc["workload"]:
        step = _step(doc, cluster)
        return Workload(step.graph, step)
    if "parallel" in doc:
        raise ScenarioError("parallel", "no [parallel] table beside a task graph ([parallel] "
                            "splits a [workload.model])", "<a [parallel] table>",
                            hint="remove it, or make the workload a model")
    return Workload(build_graph(doc["workload"], cluster, int(doc["scenario"]["seed"])))


def scheduler_for(name: str, workload: Workload) -> str:
    """The scheduler `name` means for a workload: "auto" is static for a DNN step (every
    task is pinned to its rank) and heft for a task graph."""
    if name != AUTO:
        return name
    return "static" if workload.step is not None else "heft"


def scenario(doc: Doc, cluster: Cluster, workload: Workload, variant: str = "",
             file: str = "<string>") -> Scenario:
    """The Scenario of a normalised document, its cluster and its workload."""
    meta, graph = doc["scenario"], workload.graph
    if not (Roofline().task_times(graph, cluster).sum(axis=1) > 0).all():
        raise ScenarioError("workload", "tasks that do some work on every kind of unit (speed-"
                            "up and efficiency divide by it)", "<every task taking 0 s>",
                            hint="give some task a duration, flops or bytes > 0, or the "
                                 "units an overhead")
    given = doc["schedule"]["scheduler"]
    scheduler = scheduler_for(given, workload)
    if scheduler.startswith("heft"):  # HEFT tables are units x units and units x tasks
        why = f"scheduler {scheduler!r}" + (" (the default)" if given == AUTO else "")
        check_size("heft_units", cluster.size, "schedule.scheduler", hint=why)
        check_size("heft_cells", cluster.size * graph.size, "schedule.scheduler",
                   hint=f"{why} for {cluster.size:,} units x {graph.size:,} tasks")
    if scheduler == "static" and graph.size and (graph.pin < 0).any():
        first = graph.names[int((graph.pin < 0).nonzero()[0][0])]
        raise ScenarioError("schedule.scheduler", "every task pinned with unit = ... for the "
                            "static scheduler", f"<task {first!r} unpinned>",
                            hint="pin every task, or use 'heft' or 'greedy'")
    claims_doc = doc["claims"]
    keys = schema_root()["properties"]["claims"]["properties"]
    claims = {keys[k]["x-claim-key"]: float(v) for k, v in claims_doc.items()
              if "x-claim-key" in keys[k]}
    obj = doc.get("objective")  # optional, and without defaults
    objective = None if obj is None else Objective(
        float(obj["training_error"]), float(obj["inference_error"]), float(obj["lambda"]))
    return Scenario(
        name=meta["name"], variant=variant, description=meta["description"],
        seed=int(meta["seed"]), cluster=cluster, graph=graph, scheduler=scheduler,
        claims=claims, claim_source=claims_doc["source"], objective=objective, file=file,
        step=workload.step, network=doc["schedule"]["network"],
    )


def _step(doc: Doc, cluster: Cluster) -> StepGraph:
    table = doc["workload"]["model"]
    model = build_model(table)
    cfg = build_parallel(table, doc["parallel"], cluster.size)
    sharded = doc["parallel"]["embeddings"] == "sharded"
    shape = (f"dp {cfg.dp} x simulated tp {len(cfg.simulated_tp_ranks())} x "
             f"{cfg.microbatches} micro-batches x {len(model.layers)} layers")
    check_size("tasks", _step_tasks_at_least(model.layers, cfg), "workload.model", hint=shape)
    try:
        if sharded:
            if not is_recommender(model):
                raise ValueError(f"{model.name} has no embedding tables and interaction to shard")
            return build_recsys_step(model, cfg, cluster)
        return build_step(model, cfg, cluster)
    except TensorSplitError as err:
        raise ScenarioError("parallel.tp", err.expected, err.tp, hint=err.hint) from None
    except SizeError as err:  # the estimate is a lower bound; the builder stops at the bound
        check_size(err.name, err.count, "workload.model", hint=shape)
        raise
    except DoesNotFit as err:
        raise ScenarioError("parallel", f"a configuration of {model.name} that fits in "
                            "each unit's memory", f"<{err.need}>", hint=err.advice) from None
    except ValueError as err:
        raise ScenarioError("parallel", f"a configuration that splits {model.name}",
                            f"<{err}>") from None


def _step_tasks_at_least(layers: Sequence[object], cfg: ParallelConfig) -> int:
    """A lower bound on a step's tasks, from its counts alone: per replica, simulated tp
    rank, micro-batch and pass (forward, backward), one task per layer (fused: per
    virtual stage)."""
    passes = 2 if cfg.training else 1
    per_pass = cfg.virtual_stages if cfg.fuse else len(layers)
    return cfg.dp * len(cfg.simulated_tp_ranks()) * cfg.microbatches * passes * per_pass


# -- hardware ---------------------------------------------------------------------------

def _spec(link: Doc) -> LinkSpec:
    return LinkSpec(latency_s=link["latency"], bandwidth=link["bandwidth"],
                    duplex=bool(link["duplex"]), energy_per_byte_j=link["energy_per_byte"])


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
             "switch": total}.get(topology)
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


# -- workload -----------------------------------------------------------------------------

def build_graph(workload: Doc, cluster: Cluster, seed: int) -> TaskGraph:
    if "generator" in workload:
        return _generate(workload["generator"], seed)
    return _explicit_graph(workload["tasks"], cluster)


def _check_generated_size(g: Doc) -> None:
    """The tasks and edges a generator table makes, counted from its numbers alone."""
    at = "workload.generator"
    kind = g["kind"]
    if kind == "fork_join":
        width, stages = int(g["width"]), int(g["stages"])
        hint = "fork_join: stages x (width + 1) + 1 tasks, 2 x stages x width edges"
        _check_graph_size(stages * (width + 1) + 1, 2 * stages * width, at, hint)
        return
    n = int(g["tasks"])
    check_size("tasks", n, f"{at}.tasks")
    if kind == "layered":
        width = int(g["width"])
        check_size("edges", max(n - width, 0) * min(int(g["degree"]), width), f"{at}.degree",
                   hint="layered: each task past the first layer has degree edges")


def _check_graph_size(tasks: float, edges: float, path: str, hint: str = "") -> None:
    check_size("tasks", tasks, path, hint)
    check_size("edges", edges, path, hint)


def _check_split(graph: TaskGraph, split_max: float) -> None:
    """The seed's split makes ceil(d / split_max) pieces of each task, and pieces(a) x
    pieces(b) edges of each edge: counted in floats, before anything is allocated."""
    pieces = np.maximum(1.0, np.ceil(graph.duration_s / split_max - 1e-12))
    edges = float(np.sum(pieces[graph.edge_src] * pieces[graph.edge_dst]))
    _check_graph_size(float(pieces.sum()), edges, "workload.generator.split_max",
                      hint=f"each task of up to {graph.duration_s.max():g} s becomes up to "
                           f"{pieces.max():.3g} sub-tasks")


def _generate(g: Doc, seed: int) -> TaskGraph:
    _check_generated_size(g)
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
        _check_split(graph, g["split_max"])
        graph = split_tasks(graph, g["split_max"])
    return graph


def _explicit_graph(tasks: list[Doc], cluster: Cluster) -> TaskGraph:
    edges = sum(len(t.get("after", ())) + len(t.get("inputs", ())) for t in tasks)
    _check_graph_size(len(tasks), edges, "workload.tasks")
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
                                    t["unit"], hint=did_you_mean(t["unit"], units))
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
                                    hint=did_you_mean(src, first))
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
