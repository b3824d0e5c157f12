"""The per-kind / measured-table model validation predicts with.

`KindCost` is the profile's calibrated roofline (calibrated.CalibratedCost) refined
by a kernel calibration (measured by leptonsim.measure.calibration), in three tiers:

* **profiled** (`tier="profiled"`, the default): a task whose layers were timed at
  its own micro-batch size costs what they measured there, as a profile-driven
  simulator charges each op its profiled time; sizes not timed are interpolated;
* **interpolated** (`tier="interpolated"`): the task's time at its micro-batch size
  comes from a line fitted to the layers' measurements at *other* sizes only
  (`interpolate`), so the prediction never saw that size: how well the cost model
  generalises to shapes nobody measured;
* **kind models** (also the fallback of the first two): per op kind and phase,

      t = a_kind + b_kind * flops / (peak * eff(flops)) + c_kind * bytes / mem_bw

  the roofline's two terms each scaled per kind, plus a fixed cost per call.

Every task then adds the calibrated gap that follows a task of its kind (dispatch,
freeing its output). The simulated bar is that whole slot; `kernel_seconds` is the
part a measured trace records as the task (the timed kernel call). Kinds the
calibration has not seen keep the profile's roofline and per-task overhead; fixed-
duration and communication tasks cost what every model charges them (base.TaskCost).

Transfers (`Endpoints`, LogGP's o and L): the executor has no progress thread, so a
worker copies each tensor it sends into shared memory and each tensor it receives
out of it itself, between its tasks. For a pinned graph each task's slot therefore
also holds the copy-in of its outputs to other workers and the copy-out of its
inputs from them; the link then only carries what is left, the message's latency
(waking the receiver included). A receive is charged to the task that consumes it,
on the consumer's unit: the real worker does it in the gap before some task there,
usually that one, so the unit's busy time is the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

from ..graph import TaskGraph
from ..hardware import Cluster, ComputeUnit
from .base import TaskCost
from .calibrated import CalibratedCost, Profile
from .roofline import roofline_seconds, roofline_terms

TIERS = ("profiled", "interpolated", "kind")


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
    key: str            # what the task computes (model_kernels.work_key), shape included
    compute_s: float    # flops / (peak * eff(flops))
    memory_s: float     # bytes / memory bandwidth
    measured_s: float
    gap_s: float


@dataclass(frozen=True)
class Endpoints:
    """What one transfer of n bytes costs: the sender's core send_s + n / send_bandwidth,
    the receiver's core recv_s + n / recv_bandwidth, and latency_s in between."""

    send_s: float
    send_bandwidth: float
    recv_s: float
    recv_bandwidth: float
    latency_s: float

    def send(self, nbytes: np.ndarray | float) -> np.ndarray | float:
        return self.send_s + nbytes / self.send_bandwidth

    def recv(self, nbytes: np.ndarray | float) -> np.ndarray | float:
        return self.recv_s + nbytes / self.recv_bandwidth

    @property
    def link(self) -> tuple[float, float]:
        """The link that is left once the copies are on the units: latency, no byte cost."""
        return self.latency_s, float("inf")


@dataclass(frozen=True)
class KernelCalibration:
    fits: dict[str, KindFit]
    points: tuple[Point, ...] = ()
    default_gap_s: float = 0.0
    batches: dict[str, tuple[int, ...]] = field(default_factory=dict)
    curves: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    """work key -> (micro-batch, median seconds) in increasing micro-batch order."""
    link: tuple[float, float] | None = None
    """(latency s, bandwidth B/s) of a transfer to an idle worker (None: the profile's)."""
    endpoints: Endpoints | None = None
    """Copies charged to the units (replaces `link` where the placement is pinned)."""

    @property
    def simulated_link(self) -> tuple[float, float] | None:
        """The link of the simulated cluster: what remains after the endpoint copies if
        they are on the units, else the measured link to an idle worker."""
        return self.endpoints.link if self.endpoints else self.link


def pinned(graph: TaskGraph) -> bool:
    return bool(graph.size) and bool((graph.pin >= 0).all())


def endpoint_seconds(graph: TaskGraph, endpoints: Endpoints) -> np.ndarray:
    """Per task of a pinned graph: the copy-in of its outputs to other units plus the
    copy-out of its inputs from other units (one copy per edge, as the executor does;
    zero-byte dependencies move no data and cost nothing here)."""
    src, dst = graph.edge_src, graph.edge_dst
    nbytes = np.rint(graph.edge_bytes)
    remote = (graph.pin[src] != graph.pin[dst]) & (nbytes > 0)
    out = np.zeros(graph.size)
    np.add.at(out, src[remote], endpoints.send(nbytes[remote]))
    np.add.at(out, dst[remote], endpoints.recv(nbytes[remote]))
    return out


def interpolate(curve: Sequence[tuple[float, float]], x: float,
                span: float = 4.0) -> float | None:
    """The layer's time at micro-batch x from its measurements at other sizes: a line
    a + b * batch (a, b >= 0) fitted on relative error to the points within a factor
    `span` of x (all of them if fewer than two are that close); None without any.
    A line, not a curve through the points: it smooths the few-percent noise of
    single measurements, and kernel time is close to affine in the batch (a per-call
    cost plus a per-sample one) -- though not exactly: a BLAS call changes regime at
    some sizes, which is what the profiled tier avoids."""
    others = [(b, t) for b, t in curve if b != x]
    pts = [(b, t) for b, t in others if x / span <= b <= x * span]
    if len(pts) < 2:
        pts = others
    if len(pts) <= 1:
        return float(pts[0][1]) if pts else None
    b = np.array([p[0] for p in pts], float)
    t = np.array([p[1] for p in pts], float)
    (a, slope), _ = nnls(np.column_stack([1.0 / t, b / t]), np.ones_like(t))
    return float(a + slope * x)


class KindCost(TaskCost):
    """CalibratedCost refined by a KernelCalibration. `keys[t]` names what task t
    computes (model_kernels.work_key; None for tasks without layers) and `batch` is
    the micro-batch size, for the profiled and interpolated tiers. `seconds` (columns
    without a graph) is the kind tier."""

    name = "calibrated+kernels"

    def __init__(self, profile: Profile, calibration: KernelCalibration,
                 keys: Sequence[str | None] = (), batch: int = 0, tier: str = "profiled") -> None:
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}, got {tier!r}")
        self.profile, self.calibration = profile, calibration
        self.keys, self.batch, self.tier = tuple(keys), batch, tier
        self.base = CalibratedCost(profile)

    def with_tier(self, tier: str) -> KindCost:
        return KindCost(self.profile, self.calibration, self.keys, self.batch, tier)

    def _columns(self, kinds: Sequence[str] | None, n: int) -> np.ndarray:
        """(n, 4): a, b, c, gap per column; NaN where the kind was not calibrated."""
        fits = self.calibration.fits
        nan = (np.nan,) * 4
        return np.array([(f.overhead_s, f.compute_factor, f.memory_factor, f.gap_s)
                         if (f := fits.get(k)) else nan
                         for k in (kinds or ("task",) * n)]).reshape(-1, 4)

    def _kind_kernel(self, flops: np.ndarray, nbytes: np.ndarray,
                     kinds: Sequence[str] | None) -> np.ndarray:
        """The kind models' kernel time; the profile's roofline (no overhead) elsewhere."""
        rate, bandwidth = self.base.rate(flops), self.profile.memory_bandwidth
        compute, memory = roofline_terms(flops, nbytes, rate, bandwidth)
        a, b, c, _ = self._columns(kinds, np.size(flops)).T
        return np.where(np.isfinite(a), a + b * compute + c * memory,
                        roofline_seconds(flops, nbytes, rate, bandwidth))

    def _gap(self, kinds: Sequence[str] | None, n: int) -> np.ndarray:
        gap = self._columns(kinds, n)[:, 3]
        return np.where(np.isfinite(gap), gap, self.profile.overhead_s)

    def seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit | None = None,
                kinds: Sequence[str] | None = None) -> np.ndarray:
        """The kind tier's slot of FLOP/byte columns: kernel call plus the gap after it."""
        n = np.size(flops)
        return self._kind_kernel(flops, nbytes, kinds) + self._gap(kinds, n)

    def kernel_seconds(self, graph: TaskGraph) -> np.ndarray:
        """Predicted duration of each task's kernel call (what a measured trace records)."""
        t = self._kind_kernel(graph.flops, graph.nbytes, graph.kinds)
        if self.tier != "kind":
            curves = self.calibration.curves
            for i, key in enumerate(self.keys):
                if key is not None and key in curves:
                    layer = self._layer_seconds(curves[key])
                    t[i] = t[i] if layer is None else layer
        fixed = ~np.isnan(graph.duration_s)
        return np.where(fixed, np.nan_to_num(graph.duration_s), t)

    def _layer_seconds(self, curve: Sequence[tuple[float, float]]) -> float | None:
        """A layer task's time from its calibration points (None: none to use)."""
        if self.tier == "profiled" and (measured := dict(curve).get(self.batch)) is not None:
            return measured
        return interpolate(curve, self.batch)

    def gap_seconds(self, graph: TaskGraph) -> np.ndarray:
        """What each task adds after its kernel: the calibrated gap, or the profile overhead."""
        return self._gap(graph.kinds, graph.size)

    def copy_seconds(self, graph: TaskGraph) -> np.ndarray:
        """Per task, the endpoint copies its slot holds (zero without Endpoints or pins)."""
        ends = self.calibration.endpoints
        return endpoint_seconds(graph, ends) if ends and pinned(graph) else np.zeros(graph.size)

    def compute_times(self, graph: TaskGraph, unit: ComputeUnit) -> np.ndarray:
        return self.kernel_seconds(graph) + self.gap_seconds(graph)

    def task_times(self, graph: TaskGraph, cluster: Cluster) -> np.ndarray:
        """TaskCost's times plus the endpoint copies each task's slot holds (these are
        transfers' costs on the units, so fixed tasks get them too)."""
        return super().task_times(graph, cluster) + self.copy_seconds(graph)
