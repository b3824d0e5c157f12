"""The scenario format as a JSON Schema (draft 2020-12): the single source of truth.

jsonschema checks structure, types, enums, required keys and unknown keys against it;
the semantic pass reads the same document for what JSON Schema cannot say about a
string: custom keywords

    x-quantity   the kind of a quantity field ("bandwidth"); its bounds are the standard
                 minimum / exclusiveMinimum / maximum / exclusiveMaximum, applied to the
                 parsed SI value (jsonschema applies them to bare numbers only)
    x-magnitude  on a plain number: its range in limits.MAGNITUDES (x-quantity kinds
                 have theirs too), so no product the engine forms leaves the float range
    x-preset     on a unit or link table: which preset catalog `preset` names
    x-shadows    on a key of such a table: the preset keys a value given in the table
                 replaces (a unit's own `peak` replaces the preset's peak_<precision>s)
    x-why        on the `then` of an if/then: why the keys it requires are needed
    x-claim-key  on a claims field: its key in Scenario.claims, with units

Every property has a "description"; docs/scenarios.md is tested to cover every name.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from ..generators import KINDS as _GENERATOR_KINDS
from ..hardware import PRECISIONS
from ..hardware import TOPOLOGIES as _TOPOLOGIES
from ..limits import SIZES
from ..quantities import EXAMPLES
from ..sim.engine import NETWORKS as _NETWORK_TYPES
from ..sim.schedulers import SCHEDULERS as _SCHEDULER_TYPES
from .cost import COST_MODELS
from .failures import failures_schema
from .model import model_schema
from .noise import noise_schema
from .parallel import parallel_schema
from .serving_schema import serving_schema

__all__ = ["schema", "AUTO", "SI_UNIT", "TOPOLOGIES", "GENERATOR_KINDS", "NETWORKS",
           "SCHEDULERS"]

# Every enum comes from the module that owns the choices
TOPOLOGIES = _TOPOLOGIES
GENERATOR_KINDS = _GENERATOR_KINDS
# "auto": static for a [workload.model] step (every task is pinned), heft for a task graph;
# build.scheduler_for resolves it, and a Scenario reports the resolved name
AUTO = "auto"
SCHEDULERS = (AUTO, *_SCHEDULER_TYPES)
NETWORKS = tuple(_NETWORK_TYPES)

# The unit a bare number is read in, per quantity kind.
SI_UNIT = {
    "time": "s", "bytes": "B", "bandwidth": "B/s", "flops": "FLOP", "flop_rate": "FLOP/s",
    "power": "W", "energy": "J", "energy_per_byte": "J/B", "dimensionless": "",
}

Schema = dict[str, Any]


def schema() -> Schema:
    """A fresh copy of the scenario JSON Schema (callers may mutate it)."""
    return copy.deepcopy(_schema())


# -- building blocks ------------------------------------------------------------------

def _qty(kind: str, meaning: str, default: float | None = None, **bounds: float) -> Schema:
    bare = f"a bare number is in {SI_UNIT[kind]}" if SI_UNIT[kind] else "a plain number or '%'"
    node: Schema = {
        "type": ["string", "number"],
        "description": f"{meaning} ({kind.replace('_', ' ')}, e.g. {EXAMPLES[kind]!r}; {bare})",
        "x-quantity": kind,
    }
    node.update(bounds)
    if default is not None:
        node["default"] = default
    return node


def _int(meaning: str, minimum: int, default: int | None = None) -> Schema:
    node: Schema = {"type": "integer", "minimum": minimum, "description": meaning}
    if default is not None:
        node["default"] = default
    return node


def _str(meaning: str, **extra: Any) -> Schema:
    return {"type": "string", "description": meaning, **extra}


def _table(meaning: str, properties: dict[str, Schema], required: tuple[str, ...] = (),
           **extra: Any) -> Schema:
    node: Schema = {"type": "object", "description": meaning, "properties": properties,
                    "additionalProperties": False}
    if required:
        node["required"] = list(required)
    node.update(extra)
    return node


def _when(condition: Schema, required: list[str], why: str) -> Schema:
    return {"if": condition, "then": {"required": required, "x-why": why}}


def _kind_is(key: str, *values: str) -> Schema:
    return {"properties": {key: {"enum": list(values)}}, "required": [key]}


def _exactly_one(*keys: str) -> Schema:
    return {"oneOf": [{"required": [k]} for k in keys]}


def _link_properties() -> dict[str, Schema]:
    return {
        "preset": _str("Name of a link preset (see docs/presets.md); the other keys of "
                       "this table override its values"),
        "latency": _qty("time", "One-way latency per hop", 0, minimum=0),
        "bandwidth": _qty("bandwidth", "Bandwidth per direction; required unless a preset "
                          "gives it", exclusiveMinimum=0),
        "duplex": {"type": "boolean", "default": True,
                   "description": "true: each direction is its own channel; false: both "
                                  "directions share one"},
        "energy_per_byte": _qty("energy_per_byte", "Energy to move one byte over one hop",
                                0, minimum=0),
        "bus_efficiency": _qty("dimensionless", "Fraction of the bandwidth communication "
                               "achieves (nccl-tests bus bandwidth / link rate), in (0, 1]; "
                               "transfers run at bandwidth x bus_efficiency", 1,
                               exclusiveMinimum=0, maximum=1),
        "in_network_reduction": {"type": "boolean", "default": False,
                                 "description": "The switch these links lead to reduces data "
                                                "itself (NVLink SHARP, InfiniBand SHARP): "
                                                "the nvls all-reduce needs it"},
    }


def _link(meaning: str, extra: dict[str, Schema] | None = None,
          required: tuple[str, ...] = ()) -> Schema:
    node = _table(meaning, {**(extra or {}), **_link_properties()}, required,
                  **{"x-preset": "links"})
    node.update(_when({"not": {"required": ["preset"]}}, ["bandwidth"],
                      "a link without a preset needs it"))
    return node


# -- sections -----------------------------------------------------------------------------

def _scenario() -> Schema:
    return _table("What this scenario is", {
        "name": _str("Name of the scenario, shown in reports", minLength=1),
        "description": _str("Free text: the question this scenario asks", default=""),
        "seed": _int("Seed of the random task-graph generators", 0, default=0),
    }, ("name",))


def _unit() -> Schema:
    node = _table("One kind of compute unit, `count` times", {
        "name": _str("Unit name; with count > 1 the units are named name0, name1, ...",
                     minLength=1),
        "count": _int("How many identical units", 1, default=1),
        "preset": _str("Name of a device preset (see docs/presets.md); the other keys of "
                       "this table override its values"),
        "peak": {**_qty("flop_rate", "Peak compute rate of every precision, unless "
                        "peak_<precision> keys are given; required unless a preset gives "
                        "it. Given beside a preset, it replaces the preset's per-precision "
                        "peaks", exclusiveMinimum=0),
                 "x-shadows": [f"peak_{p}" for p in PRECISIONS]},
        "memory_bandwidth": _qty("bandwidth", "Memory bandwidth, for the roofline; required "
                                 "unless a preset gives it", exclusiveMinimum=0),
        **{f"peak_{p}": _qty("flop_rate", f"Dense {p} peak; the workload's precision runs "
                             f"at its peak (a unit with none of these runs every precision at "
                             f"`peak`)", exclusiveMinimum=0) for p in PRECISIONS},
        "memory": _qty("bytes", "Memory capacity; default unlimited", exclusiveMinimum=0),
        "efficiency": _qty("dimensionless", "Fraction of peak achieved, in (0, 1]", 1,
                           exclusiveMinimum=0, maximum=1),
        "bandwidth_efficiency": _qty("dimensionless", "Fraction of memory bandwidth achieved "
                                     "on streaming kernels, in (0, 1]", 1,
                                     exclusiveMinimum=0, maximum=1),
        "sms": _int("Streaming multiprocessors (compute units, cores) GEMM tiles spread "
                    "over; 0 = unknown", 0, default=0),
        "overhead": _qty("time", "Fixed cost added to every task", 0, minimum=0),
        "idle_power": _qty("power", "Power drawn while idle", 0, minimum=0),
        "busy_power": _qty("power", "Power drawn while computing", 0, minimum=0),
        "price_per_hour": {"type": "number", "minimum": 0, "x-magnitude": "price_per_hour",
                           "description": "Price in USD per unit-hour, for cost reports"},
    }, ("name",), **{"x-preset": "devices"})
    node.update(_when({"not": {"required": ["preset"]}}, ["peak", "memory_bandwidth"],
                      "a unit without a preset needs it"))
    return node


def _hardware() -> Schema:
    explicit_link = _link("A link between two named units or switches", {
        "name": _str("Link name; default link{i}", minLength=1),
        "a": _str("One endpoint: a unit or switch name"),
        "b": _str("The other endpoint: a unit or switch name"),
    }, ("a", "b"))
    return _table("The compute units and how they are connected", {
        "topology": {"enum": list(TOPOLOGIES), "default": "full",
                     "description": "How units are connected: full (every pair linked), ring, "
                                    "switch (a star), two_level (nodes behind a spine), "
                                    "explicit (hardware.links) or dgx1 (the DGX-1's NVLink "
                                    "hybrid cube mesh of 8 units; hardware.link is a GPU's "
                                    "whole NVLink, split over its 6 bricks)"},
        "switches": {"type": "array", "items": _str("A switch name", minLength=1),
                     "description": "explicit topology only: names of non-compute switch "
                                    "nodes that links may connect"},
        "units": {"type": "array", "minItems": 1, "items": _unit(),
                  "description": "The compute units, in order; at least one entry"},
        "link": _link("The link template for full, ring, switch and dgx1 topologies "
                      "(needed there when there is more than one unit)"),
        "two_level": _table("two_level topology: nodes of units behind node switches, node "
                            "switches behind one spine", {
                                "units_per_node": _int("Units per node; must divide the "
                                                       "total unit count", 1),
                                "intra": _link("The link from each unit to its node switch"),
                                "inter": _link("The uplink from each node switch to the "
                                               "spine, shared by the node's units"),
                            }, ("units_per_node", "intra", "inter")),
        "links": {"type": "array", "minItems": 1, "items": explicit_link,
                  "description": "explicit topology only: every link, by its endpoints"},
    }, ("units",), allOf=[
        _when(_kind_is("topology", "two_level"), ["two_level"],
              "topology = 'two_level' needs it"),
        _when(_kind_is("topology", "explicit"), ["links"], "topology = 'explicit' needs it"),
    ])


def _cost(prefix: str) -> dict[str, Schema]:
    return {
        "duration": _qty("time", f"Fixed duration of {prefix}; give this or flops",
                         minimum=0),
        "flops": _qty("flops", f"FLOPs of {prefix}, costed by the roofline; give this or "
                      "duration", minimum=0),
        "bytes": _qty("bytes", f"Memory traffic of {prefix} (with flops)", 0,
                      minimum=0),
    }


def _generator() -> Schema:
    node = _table("A seeded random task graph", {
        "kind": {"enum": list(GENERATOR_KINDS),
                 "description": "independent (no edges), chain, fork_join (stages of "
                                "fork -> width tasks -> join) or layered (random DAG)"},
        "tasks": _int("Number of tasks (independent, chain, layered)", 1),
        "width": _int("Tasks per layer (layered) or parallel tasks per stage (fork_join)", 1),
        "stages": _int("Number of fork-join stages (fork_join)", 1),
        "degree": _int("Dependencies of each task on the layer before (layered)", 1,
                       default=2),
        **_cost("each task"),
        "edge_bytes": _qty("bytes", "Data carried by each edge", 0, minimum=0),
        "spread": _qty("dimensionless", "Each task's cost is drawn uniformly in "
                       "[1-spread, 1+spread] times the given one; in [0, 1)", 0,
                       minimum=0, exclusiveMaximum=1),
        "split_max": _qty("time", "The seed's cap: each task of duration d becomes "
                          "ceil(d / split_max) parallel sub-tasks (needs duration)",
                          exclusiveMinimum=0),
    }, ("kind",), dependentRequired={"split_max": ["duration"], "bytes": ["flops"]})
    node["allOf"] = [
        _exactly_one("duration", "flops"),
        _when(_kind_is("kind", "independent", "chain", "layered"), ["tasks"],
              "this generator kind needs it"),
        _when(_kind_is("kind", "fork_join", "layered"), ["width"],
              "this generator kind needs it"),
        _when(_kind_is("kind", "fork_join"), ["stages"], "kind = 'fork_join' needs it"),
    ]
    return node


def _task() -> Schema:
    node = _table("One task of an explicit graph", {
        "name": _str("Task name, unique in the graph", minLength=1),
        **_cost("the task"),
        "kind": _str("A label such as 'conv2d', shown in traces", default="task"),
        "unit": _str("Pin the task to this unit (by name); default: the scheduler chooses"),
        "after": {"type": "array", "items": _str("A task name"),
                  "description": "Tasks this one waits for, without data"},
        "inputs": {"type": "array", "description": "Tasks this one waits for, with the "
                   "data each sends", "items": _table("A dependency carrying data", {
                       "from": _str("The task sending the data"),
                       "bytes": _qty("bytes", "Data sent", 0, minimum=0),
                   }, ("from",))},
    }, ("name",), dependentRequired={"bytes": ["flops"]})
    node.update(_exactly_one("duration", "flops"))
    return node


def _workload() -> Schema:
    node = _table("The task graph (a generator, explicit tasks, or a DNN model) or an LLM service", {
        "generator": _generator(),
        "tasks": {"type": "array", "minItems": 1, "items": _task(),
                  "description": "An explicit task graph, one table per task"},
        "model": model_schema(_table, _int, _qty),
        "serving": serving_schema(_table, _int, _qty),
    })
    node.update(_exactly_one("generator", "tasks", "model", "serving"))
    return node


def _with_offload(parallel: Schema) -> Schema:
    """[parallel] with its `offload` table (parallel/offload.py), after `zero`."""
    flag = "{}: false keeps it on the GPU (the default)"
    keys = parallel["properties"]
    offload = _table(
        "Offload to each unit's host CPU over its PCIe link, with the transfers simulated "
        "(ZeRO-Offload, USENIX ATC 2021; TransformerEngine's activation offloading)", {
            "optimizer": {"type": "boolean", "default": False, "description": flag.format(
                "true: the optimizer state and fp32 master weights in host memory, the "
                "gradients sent down as each bucket is reduced, Adam on the host CPU, the "
                "updated parameters sent up (zero 0..2)")},
            "activations": {"type": "boolean", "default": False, "description": flag.format(
                "true: each layer's saved activations sent down after its forward and up "
                "before its backward, overlapping compute (recompute none or selective, "
                "fuse = false)")},
            "host_link": _link("The link between each unit and its host; default: the "
                               "host link of the units' device preset (presets/hosts.toml)"),
            "cpu_adam": {"type": "number", "exclusiveMinimum": 0, "x-magnitude": "parameter_rate",
                         "description": "Parameters per second one node's host CPUs update "
                                        "with Adam (a node's units share them); default: "
                                        "the catalog's (presets/hosts.toml)"},
        })
    at = list(keys).index("zero") + 1
    parallel["properties"] = {**dict(list(keys.items())[:at]), "offload": offload,
                              **dict(list(keys.items())[at:])}
    return parallel


SWEEP_MODES = ("grid", "random", "lhs")
SWEEP_LABEL_MAX = 40    # characters: an axis name, not a sentence


def _sweep() -> Schema:
    """[sweep]'s shape; study/spec.py checks the rest (key paths, ranges, samples by
    mode), with its own one-line errors."""
    return _table("A parameter study, run by `leptonsim sweep` (docs/studies.md); "
                  "`leptonsim run` ignores it", {
        "mode": {"enum": list(SWEEP_MODES), "default": "grid",
                 "description": "grid (every combination), random or lhs (samples draws)"},
        "samples": _int("points drawn by random and lhs (required there)", 1)
        | {"maximum": SIZES["sweep_points"].maximum},
        "seed": _int("seeds the random and lhs draws", 0, 0),
        "parameters": {"type": "object", "minProperties": 1,
                       "additionalProperties": {"type": ["array", "object"]},
                       "description": "quoted key path -> a list of values or a range "
                                      "table { start, stop, step } or { min, max, log, num }"},
        "labels": {"type": "object", "additionalProperties": {
            "type": "string", "minLength": 1, "maxLength": SWEEP_LABEL_MAX,
            "description": "the key path's name in figures"},
                   "description": "quoted swept key path -> its name in the figures "
                                  "(default: the humanised path, units for "
                                  "hardware.units[0].count)"},
    }, required=("parameters",))


@cache
def _schema() -> Schema:
    return _table("A leptonsim scenario: hardware, workload and how to schedule it", {
        "scenario": _scenario(),
        "hardware": _hardware(),
        "workload": _workload(),
        "parallel": _with_offload(parallel_schema(_table, _int, _qty)),
        "noise": noise_schema(_table, _int),
        "failures": failures_schema(_table, _int, _qty),
        "sweep": _sweep(),
        "schedule": _table("How tasks are placed on units", {
            "scheduler": {"enum": list(SCHEDULERS), "default": AUTO,
                          "description": "auto (static for a [workload.model], whose tasks "
                                         "are all pinned; heft otherwise), "
                                         "heft (earliest finish time list scheduling), "
                                         "heft_contention (the same, seeing the link queues "
                                         "it plans), greedy "
                                         "(first idle unit takes the next ready task) or "
                                         "static (every task pinned with unit = ...)"},
            "network": {"enum": list(NETWORKS), "default": "fifo",
                        "description": "fifo (each link direction carries one transfer at a "
                                       "time; switches cut through: a route costs its "
                                       "latencies plus bytes over its slowest link), fair "
                                       "(transfers in flight share every link max-min "
                                       "fairly, also cut-through) or store_and_forward "
                                       "(fifo, but each hop pays latency + bytes / bandwidth)"},
        }, default={}),
        "cost": _table("How long a task takes on a unit (docs/model.md)", {
            "model": {"enum": list(COST_MODELS), "default": "auto",
                      "description": "auto (gpu for a [workload.model], roofline for a task "
                                     "graph), roofline (max(FLOPs / (peak x efficiency), "
                                     "bytes / bandwidth) + overhead per task, at the peak of "
                                     "the workload's precision), gpu (GEMMs by shape with "
                                     "tile and wave quantisation over the unit's SMs, the "
                                     "rest at achievable bandwidth, the overlap rule, "
                                     "overhead per kernel), table (measured op times "
                                     "interpolated from the CSV `table`) or calibrated (the "
                                     "roofline of this machine's `profile`, written by "
                                     "leptonsim calibrate)"},
            "overlap": {"default": "sum",
                        "description": "gpu: how compute C and memory time M combine, t = "
                                       "max(C, M) + a min(C, M): max (a = 0, the roofline), "
                                       "sum (a = 1, no overlap) or a number a in [0, 1]"},
            "table": _str("Path of an op-time table CSV (docs/model.md), relative to the "
                          "scenario file; read by model = \"table\"", minLength=1),
            "profile": _str("Path of a hardware profile TOML written by leptonsim "
                            "calibrate, relative to the scenario file; read by model = "
                            "\"calibrated\"", minLength=1),
            "extrapolate": {"type": "boolean", "description": "model = \"table\": price a "
                            "task outside the table's measured sizes (the smallest size's "
                            "time below, the largest size's rate above) instead of refusing "
                            "it"},
        }, default={}),
        "claims": _table("Figures a source claims, shown beside the simulated ones", {
            "makespan": {**_qty("time", "Claimed makespan", minimum=0),
                         "x-claim-key": "makespan_s"},
            "energy": {**_qty("energy", "Claimed energy", minimum=0),
                       "x-claim-key": "energy_j"},
            "speedup": {**_qty("dimensionless", "Claimed speed-up", exclusiveMinimum=0),
                        "x-claim-key": "speedup"},
            "source": _str("Where the claims come from, e.g. 'seed §4.3'", default=""),
        }, default={}),
        "objective": _table("The seed's third formula E_t + lambda * E_r", {
            "training_error": {"type": "number", "minimum": 0, "x-magnitude": "objective",
                               "description": "Training error E_t"},
            "inference_error": {"type": "number", "minimum": 0, "x-magnitude": "objective",
                                "description": "Inference error E_r"},
            "lambda": {"type": "number", "minimum": 0, "x-magnitude": "objective",
                       "description": "Weight lambda of the inference error"},
        }, ("training_error", "inference_error", "lambda")),
        "variants": {
            "type": "object",
            "description": "Named variants: each is the base scenario with the given dotted "
                           "key paths overridden, e.g. \"workload.generator.kind\" = \"chain\"",
            "additionalProperties": {
                "type": "object", "minProperties": 1,
                "description": "One variant: dotted key path -> new value",
            },
        },
    }, ("scenario", "hardware", "workload"), **{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://leptonsim.invalid/scenario.schema.json",
        "title": "leptonsim scenario",
    })
