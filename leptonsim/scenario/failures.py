"""[failures]: its schema, and the FailureModel (leptonsim.failures) of a normalised
document. `leptonsim failures FILE` reads it; `leptonsim run` ignores it, as it ignores
[sweep]. Every bound is the schema's or one ScenarioError naming its key."""

from __future__ import annotations

import math
from typing import Any

from ..errors import ScenarioError, did_you_mean
from ..failures.model import ADAM_CHECKPOINT_BYTES, HOUR, FailureModel
from ..failures.simulate import MAX_EVENTS, SPAN_MTBFS
from ..hardware import Cluster
from ..presets import failure_presets

Schema = dict[str, Any]
MTBFS = ("unit", "node", "link", "job")
MAX_REPLICATES = 10_000  # 41 candidates x 10,000 replicates: 3 MB a column


def _hours(meaning: str) -> Schema:
    return {"type": "number", "exclusiveMinimum": 0, "x-magnitude": "hours",
            "description": f"{meaning}, in hours"}


def failures_schema(table: Any, integer: Any, quantity: Any) -> Schema:
    mtbf = {f"{k}_mtbf_h": _hours(f"Mean time between failures of one {k}" + (
        " (planned interruptions: maintenance, upgrades)" if k == "job" else ""))
        for k in MTBFS}
    return table("Failures and checkpoints over a training run, read by `leptonsim "
                 "failures` (docs/noise.md); `leptonsim run` ignores it", {
                     "preset": {"type": "string", "description": "Failure rates from "
                                "presets/failures.toml (llama3_h100, opt_a100); keys given "
                                "here replace the preset's"},
                     **mtbf,
                     "units": integer("GPUs in the job (default: the hardware's units)", 1),
                     "units_per_node": integer("Units per node (default: the hardware's "
                                               "two_level units_per_node, the preset's, or 8)", 1),
                     "checkpoint": quantity("bytes", "Checkpoint size (default: the model's "
                                            "parameters x bytes_per_parameter)",
                                            exclusiveMinimum=0),
                     "bytes_per_parameter": {"type": "number", "exclusiveMinimum": 0,
                                             "x-magnitude": "dimensionless",
                                             "default": ADAM_CHECKPOINT_BYTES,
                                             "description": "Checkpoint bytes per model "
                                             "parameter (14: mixed-precision Adam)"},
                     "storage_bandwidth": quantity("bandwidth", "Aggregate bandwidth a "
                                                   "checkpoint is written at",
                                                   exclusiveMinimum=0),
                     "restart": quantity("time", "Restart and recovery: reschedule, reload "
                                         "the checkpoint", 0.0, minimum=0),
                     "step_time": quantity("time", "One step's time (default: the "
                                           "scenario's simulated makespan)", exclusiveMinimum=0),
                     "steps": integer("A run of this many steps", 1),
                     "days": {"type": "number", "exclusiveMinimum": 0, "maximum": 3650,
                              "x-magnitude": "dimensionless",
                              "description": "A run of this many days (wall time)"},
                     "interval": quantity("time", "A checkpoint interval (work between "
                                          "checkpoints) to simulate beside the best one",
                                          exclusiveMinimum=0),
                     "replicates": {**integer("Seeded replicates of the run", 1, 200),
                                    "maximum": MAX_REPLICATES},
                 }, ("storage_bandwidth",), oneOf=[{"required": ["steps"]},
                                                   {"required": ["days"]}])


def _preset(table: dict[str, Any]) -> dict[str, Any]:
    if "preset" not in table:
        return {}
    catalog = failure_presets()
    name = table["preset"]
    if name not in catalog:
        raise ScenarioError("failures.preset", "a failure preset", name,
                            hint=did_you_mean(name, catalog))
    return catalog[name]


def build_failures(doc: dict[str, Any], cluster: Cluster, params: float | None,
                   step_s: float) -> FailureModel:
    """The FailureModel of a normalised document's [failures] on `cluster`; `params`
    (the model's, if any) sizes a checkpoint the table does not give."""
    table = doc["failures"]
    merged = {**_preset(table), **table}
    if not any(f"{k}_mtbf_h" in merged for k in MTBFS):
        raise ScenarioError("failures", "an MTBF: unit_mtbf_h, node_mtbf_h, link_mtbf_h or "
                            "job_mtbf_h, or a preset", "<none>",
                            hint="preset = 'llama3_h100'")
    units = int(merged.get("units", cluster.size))
    per_node = int(merged.get("units_per_node", cluster.units_per_node or 8))
    if "checkpoint" in merged:
        size = float(merged["checkpoint"])
    elif params is not None:
        size = params * float(merged["bytes_per_parameter"])
    else:
        raise ScenarioError("failures.checkpoint", "a checkpoint size (a task graph has "
                            "no model to size it from)", "<none>", hint="checkpoint = '80 GB'")
    mtbf = {f"{k}_mtbf_s": float(merged.get(f"{k}_mtbf_h", math.inf)) * HOUR for k in MTBFS}
    links = round(len(cluster.links) * units / cluster.size)  # the job's, if `units` is
    model = FailureModel(units, math.ceil(units / per_node), links,
                         checkpoint_bytes=size,
                         storage_bandwidth=float(merged["storage_bandwidth"]),
                         restart_s=float(merged["restart"]), step_s=step_s, **mtbf)
    _check_feasible(model, merged)
    if "interval" in merged and float(merged["interval"]) <= model.checkpoint_s:
        raise ScenarioError("failures.interval", f"an interval longer than the checkpoint "
                            f"write time ({model.checkpoint_s:.4g} s)", f"{merged['interval']:g} s")
    return model


def _check_feasible(model: FailureModel, table: dict[str, Any]) -> None:
    """A run the simulation can finish: a checkpoint and a restart shorter than a few
    MTBFs (else almost no interval completes: e^{s/M} tries each), and at most
    MAX_EVENTS / 2 interruptions expected."""
    m = model.mtbf_s
    for key, what, seconds in (("storage_bandwidth", "checkpoint write", model.checkpoint_s),
                               ("restart", "restart", model.restart_s)):
        if seconds >= (SPAN_MTBFS - 1) * m:
            raise ScenarioError(f"failures.{key}", f"a {what} shorter than "
                                f"{SPAN_MTBFS - 1:g} x the job's MTBF ({m:.4g} s)",
                                f"<{seconds:.4g} s>",
                                hint="the run would almost never finish an interval")
    span, key = ((table["days"] * 86_400.0, "days") if "days" in table
                 else (table["steps"] * model.step_s, "steps"))
    if span / m > MAX_EVENTS / 2:
        raise ScenarioError(f"failures.{key}", f"a run expecting at most {MAX_EVENTS // 2:,} "
                            f"interruptions (MTBF {m:.4g} s)", f"<{span / m:.4g}>")
