"""Failures and checkpoints over a training run: the inputs and the closed forms.

The job stops at any component's failure (synchronous training: "a single GPU failure
may require a restart of the entire job", Llama 3 §3.3.4), so with independent
components failing as Poisson processes the job's interruptions are a Poisson process
of rate 1 / M = units / MTBF_unit + nodes / MTBF_node + links / MTBF_link + 1 / MTBF_job
(the superposition of many sparse renewal processes tends to Poisson: Cinlar 1972,
the Palm-Khintchine theorem).

A run computes in intervals of tau seconds of work, each followed by a blocking
checkpoint write of delta = checkpoint bytes / storage bandwidth; a failure loses the
work since the last checkpoint and costs a restart R (reschedule, reload the checkpoint),
which a failure may interrupt too. Young's first-order optimum is tau = sqrt(2 delta M)
(Young, CACM 1974); Daly's higher-order one (Daly, FGCS 2006, eq. 37) is
tau = sqrt(2 delta M) [1 + (1/3) sqrt(delta / 2M) + (1/9) (delta / 2M)] - delta for
delta < 2M, and M otherwise. For this model the expected wall time of S intervals is
Daly's complete cost, S M e^{R/M} (e^{(tau + delta)/M} - 1) (FGCS 2006, eq. 13).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["FailureModel", "daly_interval", "expected_wall_s", "young_interval"]

HOUR = 3600.0
ADAM_CHECKPOINT_BYTES = 14.0
"""Bytes per parameter a mixed-precision Adam checkpoint holds: 16-bit weights (2) and
the fp32 master weights, momentum and variance (12); ZeRO (Rajbhandari et al., SC'20)
counts 16 with the 16-bit gradients, which a checkpoint does not keep."""


@dataclass(frozen=True)
class FailureModel:
    """A run's failure process and checkpoint costs, all in SI units (seconds, bytes)."""

    units: int
    nodes: int
    links: int
    unit_mtbf_s: float
    node_mtbf_s: float = math.inf
    link_mtbf_s: float = math.inf
    job_mtbf_s: float = math.inf
    checkpoint_bytes: float = 0.0
    storage_bandwidth: float = math.inf
    restart_s: float = 0.0
    step_s: float = 0.0       # one step: no interval is shorter

    def __post_init__(self) -> None:
        if self.step_s < 0 or self.restart_s < 0:
            raise ValueError("step_s and restart_s must be >= 0")
        for name in ("unit_mtbf_s", "node_mtbf_s", "link_mtbf_s", "job_mtbf_s",
                     "storage_bandwidth"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def rate(self) -> float:
        """Interruptions per second: the sum of every component's failure rate."""
        return (self.units / self.unit_mtbf_s + self.nodes / self.node_mtbf_s
                + self.links / self.link_mtbf_s + 1 / self.job_mtbf_s)

    @property
    def mtbf_s(self) -> float:
        """The job's mean time between interruptions, M."""
        return 1 / self.rate

    @property
    def checkpoint_s(self) -> float:
        """delta: one checkpoint's blocking write."""
        return self.checkpoint_bytes / self.storage_bandwidth


def young_interval(delta: float, mtbf: float) -> float:
    """Young (1974): tau = sqrt(2 delta M)."""
    return math.sqrt(2 * delta * mtbf)


def daly_interval(delta: float, mtbf: float) -> float:
    """Daly (2006), eq. 37: the perturbation solution to second order; M for delta >= 2M."""
    if delta >= 2 * mtbf:
        return mtbf
    x = math.sqrt(delta / (2 * mtbf))
    return math.sqrt(2 * delta * mtbf) * (1 + x / 3 + x * x / 9) - delta


def expected_wall_s(intervals: int, tau: float, delta: float, restart: float,
                    mtbf: float) -> float:
    """Daly's complete cost: the expected wall time of `intervals` intervals of tau work
    each checkpointed, under Poisson failures of mean M and interruptible restarts R."""
    return intervals * mtbf * math.exp(restart / mtbf) * math.expm1((tau + delta) / mtbf)
