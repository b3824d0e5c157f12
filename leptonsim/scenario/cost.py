"""The pipeline's cost stage: the scenario's cost model, from its [cost] table and the
workload's precision. Every task of the scenario is priced by this one model: the
step's stages are balanced with it, and the engine times the tasks with it."""

from __future__ import annotations

from typing import Any

from ..cost import CostModel, GpuCost, Roofline
from ..cost.gpu import OVERLAPS
from ..errors import ScenarioError, found

Doc = dict[str, Any]

COST_MODELS = ("auto", "roofline", "gpu")
"""The choices of [cost] model (schema.py reads them from here)."""


def build_cost(doc: Doc) -> CostModel:
    """The cost model of a normalised document: "auto" is "gpu" for a [workload.model]
    (its tasks carry GEMM shapes) and "roofline" for a task graph (they carry none)."""
    table = doc.get("cost", {})
    model = doc["workload"].get("model")
    precision = model["precision"] if model is not None else None
    name = table.get("model", "auto")
    if name == "auto":
        name = "gpu" if model is not None else "roofline"
    if name == "roofline":
        return Roofline(precision=precision)
    return GpuCost(precision=precision, overlap=_overlap(table.get("overlap", "sum")))


def _overlap(value: object) -> str | float:
    """[cost] overlap: "max", "sum" or a blend a in [0, 1]."""
    if isinstance(value, str) and value in OVERLAPS:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    raise ScenarioError("cost.overlap", "'max', 'sum' or a number in [0, 1]", found(value),
                        hint="t = max(C, M) + a min(C, M): 'max' is a = 0, 'sum' a = 1")
