"""The calibrated profile model: the roofline with a size-dependent efficiency, from a
`Profile` of this machine (measured by leptonsim.measure.calibrate)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..hardware import Cluster, ComputeUnit, LinkSpec, fully_connected
from .base import TaskCost
from .roofline import roofline_seconds, roofline_terms


@dataclass(frozen=True)
class Profile:
    peak_flops: float                 # best single-thread float32 GEMM rate
    memory_bandwidth: float           # bytes read + written per second by a large copy
    overhead_s: float                 # executor dispatch cost per task
    link_latency_s: float             # alpha of a worker-to-worker transfer
    link_bandwidth: float             # B of a worker-to-worker transfer
    efficiency_curve: tuple[tuple[float, float], ...]  # (flops, fraction of peak), monotone
    peak_flops_fp64: float = 0.0
    machine: dict[str, str] = field(default_factory=dict)
    gemm: tuple[tuple[str, int, float], ...] = ()      # (dtype, n, FLOP/s) as measured

    def compute_unit(self, name: str = "core") -> ComputeUnit:
        """One worker as a unit; its efficiency is 1 because the curve carries it."""
        return ComputeUnit(name, self.peak_flops, self.memory_bandwidth, overhead_s=self.overhead_s)

    def link_spec(self) -> LinkSpec:
        return LinkSpec(self.link_latency_s, self.link_bandwidth)


def profile_cluster(profile: Profile, workers: int,
                    link: tuple[float, float] | None = None) -> Cluster:
    """`workers` cores of this machine, w0, w1, ..., fully connected by the profile's
    link, or by a link of the given (latency, bandwidth)."""
    unit = profile.compute_unit()
    spec = profile.link_spec()
    if link is not None:
        spec = replace(spec, latency_s=link[0], bandwidth=link[1])
    return fully_connected([replace(unit, name=f"w{i}") for i in range(workers)], spec)


def monotone_curve(points: Any) -> tuple[tuple[float, float], ...]:
    """Sorted (flops, efficiency) with efficiency non-decreasing and, between points,
    time non-decreasing (e_b / e_a <= f_b / f_a). Why: a measured dip is noise or a
    cache quirk of the one shape measured, which a six-point curve cannot place for
    other shapes; and a model in which a larger op is less efficient, or finishes
    sooner, than a smaller one invites schedulers and partitioners to exploit an
    artefact (split an op forever, say). Calculon's efficiency curves are monotone too."""
    best: dict[float, float] = {}
    for f, e in points:  # one point per size: the best of its measurements
        best[float(f)] = max(float(e), best.get(float(f), 0.0))
    out: list[tuple[float, float]] = []
    for f, e in sorted(best.items()):
        if out:
            f0, e0 = out[-1]
            e = max(e0, min(e, e0 * (f / f0)))
        out.append((f, min(e, 1.0)))
    return tuple(out)


class CalibratedCost(TaskCost):
    """The roofline with a size-dependent efficiency, from a profile of this machine:
    t = max(flops / (peak * eff(flops)), bytes / mem_bw) + overhead, eff interpolated
    log-log between the curve's points (a power law, so time stays monotone in flops)
    and clamped at its ends. Fixed tasks cost as in every model (TaskCost). Every
    unit type gets the profile's times: the scenario runs on cores of this machine."""

    name = "calibrated"

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        curve = monotone_curve(profile.efficiency_curve)
        self._log_f = np.log([f for f, _ in curve])
        self._log_e = np.log([e for _, e in curve])

    def efficiency(self, flops: np.ndarray) -> np.ndarray:
        return np.exp(np.interp(np.log(np.maximum(flops, 1.0)), self._log_f, self._log_e))

    def rate(self, flops: np.ndarray) -> np.ndarray:
        """FLOP/s reached by an op of `flops` FLOPs: peak x eff(flops)."""
        return self.profile.peak_flops * self.efficiency(flops)

    def terms(self, flops: np.ndarray, nbytes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per column: seconds of its FLOPs at the profile's GEMM rate for that size, and
        seconds of its bytes at the profile's memory bandwidth."""
        return roofline_terms(flops, nbytes, self.rate(flops), self.profile.memory_bandwidth)

    def seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit | None = None,
                kinds: Sequence[str] | None = None) -> np.ndarray:
        p = self.profile
        return roofline_seconds(flops, nbytes, self.rate(flops), p.memory_bandwidth, p.overhead_s)
