"""The cost model validation predicts with, and the cluster it predicts for.

`KindCost` is the profile's calibrated roofline (leptonsim.calibrate.CalibratedCost)
corrected per task kind by a kernel calibration (see calibration.py):

    task time = a_kind + b_kind * flops / (peak * eff(flops)) + c_kind * bytes / mem_bw
                + gap_kind

with peak, eff and mem_bw from the profile: the roofline's two terms, each scaled
per kind, plus a fixed cost per call.
The simulated bar is the whole slot a task holds its worker; `kernel_seconds` is
the part a measured trace records as the task (the timed kernel call). Kinds the
calibration has not seen keep the profile's roofline plus its per-task overhead;
fixed-duration and communication tasks cost what CalibratedCost charges them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..calibrate import CalibratedCost, Profile
from ..graph import TaskGraph
from ..hardware import Cluster, fully_connected


@dataclass(frozen=True)
class KindFit:
    overhead_s: float       # a: seconds per call, whatever the size
    compute_factor: float   # b: measured seconds per second of calibrated GEMM time
    memory_factor: float    # c: measured seconds per second of streaming the bytes
    gap_s: float            # median time after the call before the next task started
    points: int


@dataclass(frozen=True)
class Point:
    """One calibration measurement: a layer's task at one micro-batch size."""

    model: str
    batch: int
    task: str
    kind: str
    compute_s: float    # flops / (peak * eff(flops))
    memory_s: float     # bytes / memory bandwidth
    measured_s: float
    gap_s: float


@dataclass(frozen=True)
class KernelCalibration:
    fits: dict[str, KindFit]
    points: tuple[Point, ...] = ()
    default_gap_s: float = 0.0
    batches: dict[str, tuple[int, ...]] = field(default_factory=dict)


def roofline_terms(profile: Profile, graph: TaskGraph) -> tuple[np.ndarray, np.ndarray]:
    """Per task: seconds of its FLOPs at the profile's GEMM rate for that size, and
    seconds of its bytes at the profile's memory bandwidth."""
    eff = CalibratedCost(profile).efficiency(graph.flops)
    return graph.flops / (profile.peak_flops * eff), graph.nbytes / profile.memory_bandwidth


def profile_cluster(profile: Profile, workers: int) -> Cluster:
    """`workers` cores of this machine, w0, w1, ..., fully connected by the profile's link."""
    unit = profile.compute_unit()
    return fully_connected([replace(unit, name=f"w{i}") for i in range(workers)],
                           profile.link_spec())


class KindCost:
    """CalibratedCost with the per-kind correction of a KernelCalibration."""

    name = "calibrated+kernels"

    def __init__(self, profile: Profile, calibration: KernelCalibration) -> None:
        self.profile, self.calibration = profile, calibration
        self.base = CalibratedCost(profile)

    def _columns(self, graph: TaskGraph) -> np.ndarray:
        """(tasks, 4): a, b, c, gap per task; NaN where the kind was not calibrated."""
        fits = self.calibration.fits
        kinds = graph.kinds or ("task",) * graph.size
        nan = (np.nan,) * 4
        return np.array([(f.overhead_s, f.compute_factor, f.memory_factor, f.gap_s)
                         if (f := fits.get(k)) else nan for k in kinds]).reshape(-1, 4)

    def kernel_seconds(self, graph: TaskGraph) -> np.ndarray:
        """Predicted duration of each task's kernel call (what a measured trace records)."""
        compute, memory = roofline_terms(self.profile, graph)
        a, b, c, _ = self._columns(graph).T
        fitted = np.where(np.isfinite(a), a + b * compute + c * memory,
                          np.maximum(compute, memory))
        fixed = ~np.isnan(graph.duration_s)
        return np.where(fixed, np.nan_to_num(graph.duration_s), fitted)

    def gap_seconds(self, graph: TaskGraph) -> np.ndarray:
        """What each task adds after its kernel: the calibrated gap, or the profile overhead."""
        gap = self._columns(graph)[:, 3]
        return np.where(np.isfinite(gap), gap, self.profile.overhead_s)

    def task_times(self, graph: TaskGraph, cluster: Cluster) -> np.ndarray:
        times = self.base.task_times(graph, cluster)
        fixed = ~np.isnan(graph.duration_s)
        corrected = self.kernel_seconds(graph) + self.gap_seconds(graph)
        times[:, ~fixed] = corrected[~fixed]
        return times
