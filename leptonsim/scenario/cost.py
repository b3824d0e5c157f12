"""The pipeline's cost stage: the scenario's cost model, from its [cost] table and the
workload's precision. Every task of the scenario is priced by this one model: the
step's stages are balanced with it, and the engine times the tasks with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..cost import CostModel, GpuCost, Roofline
from ..cost.gpu import OVERLAPS
from ..errors import ScenarioError, TableError, found
from ..hardware import Cluster, ComputeUnit, PrecisionError, replicate

Doc = dict[str, Any]

COST_MODELS = ("auto", "roofline", "gpu", "table", "calibrated")
"""The choices of [cost] model (schema.py reads them from here)."""


def build_cost(doc: Doc, file: str = "<string>") -> CostModel:
    """The cost model of a normalised document (of scenario `file`, which a table's
    path is relative to): "auto" is "gpu" for a [workload.model] (its tasks carry GEMM
    shapes) and "roofline" for a task graph (they carry none)."""
    model = doc["workload"].get("model")
    precision = model["precision"] if model is not None else None
    cost = doc["cost"]
    name = cost["model"]
    for key, reader in _READS.items():
        if key in cost and name != reader:
            raise ScenarioError(f"cost.{key}", f"no {key} key beside model = "
                                f"{name!r} (only model = \"{reader}\" reads it)", cost[key])
    dispatch = float(model.get("host_dispatch", 0.0)) if model is not None else 0.0
    if dispatch and name not in ("auto", "gpu"):
        raise ScenarioError("workload.model.host_dispatch", "0 with cost.model = "
                            f"{name!r} (the gpu model prices it, per kernel)",
                            model["host_dispatch"],
                            hint="remove host_dispatch, or set cost.model = \"gpu\"")
    if name == "table":
        return _table_cost(doc, file, precision)
    if name == "calibrated":
        return _calibrated_cost(cost, file)
    if name == "auto":
        name = "gpu" if model is not None else "roofline"
    if name == "roofline":
        return Roofline(precision=precision)
    return GpuCost(precision=precision, overlap=_overlap(cost["overlap"]), host_dispatch=dispatch)


_READS = {"table": "table", "extrapolate": "table", "profile": "calibrated"}
"""Which [cost] model reads each of the table's optional keys."""


def _beside(file: str, path: str) -> Path:
    """A path a scenario file names, relative to the file (to the cwd for a string)."""
    return (Path(file).parent if not file.startswith("<") else Path()) / path


def _calibrated_cost(cost: Doc, file: str) -> CostModel:
    """The calibrated roofline of a `leptonsim calibrate` profile: every unit runs at
    this machine's measured rates, whatever its preset says."""
    from ..cost.calibrated import CalibratedCost
    from ..measure.calibrate import load_profile

    if "profile" not in cost:
        raise ScenarioError("cost.profile", "the path of a profile TOML (model = "
                            "\"calibrated\" needs one; leptonsim calibrate writes it)",
                            "<nothing>")
    try:
        return CalibratedCost(load_profile(_beside(file, cost["profile"])))
    except ScenarioError as err:  # a mistake in the profile names the profile
        raise TableError(err.path, err.expected, err.found, file=err.file,
                         hint=err.hint) from None


def check_precision(doc: Doc, cluster: Cluster) -> None:
    """Every unit type has a peak for the workload's precision, or the one line that says
    which has not, and what it has (before anything is built or simulated)."""
    model = doc["workload"].get("model")
    if model is None:
        return
    precision = model["precision"]
    for unit in cluster.unit_types:
        try:
            unit.peak(precision)
        except PrecisionError:
            i = next(i for i, t in enumerate(doc["hardware"]["units"]) if unit.name in
                     {u.name for u in replicate(ComputeUnit(t["name"], 1.0, 1.0), int(t["count"]))})
            table = doc["hardware"]["units"][i]
            what = f"preset {table['preset']}" if "preset" in table else f"unit {table['name']}"
            has = ", ".join(name for name, _ in unit.peaks)
            raise ScenarioError("workload.model.precision", "a precision every unit has a "
                                f"peak for ({table['name']}: {what} has {has})", precision,
                                hint=f"give hardware.units[{i}].peak_{precision} to add one"
                                ) from None


def _table_cost(doc: Doc, file: str, precision: str | None) -> CostModel:
    """TableCost of the [cost] table's CSV, each unit matched to its rows by unit name,
    then preset (a unit it has no rows for is an error naming the unit's table)."""
    from ..cost.measured import TableCost
    from ..cost.optable import ANY, read_table

    cost = doc["cost"]
    if "table" not in cost:
        raise ScenarioError("cost.table", "the path of an op-time table CSV (model = "
                            "\"table\" needs one; docs/scenarios.md)", "<nothing>")
    table = read_table(_beside(file, cost["table"]))
    have = set(table.devices)
    devices: dict[str, str] = {}
    for i, t in enumerate(doc["hardware"]["units"]):
        candidates = [t["name"], *([t["preset"]] if "preset" in t else []), ANY]
        device = next((c for c in candidates if c in have), None)
        if device is None:
            raise ScenarioError(f"hardware.units[{i}]", f"a unit {table.file} has rows for "
                                f"(device {' or '.join(map(repr, candidates[:-1]))}, or '*')",
                                f"<unit {t['name']!r}>",
                                hint=f"the table's devices: {', '.join(sorted(have))}")
        probe = ComputeUnit(t["name"], 1.0, 1.0)  # named as the cluster names its units
        devices.update((u.name, device) for u in replicate(probe, int(t["count"])))
    return TableCost(table, precision, bool(cost.get("extrapolate", False)), devices)


def _overlap(value: object) -> str | float:
    """[cost] overlap: "max", "sum" or a blend a in [0, 1]."""
    if isinstance(value, str) and value in OVERLAPS:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    raise ScenarioError("cost.overlap", "'max', 'sum' or a number in [0, 1]", found(value),
                        hint="t = max(C, M) + a min(C, M): 'max' is a = 0, 'sum' a = 1")
