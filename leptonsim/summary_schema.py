"""The JSON Schema (draft 2020-12) of summary.json, as report.summary writes it:
`leptonsim schema --summary` prints it. What each key means is docs/results.md's; this
says what a reader may rely on: which keys there are and their JSON types. Every table
is closed (additionalProperties false), so a key summary() gains without a line here
fails the test that validates the bundled scenarios' summaries against it."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

NUMBER: Schema = {"type": "number"}
INTEGER: Schema = {"type": "integer"}
STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}


def _maybe(node: Schema) -> Schema:
    return {"anyOf": [node, {"type": "null"}]}


def _table(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    return {"type": "object", "additionalProperties": False, "properties": properties,
            "required": [k for k in properties if k not in optional]}


def _rows(properties: dict[str, Schema]) -> Schema:
    return {"type": "array", "items": _table(properties)}


_SPLIT = ("model", "training", "batch", "microbatches", "dtype_bytes", "dp", "pp", "tp",
          "cp", "ep", "sp", "zero", "schedule", "recompute")


def _run() -> Schema:
    kinds = {"model": STRING, "training": BOOLEAN, "schedule": STRING, "recompute": STRING,
             "sp": BOOLEAN}
    split = {k: kinds.get(k, INTEGER) for k in _SPLIT}
    return _table({"units": _rows({"kind": STRING, "count": INTEGER}), **split},
                  optional=_SPLIT)


def summary_schema() -> Schema:
    """The schema of one variant's summary.json."""
    numbers = ("makespan_s", "critical_path_s", "total_work_s", "effective_capacity",
               "speedup", "parallel_efficiency", "transfer_bytes", "energy_j", "cost_usd")
    step = _table({k: NUMBER for k in ("samples_per_s", "model_flops", "hardware_flops",
                                       "peak_flop_rate", "mfu", "hfu", "exposed_comm_max_s",
                                       "bubble_s")}
                  | {"tokens_per_s": _maybe(NUMBER), "exposed_comm_unit": STRING})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "leptonsim summary.json",
        "description": "One simulated variant; every key is described in docs/results.md",
        **_table({
            "leptonsim_version": STRING, "scenario": STRING, "variant": STRING,
            "file": STRING, "settings": _rows({"key": STRING, "value": {}}), "run": _run(),
            "seed": INTEGER, "scheduler": STRING, "network": STRING, "tasks": INTEGER,
            "edges": INTEGER, **{k: NUMBER for k in numbers},
            "critical_path_tasks": {"type": "array", "items": STRING},
            "critical_path_length": INTEGER, "best_single_unit": STRING,
            "energy": _table({"compute_j": NUMBER, "idle_j": NUMBER, "network_j": NUMBER}),
            "units": _rows({"name": STRING, "tasks": INTEGER, "busy_s": NUMBER,
                            "utilization": NUMBER}),
            "links": _rows({"name": STRING, "transfers": INTEGER, "bytes": NUMBER,
                            "busy_s": NUMBER, "utilization": NUMBER}),
            "formulas": _rows({"name": STRING, "formula": STRING, "predicts": STRING,
                               "prediction": NUMBER, "simulated": _maybe(NUMBER),
                               "relative_error": _maybe(NUMBER),
                               "within_bounds": _maybe(BOOLEAN), "proven": BOOLEAN,
                               "note": STRING}),
            "claims": _rows({"key": STRING, "claimed": NUMBER, "simulated": _maybe(NUMBER),
                             "relative_error": _maybe(NUMBER), "source": STRING}),
            "memory": _rows({"where": STRING, **{f"{k}_bytes": NUMBER for k in (
                "weights", "gradients", "optimizer", "activations", "total")},
                "notes": {"type": "array", "items": STRING}}),
            "breakdown": _table({k: NUMBER for k in ("compute_s", "exposed_comm_s",
                                                     "bubble_s", "other_s")}),
            "step": _maybe(step),
            "symmetry": _maybe(_table({"tp": STRING, "dp": STRING})),
        }),
    }
