"""The roofline, written once: a task is bound by its compute or by its memory traffic.

    t = max(flops / rate, bytes / bandwidth) + overhead

(Williams, Waterman & Patterson, "Roofline: an insightful visual performance model for
multicore architectures", CACM 52(4), 2009, with a fixed per-task overhead added).
Every model in cost/ that has a roofline part calls `roofline_seconds` or
`roofline_terms`; only the rate differs: peak x efficiency here, peak x eff(flops) in
calibrated.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..hardware import ComputeUnit
from .base import TaskCost


def roofline_terms(flops: np.ndarray, nbytes: np.ndarray, rate: np.ndarray | float,
                   bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    """The two bounds on their own: seconds of the FLOPs at `rate`, of the bytes at
    `bandwidth` (for models that weigh them separately, kinds.py)."""
    return flops / rate, nbytes / bandwidth


def roofline_seconds(flops: np.ndarray, nbytes: np.ndarray, rate: np.ndarray | float,
                     bandwidth: float, overhead_s: float = 0.0) -> np.ndarray:
    """max(flops / rate, bytes / bandwidth) + overhead, element-wise."""
    compute, memory = roofline_terms(flops, nbytes, rate, bandwidth)
    return np.maximum(compute, memory) + overhead_s


class Roofline(TaskCost):
    """The analytic model: rate = peak x E, the unit's sustained efficiency, at the
    peak of `precision` (the unit's default peak when None); the default cost model
    everywhere (cost.DEFAULT)."""

    name = "roofline"

    def __init__(self, precision: str | None = None) -> None:
        self.precision = precision

    def seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit,
                kinds: Sequence[str] | None = None) -> np.ndarray:
        return roofline_seconds(flops, nbytes, unit.peak(self.precision) * unit.efficiency,
                                unit.memory_bandwidth, unit.overhead_s)
