"""`[workload.model] dlrm = {...}`: a DLRM by its sizes (zoo/dlrm_spec.py), from nothing
or from a zoo DLRM (`base`), with any size changed: `tables = [7912889, 33823, ...]`.

The keys are DLRMSpec's fields, so the schema, the docs and the builder cannot
disagree.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from ..errors import ScenarioError
from ..limits import check_size
from ..zoo import DLRMS, get_dlrm
from ..zoo.dlrm_spec import DLRMSpec
from ..zoo.spec import SpecError
from .spec_fields import Schema, field_schema

KEY = "workload.model.dlrm"
LISTS = ("tables", "bottom", "top")  # arrays in TOML, tuples in the spec

DESCRIPTIONS = {
    "name": "Model name in reports (default: the base's, or 'dlrm')",
    "tables": "Rows of each embedding table (its feature's cardinality), one entry per table",
    "dim": "Width of every embedding row; the bottom MLP ends in it",
    "dense_features": "Dense (numerical) features, the bottom MLP's input",
    "bottom": "Bottom MLP widths, ending in dim",
    "top": "Top MLP widths, ending in 1 (the logit)",
    "lookups": "Indices per table per sample, sum-pooled (1: one-hot)",
    "self_interaction": "The interaction includes each vector's dot with itself",
    "pad_to": "The interaction output zero-padded to a multiple of this (NVIDIA: 8)",
    "fused_interaction": "The interaction as NVIDIA's fused cuda_dot kernel (Z in shared "
                         "memory, no Z Z^T through memory); false: a batched GEMM and a gather",
    "table_bytes": "Bytes per stored table element; 0: the precision's (NVIDIA: 4, fp32 "
                   "tables under mixed precision)",
}


def dlrm_schema(table: Any) -> Schema:
    hints = typing.get_type_hints(DLRMSpec)
    fields = {f.name: {**field_schema(hints[f.name]), "description": DESCRIPTIONS[f.name]}
              for f in dataclasses.fields(DLRMSpec)}
    return table(
        "A DLRM by its sizes (docs/scenarios.md): from a zoo DLRM (base) or nothing (then "
        "tables is needed, the other sizes default to NVIDIA's Criteo DLRM); every other "
        "key changes that size", {
            "base": {"enum": sorted(DLRMS), "x-any-case": True, "description": "A zoo DLRM to start from "
                                                          "(case-insensitive in leptonsim model)"},
            **fields})


def build_dlrm_spec(table: dict[str, Any]) -> DLRMSpec:
    """The spec of a `dlrm` table; a ScenarioError names the key otherwise."""
    sizes: dict[str, Any] = {k: tuple(v) if k in LISTS and isinstance(v, list) else v
             for k, v in table.items() if k != "base"}
    if "base" not in table and "tables" not in sizes:
        raise ScenarioError(f"{KEY}.tables", "the table sizes of a DLRM without a base",
                            "<nothing>", hint="give tables = [rows, ...], or a base")
    for key in LISTS:  # before a spec of them is built
        if key in sizes and isinstance(sizes[key], tuple):
            check_size("model_layers", len(sizes[key]), f"{KEY}.{key}")
    try:
        if "base" in table:
            return dataclasses.replace(get_dlrm(table["base"]), **sizes)
        return DLRMSpec(**{"name": "dlrm", **sizes})
    except SpecError as err:
        raise ScenarioError(f"{KEY}.{err.key}", err.expected, err.found) from None
