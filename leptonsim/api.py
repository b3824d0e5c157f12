"""The notebook API: a cluster of presets, a step of a zoo model on it, a run.

    import leptonsim as ls
    cluster = ls.cluster("a100_80gb", 8, link="nvlink3")
    step = ls.step("bert_large", cluster, batch=64, pp=2, tp=2)
    result = ls.run(step)
    print(result.report())

Nothing here goes around the scenario pipeline. `cluster` writes the [hardware] table a
scenario file would hold and `step` the document around it; leptonsim.scenario checks,
normalises and builds them as it does a file, so a mistake is the same one-line
ScenarioError (with "did you mean"), every default is the schema's, and `step` is what
`loads` makes of the same TOML. Every call into leptonsim.scenario is in the last
section of this module. docs/api.md shows the API at work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ScenarioError, did_you_mean
from .hardware import Cluster
from .parallel.memory import MemoryBreakdown
from .result import RunResult
from .result import run as run_scenario
from .scenario import (
    Scenario,
    Workload,
    build,
    build_hardware,
    build_memory,
    check_scheduler,
    check_structure,
    normalize,
    scheduler_for,
    schema,
)
from .zoo import ZOO

Table = dict[str, Any]


@dataclass(frozen=True)
class Hardware:
    """A cluster and the [hardware] table it was built from, as a scenario file would
    hold it (presets named, not merged): `step` writes the table into its scenario.
    Every attribute of the Cluster (`units`, `links`, `size`, `route`, ...) reads
    through, so a Hardware is used as its cluster."""

    table: Table
    cluster: Cluster

    def __getattr__(self, name: str) -> Any:  # only for names the dataclass lacks
        if name.startswith("_"):  # copy and pickle ask for theirs before `cluster` is set
            raise AttributeError(name)
        return getattr(self.cluster, name)


def cluster(device: str | Mapping[str, Any], count: int | None = None, *,
            link: str | Mapping[str, Any] | None = None, topology: str | None = None,
            **hardware: Any) -> Hardware:
    """`count` units of a device preset (`ls.devices()`) joined by a link preset
    (`ls.links()`) in `topology` (when not given, the schema's default).

    `device` may instead be a [[hardware.units]] table and `link` a [hardware.link]
    table, e.g. {"preset": "nvlink3", "bandwidth": "25 GB/s"} or {"latency": "2 us",
    "bandwidth": "25 GB/s"}; other [hardware] keys (two_level, switches, links) pass
    through as keyword arguments. Units of a preset are named after it (a100_80gb0, ...)."""
    unit: Table = {"preset": device} if isinstance(device, str) else dict(device)
    if "preset" in unit:
        unit.setdefault("name", unit["preset"])
    if count is not None:
        unit["count"] = count
    table: Table = {"units": [unit], **hardware}
    if link is not None:
        table["link"] = {"preset": link} if isinstance(link, str) else dict(link)
    if topology is not None:
        table["topology"] = topology
    return Hardware(table, _cluster_of(table))


def step(model: str | Mapping[str, Any], hardware: Hardware, *, batch: int,
         dp: int | None = None, pp: int | None = None, tp: int | None = None,
         **options: Any) -> Scenario:
    """The training step (or inference pass) of `model` on `hardware`, as a Scenario
    that `run` simulates: the scenario file with this [workload.model] and [parallel].

    `model` is a zoo name (`ls.model_names()`) or a [workload.model] table with layers. `batch`
    is the global batch; `dp` defaults to the units left over, units // (pp x tp x cp), as
    in a scenario file, and pp, tp and the rest to the schema's defaults. `options` are
    the other keys of [workload.model] (microbatches, training, recompute, optimizer,
    precision) and of [parallel] (schedule, chunks, bucket, tp_mode, dp_mode, fuse, layout,
    embeddings, zero, sp, ep, cp)."""
    return _scenario_of(_step_doc(model, hardware, batch, dp, pp, tp, options, "ls.step"),
                        hardware.cluster)


def memory(model: str | Mapping[str, Any], hardware: Hardware, *, batch: int,
           dp: int | None = None, pp: int | None = None, tp: int | None = None,
           **options: Any) -> tuple[tuple[str, MemoryBreakdown], ...]:
    """The memory plan of the step `step` would build, without building its graph: per
    pipeline stage, its name and the bytes one unit holds (weights, gradients, optimizer
    state, activations and their total, parallel.memory.MemoryBreakdown). A split that
    does not fit its units is planned all the same (`step` refuses it)."""
    doc = _step_doc(model, hardware, batch, dp, pp, tp, options, "ls.memory")
    try:
        check_structure(doc)
        return build_memory(normalize(doc), hardware.cluster, file="ls.memory")
    except ScenarioError as err:
        raise err.in_file("ls.memory") from None


def _step_doc(model: str | Mapping[str, Any], hardware: Hardware, batch: int, dp: int | None,
              pp: int | None, tp: int | None, options: Mapping[str, Any], file: str) -> Table:
    """The scenario document of a step: [workload.model] and [parallel] from the keys."""
    table = {"name": model} if isinstance(model, str) else dict(model)
    parallel = {k: v for k, v in (("dp", dp), ("pp", pp), ("tp", tp)) if v is not None}
    model_keys, parallel_keys = _keys("workload", "model"), _keys("parallel")
    for key, value in options.items():
        if key in model_keys:
            table[key] = value
        elif key in parallel_keys:
            parallel[key] = value
        else:
            known = [*model_keys, *parallel_keys]
            raise ScenarioError(key, f"a key of workload.model or parallel ({', '.join(known)})",
                                f"<unknown key {key!r}>", file=file,
                                hint=did_you_mean(key, known))
    doc: Table = {"scenario": {"name": table.get("name", "model")}, "hardware": hardware.table,
                  "workload": {"model": {**table, "batch": batch}}}
    if parallel:
        doc["parallel"] = parallel
    return doc


def run(scenario: Scenario, *, scheduler: str | None = None,
        network: str | None = None) -> RunResult:
    """Simulate a scenario (of `step`, `load` or `loads`): its metrics, the formulas
    beside them, energy, cost and `.report()`. `scheduler` and `network`, when given,
    replace the scenario's, by name: a key of leptonsim.sim.SCHEDULERS (static, heft,
    heft_contention, greedy) and of leptonsim.sim.NETWORKS (fifo, fair), checked as a
    scenario file's [schedule] is."""
    return run_scenario(_rescheduled(scenario, scheduler, network))


def model_names() -> list[str]:
    """The names of the zoo's models, sorted (`ls.model(name)` builds one)."""
    return sorted(ZOO)


# -- the scenario pipeline: every call into leptonsim.scenario is here ------------------

def _keys(*path: str) -> list[str]:
    """The keys the schema allows in the table at a key path, e.g. ("parallel",)."""
    node = schema()
    for key in path:
        node = node["properties"][key]
    return list(node["properties"])


def _rescheduled(s: Scenario, scheduler: str | None, network: str | None) -> Scenario:
    """The scenario with another scheduler or network, checked as [schedule] would be."""
    if scheduler is None and network is None:
        return s
    table = {k: v for k, v in (("scheduler", scheduler), ("network", network)) if v is not None}
    try:
        check_structure(table, at="schedule")
    except ScenarioError as err:
        raise err.in_file("ls.run") from None
    chosen = scheduler_for(table.get("scheduler", s.scheduler), Workload(s.graph, s.step))
    try:
        check_scheduler(chosen, s.cluster, s.graph)
    except ScenarioError as err:
        raise err.in_file("ls.run") from None
    return dataclasses.replace(s, scheduler=chosen, network=table.get("network", s.network))


def _cluster_of(table: Table) -> Cluster:
    """The [hardware] table checked, normalised and built as it would be in a file."""
    try:
        check_structure(table, at="hardware")
        return build_hardware({"hardware": normalize(table, at="hardware")})
    except ScenarioError as err:
        raise err.in_file("ls.cluster") from None


def _scenario_of(doc: Table, cluster: Cluster) -> Scenario:
    """A whole scenario document through the stages `loads` takes (structure, normalize,
    build the workload), on the cluster `ls.cluster` already built from doc["hardware"]."""
    try:
        check_structure(doc)
        norm = normalize(doc)
        return build(norm, "", "ls.step", cluster)
    except ScenarioError as err:
        raise err.in_file("ls.step") from None
