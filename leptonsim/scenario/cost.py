"""The pipeline's cost stage: the scenario's cost model, from its [cost] table and the
workload's precision. Every task of the scenario is priced by this one model: the
step's stages are balanced with it, and the engine times the tasks with it."""

from __future__ import annotations

from typing import Any

from ..cost import CostModel, Roofline

Doc = dict[str, Any]

COST_MODELS = ("roofline",)
"""The choices of [cost] model (schema.py reads them from here)."""


def build_cost(doc: Doc) -> CostModel:
    """The cost model of a normalised document."""
    model = doc["workload"].get("model")
    precision = model["precision"] if model is not None else None
    return Roofline(precision=precision)
