"""From a checked, normalised document (SI floats, defaults filled) to model objects:
the last two stages of the scenario pipeline, `build_hardware` (a Cluster, built in
cluster.py) and `build_workload` (its task graph, and the DNN step it came from), and
`scenario`, which puts them together with the scheduler and claims.

What JSON Schema cannot see about a workload is checked here: unique task names,
references to units and tasks, cycles, a split that fits in memory, and keys that would
have no effect (a [parallel] table beside a task graph).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

from ..cost import DEFAULT, CostModel
from ..errors import DoesNotFit, GraphError, ScenarioError, SizeError, did_you_mean
from ..generators import TaskCost, chain, fork_join, independent, layered, split_tasks
from ..graph import GraphBuilder, TaskGraph
from ..hardware import Cluster
from ..limits import check_size
from ..noise import Noise
from ..parallel.config import SHARDED, ParallelConfig
from ..parallel.context import ContextSplitError
from ..parallel.experts import ExpertSplitError
from ..parallel.memory import MemoryBreakdown
from ..parallel.mirror import MirrorError
from ..parallel.mirror import resolve as resolve_mirror
from ..parallel.offload import Host
from ..parallel.recsys import build_recsys_step, is_recommender
from ..parallel.step import StepGraph, build_step, plan
from ..parallel.tensor import SequenceSplitError, TensorSplitError
from ..presets import host_presets
from .cluster import _spec, build_cluster
from .cost import build_cost, check_precision
from .model import build_model, with_conv_algorithm
from .noise import build_noise
from .parallel import build_parallel
from .schema import AUTO
from .validate import normalize, schema_root

Doc = dict[str, Any]

T = TypeVar("T")


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
    network: str = "fifo"          # how links are shared: sim.NETWORKS
    cost: CostModel = DEFAULT      # what tasks cost: the step was partitioned with it
    settings: tuple[tuple[str, Any], ...] = ()  # keys its variant and --set gave, as written
    noise: Noise | None = None     # [noise]: result.run draws sample `sample` of it
    sample: int = 0

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
    cost: CostModel = DEFAULT


def build(doc: Doc, variant: str = "", file: str = "<string>",
          cluster: Cluster | None = None) -> Scenario:
    """The build stages and the scenario of a normalised document: its hardware (unless
    `cluster` is given, built from it already), its cost model, its workload."""
    cluster = build_hardware(doc) if cluster is None else cluster
    check_precision(doc, cluster)
    workload = build_workload(doc, cluster, build_cost(doc, file), file)
    return scenario(doc, cluster, workload, variant, file)


def build_hardware(doc: Doc) -> Cluster:
    """The cluster of a normalised document's [hardware]."""
    return build_cluster(doc["hardware"])


def build_workload(doc: Doc, cluster: Cluster, cost: CostModel = DEFAULT,
                   file: str = "<string>") -> Workload:
    """The task graph of a normalised document's [workload] on `cluster`: a DNN step of
    [workload.model] split as [parallel] says (its stages balanced with `cost`), or the
    generated or explicit graph. `file` is the scenario's, which paths are relative to."""
    if "model" in doc["workload"]:
        step = _step(doc, cluster, cost, file)
        return Workload(step.graph, step, cost)
    if "parallel" in doc:
        raise ScenarioError("parallel", "no [parallel] table beside a task graph ([parallel] "
                            "splits a [workload.model])", "<a [parallel] table>",
                            hint="remove it, or make the workload a model")
    return Workload(build_graph(doc["workload"], cluster, int(doc["scenario"]["seed"])), None, cost)


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
    if workload.step is not None and workload.step.hosts is not None:
        cluster = workload.step.hosts  # the units and their hosts (offload)
    if not (workload.cost.task_times(graph, cluster).sum(axis=1) > 0).all():
        raise ScenarioError("workload", "tasks that do some work on every kind of unit (speed-"
                            "up and efficiency divide by it)", "<every task taking 0 s>",
                            hint="give some task a duration, flops or bytes > 0, or the "
                                 "units an overhead")
    given = doc["schedule"]["scheduler"]
    scheduler = scheduler_for(given, workload)
    check_scheduler(scheduler, cluster, graph, default=given == AUTO)
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
        step=workload.step, network=doc["schedule"]["network"], cost=workload.cost,
        noise=build_noise(doc),
    )


def check_scheduler(scheduler: str, cluster: Cluster, graph: TaskGraph,
                    default: bool = False) -> None:
    """What a scheduler needs of a workload: HEFT's tables (units x units, units x tasks)
    within limits.SIZES; every task pinned for the static scheduler."""
    if scheduler.startswith("heft"):
        why = f"scheduler {scheduler!r}" + (" (the default)" if default else "")
        check_size("heft_units", cluster.size, "schedule.scheduler", hint=why)
        check_size("heft_cells", cluster.size * graph.size, "schedule.scheduler",
                   hint=f"{why} for {cluster.size:,} units x {graph.size:,} tasks")
    if scheduler == "static" and graph.size and (graph.pin < 0).any():
        first = graph.names[int((graph.pin < 0).nonzero()[0][0])]
        raise ScenarioError("schedule.scheduler", "every task pinned with unit = ... for the "
                            "static scheduler", f"<task {first!r} unpinned>",
                            hint="pin every task, or use 'heft' or 'greedy'")


def _smaller(cfg: ParallelConfig) -> str:
    """The [parallel] keys that would build fewer tasks, for a step over the bound."""
    keys = [k for k, on in (("dp_mode = 'auto'", cfg.dp > 1 and cfg.dp_mode == "full"),
                            ("tp_mode = 'symmetric'", cfg.tp > 1 and cfg.tp_mode == "full"),
                            ("fuse = true", not cfg.fuse)) if on]
    return f"; fewer with {', '.join(keys)}" if keys else ""


def _step(doc: Doc, cluster: Cluster, cost: CostModel, file: str) -> StepGraph:
    table = doc["workload"]["model"]
    model = build_model(table, file)
    cfg = build_parallel(table, doc["parallel"], cluster.size)
    sharded = doc["parallel"]["embeddings"] in SHARDED
    cfg = _mirrored(cfg, cluster, sharded, noisy=build_noise(doc) is not None)
    model = with_conv_algorithm(model, table, cfg, cluster, cost)
    shape = (f"dp {cfg.dp} x simulated tp {len(cfg.simulated_tp_ranks())} x "
             f"{cfg.microbatches} micro-batches x {len(model.layers)} layers{_smaller(cfg)}")
    check_size("tasks", _step_tasks_at_least(model.layers, cfg), "workload.model", hint=shape)

    def split() -> StepGraph:
        if sharded:
            if not is_recommender(model):
                raise ValueError(f"{model.name} has no embedding tables and interaction to shard")
            return build_recsys_step(model, cfg, cluster, bottom_first=doc["parallel"][
                "embeddings"] == "sharded_bottom_first")
        network = doc.get("schedule", {}).get("network", "fifo")  # the stage alone has none
        return build_step(model, cfg, cluster, cost, cut_through=network != "store_and_forward",
                          host=host_of(doc) if cfg.offload_optimizer or cfg.offload_activations
                          else None)
    return _split_checked(split, model.name, shape)


def build_memory(doc: Doc, cluster: Cluster, cost: CostModel = DEFAULT,
                 file: str = "<string>") -> tuple[tuple[str, MemoryBreakdown], ...]:
    """Per pipeline stage, the memory one unit of a normalised document's [workload.model]
    needs as [parallel] splits it: the step's memory plan, its stages balanced with `cost`,
    without building its graph and without checking it against the units' memory."""
    table = doc["workload"]["model"]
    model = build_model(table, file)
    cfg = build_parallel(table, doc["parallel"], cluster.size)
    if doc["parallel"]["embeddings"] in SHARDED:  # a recommender's plan is its step's
        return _step(doc, cluster, cost, file).memory
    return _split_checked(lambda: plan(model, cfg, cluster, cost)[4], model.name, "")


def _split_checked(split: Callable[[], T], model: str, shape: str) -> T:
    """split(), or the split it refuses as the one ScenarioError naming its key."""
    try:
        return split()
    except TensorSplitError as err:
        raise ScenarioError("parallel.tp", err.expected, err.tp, hint=err.hint) from None
    except SequenceSplitError as err:
        raise ScenarioError("parallel.sp", err.expected, err.tp, hint=err.hint) from None
    except ExpertSplitError as err:
        raise ScenarioError("parallel.ep", err.expected, err.ep, hint=err.hint) from None
    except ContextSplitError as err:
        raise ScenarioError("parallel.cp", err.expected, err.cp, hint=err.hint) from None
    except SizeError as err:  # the estimate is a lower bound; the builder stops at the bound
        check_size(err.name, err.count, "workload.model", hint=shape)
        raise
    except DoesNotFit as err:
        raise ScenarioError("parallel", f"a configuration of {model} that fits in "
                            "each unit's memory", f"<{err.need}>", hint=err.advice) from None
    except ValueError as err:
        raise ScenarioError("parallel", f"a configuration that splits {model}",
                            f"<{err}>") from None


def host_of(doc: Doc) -> Host:
    """Offload's host: [parallel.offload] host_link, or the host link the catalog gives
    the units' device preset (presets/hosts.toml, one for every unit table), and the
    CPU-Adam rate given or the catalog's."""
    table = doc["parallel"].get("offload", {})
    catalog = host_presets()
    if "host_link" in table:
        link = table["host_link"]
    else:
        presets = {t.get("preset") for t in doc["hardware"]["units"]}
        names = {catalog["links"].get(p) for p in presets if p is not None}
        if None in presets or len(names) != 1 or None in names:
            shown = ", ".join(sorted(str(p) for p in presets))
            raise ScenarioError("parallel.offload.host_link", "a link table (no host link in "
                                f"the catalog for the units' presets: {shown})", "<nothing>",
                                hint="give host_link = { preset = 'pcie4_x16' } or "
                                     "'pcie5_x16', or units of one preset that has one")
        link = normalize({"preset": names.pop()}, "parallel.offload.host_link")
    rate = float(table.get("cpu_adam", catalog["cpu_adam"]["params_per_s"]))
    return Host(_spec(link), rate)


def _step_tasks_at_least(layers: Sequence[object], cfg: ParallelConfig) -> int:
    """A lower bound on a step's tasks, from its counts alone: per replica, simulated tp
    rank, micro-batch and pass (forward, backward), one task per layer (fused: per
    virtual stage)."""
    passes = 2 if cfg.training else 1
    per_pass = cfg.virtual_stages if cfg.fuse else len(layers)
    return (len(cfg.simulated_replicas()) * len(cfg.simulated_tp_ranks()) * cfg.microbatches
            * passes * per_pass)


def _mirrored(cfg: ParallelConfig, cluster: Cluster, sharded: bool,
              noisy: bool = False) -> ParallelConfig:
    """dp_mode decided (parallel.mirror.resolve); a forced "mirrored" that would not be
    exact is an error at parallel.dp_mode (the DLRM hybrid is always built whole; with
    [noise] every replica draws its own units, so none stands for the others)."""
    try:
        if sharded and cfg.dp_mode != "full":
            raise MirrorError("the DLRM hybrid's sharded embeddings are built whole")
        if noisy and cfg.dp_mode != "full":
            raise MirrorError("[noise] draws each replica's units and links apart")
        return resolve_mirror(cfg, cluster)
    except MirrorError as err:
        if cfg.dp_mode == "auto":
            return replace(cfg, dp_mode="full")
        raise ScenarioError("parallel.dp_mode", "replicas that nothing tells apart for "
                            "'mirrored'", f"<{err.reason}>",
                            hint="set dp_mode = 'auto' (mirrored only where exact) or 'full'") from None


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
