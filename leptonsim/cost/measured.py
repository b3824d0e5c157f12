"""`TableCost`: every task costs what an op-time table (cost/optable.py) measured.

A task of op kind K on a unit matched to device D at precision P is looked up in the
curve (D, P, K), or (D, P, "*") when K has none, by its size on the curve's axis (its
FLOPs, or its bytes for memory-bound kinds). Columns without a kind (a pipeline
partition's whole layers) use the "*" curve. A unit is matched to the table's device
by `devices[unit.name]` (the scenario maps each unit to its preset or unit name,
scenario/cost.py), else by its own name, else to the "*" device.

Between measured sizes, time is interpolated **linearly in log(size), log(time)**: a
power law t = t_i (s / s_i)^p on each segment. Why: profile grids are geometric (sizes
2x apart over six decades), and kernel time follows a different power law in each
regime (flat while launch-bound, slope < 1 while the efficiency ramps up with tile and
wave fill, slope 1 at the achievable rate): a power-law segment is exact on each
regime's asymptote, positive, and its error is relative, the same at a microsecond as
at a second. Neither form is exact in between: on a 2x grid log-log reproduces an
affine time a + s / R within 1.5 %, as linear interpolation reproduces a square-root
ramp (17 % and 15 % on a 10x grid): the grid's step matters more than the form. Vidur
(Agrawal et al., "Vidur: a large-scale simulation framework for LLM inference", MLSys
2024, §4) prices operators from profiles too, with random-forest regressors between
the profiled sizes; a piecewise power law is exact at every measured size and monotone.

Monotone: a measured dip (noise, a cache quirk of one size) is raised to the largest
time measured at any smaller size (a running maximum), so a larger op never finishes
sooner, as with calibrated.monotone_curve and for the same reason.

Outside the measured range a task is an error (TableError naming the table, the curve,
the range and the size) unless `extrapolate`:
* below the smallest size, the smallest size's time (the launch-bound floor: a kernel
  call never costs less than the smallest one measured);
* above the largest, the largest size's *rate*, t = t_max * s / s_max: the roofline's
  throughput-bound tail, at the rate the device actually reached (the last segment's
  slope is refused: below 1 it would make efficiency rise forever, above 1 it is noise).

The unit's overhead is not added: a measured time includes the launch. Fixed-duration
and communication tasks cost what every model charges them (base.TaskCost).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import TableError
from ..hardware import ComputeUnit
from .base import TaskCost
from .optable import ANY, Curve, OpTable


class TableCost(TaskCost):
    """Task times interpolated from an op-time table, at `precision` (None: the
    table's only precision for each device)."""

    name = "table"

    def __init__(self, table: OpTable, precision: str | None = None, extrapolate: bool = False,
                 devices: Mapping[str, str] | None = None) -> None:
        self.table, self.precision, self.extrapolate = table, precision, extrapolate
        self.devices = dict(devices or {})
        self._logs = {key: _log_curve(c) for key, c in table.curves.items()}

    # -- which rows price a unit ---------------------------------------------------
    def device(self, unit: ComputeUnit) -> str:
        """The table device of `unit`; a TableError naming the unit if there is none."""
        have = set(self.table.devices)
        for name in (self.devices.get(unit.name, unit.name), ANY):
            if name in have:
                return name
        raise TableError("device", f"rows for unit {unit.name!r} (by its preset or unit "
                         f"name, or device '*')", "<none>", file=self.table.file,
                         hint=f"the table's devices: {', '.join(sorted(have))}")

    def precision_of(self, device: str) -> str:
        have = self.table.precisions(device)
        if self.precision is not None and self.precision in have:
            return self.precision
        if self.precision is None and len(have) == 1:
            return have[0]
        wanted = (f"rows of precision {self.precision}" if self.precision else
                  "one precision (the workload names none)")
        raise TableError("precision", f"{wanted} for device {device!r}",
                         f"<{', '.join(have)}>", file=self.table.file)

    # -- pricing -----------------------------------------------------------------
    def seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit,
                kinds: Sequence[str] | None = None) -> np.ndarray:
        flops, nbytes = np.asarray(flops, float), np.asarray(nbytes, float)
        device = self.device(unit)
        precision = self.precision_of(device)
        vocabulary, ids = _kind_ids(kinds, flops.size)
        out = np.empty(flops.shape)
        for j, kind in enumerate(vocabulary):
            mask = (ids == j).reshape(flops.shape)
            if not mask.any():
                continue
            key = self._key(device, precision, kind)
            curve = self.table.curves[key]
            size = (flops if curve.axis == "flops" else nbytes)[mask]
            out[mask] = self._lookup(key, curve, size, kind)
        return out

    def _key(self, device: str, precision: str, kind: str) -> tuple[str, str, str]:
        for k in (kind, ANY):
            if (device, precision, k) in self.table.curves:
                return device, precision, k
        listed = ", ".join(sorted(self.table.kinds(device, precision)))
        raise TableError(f"kind {kind!r}", f"rows for it, or '*' rows, on device {device!r} "
                         f"({precision})", "<none>", file=self.table.file,
                         hint=f"the table has: {listed}" + (
                             "; a pipeline partition prices whole layers by the '*' rows"
                             if kind == ANY else ""))

    def _lookup(self, key: tuple[str, str, str], curve: Curve, size: np.ndarray,
                kind: str) -> np.ndarray:
        log_s, times, slope = self._logs[key]
        lo, hi = curve.sizes[0], curve.sizes[-1]
        below, above = size < lo, size > hi
        if not self.extrapolate and (below | above).any():
            bad = float(size[below | above][0])
            device, precision, rows = key
            by = "" if rows == kind else f", by the {rows!r} rows"
            raise TableError(f"kind {kind!r} on device {device!r} ({precision}{by})",
                             f"{curve.axis} within the measured {lo:g}..{hi:g}",
                             f"<a task of {bad:g} {curve.axis}>", file=self.table.file,
                             hint="[cost] extrapolate = true extends the table: docs/model.md")
        clipped = np.clip(size, lo, hi)
        x = np.log(clipped)
        # the segment [s_i, s_i+1) holding the size, found among the sizes themselves: two
        # sizes 1 ulp apart can share a logarithm, and each must still give its own time
        i = np.searchsorted(np.asarray(curve.sizes), clipped, side="right") - 1
        inside = times[i] * np.exp(slope[i] * (x - log_s[i]))  # t_i (s / s_i)^p_i: exact at s_i
        return np.where(above, times[-1] * (size / hi), inside)


def _log_curve(curve: Curve) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log sizes, times made non-decreasing (a running maximum), and each segment's
    log-log slope (0 after the last size)."""
    log_s = np.log(curve.sizes)
    times = np.maximum.accumulate(curve.seconds)
    rise, run = np.diff(np.log(times)), np.diff(log_s)
    flat = run == 0  # sizes too close for their logs to differ: a step, no slope
    slope = np.append(np.divide(rise, run, out=np.zeros_like(rise), where=~flat), 0.0)
    return log_s, times, slope


def _kind_ids(kinds: Sequence[str] | None, n: int) -> tuple[tuple[str, ...], np.ndarray]:
    """The kinds' vocabulary and each column's index in it (graph.Labels are that
    already; None is one kind, '*')."""
    if kinds is None:
        return (ANY,), np.zeros(n, np.int64)
    vocabulary = getattr(kinds, "vocabulary", None)
    ids = getattr(kinds, "ids", None)
    if vocabulary is not None and ids is not None:
        return tuple(vocabulary), np.asarray(ids)
    names, index = np.unique(np.asarray(list(kinds), dtype=object).astype(str),
                             return_inverse=True)
    return tuple(str(k) for k in names), index.reshape(-1)
