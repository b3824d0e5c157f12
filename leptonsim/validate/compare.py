"""Simulate once, execute R times, compare: the numbers `leptonsim validate` reports.

Both runs use the same graph, placement and priority, on the same number of units:
the simulation on `profile_cluster` (cores of this machine as the profile measured
them), the execution on as many worker processes. Measured traces are shifted so
that time 0 is the first task's start, as in the simulation (the coordinator's
"go" message reaches the workers a few tens of microseconds after its t0).

Errors are relative, (predicted - measured) / measured: positive = the simulator
predicted too slow. Per task, the prediction is the task's kernel time (the
simulated bar minus the calibrated gap after it) and the measurement is the median
over repeats of the timed kernel call; tasks predicted to compute nothing
(collective steps, communication stand-ins) are left out of the per-task errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from ..cost.kinds import Endpoints, KindCost, pinned
from ..execute import KernelSource, execute
from ..formulas import relative_error
from ..graph import TaskGraph
from ..hardware import Cluster
from ..measure.quiet import QuietGate, Seen, foreign_fraction
from ..sim import Plan
from ..sim.engine import run_plan
from ..trace import Trace

WARMUP = 1
"""Untimed steps before each measured one: the prediction is for a step in the middle
of training, with memory already mapped for every tensor a step keeps alive (the
kernels' own warm-up runs each kernel alone, which maps less)."""


@dataclass(frozen=True)
class Comparison:
    predicted: Trace                 # the simulation
    measured: tuple[Trace, ...]      # every repeat, time 0 = first task start
    predicted_task_s: np.ndarray     # per task: predicted kernel seconds
    measured_task_s: np.ndarray      # per task: median measured seconds over repeats
    compute: np.ndarray              # per task: True where per-task errors apply
    seen: tuple[Seen, ...] = ()      # per kept repeat: how disturbed the machine was
    copies: Endpoints | None = None  # endpoint copies the simulated slots hold, if any

    @property
    def predicted_makespan_s(self) -> float:
        return self.predicted.makespan_s

    @property
    def measured_makespans_s(self) -> list[float]:
        return [t.makespan_s for t in self.measured]

    @property
    def measured_makespan_s(self) -> float:
        return float(np.median(self.measured_makespans_s))

    @property
    def error(self) -> float:
        """End to end: (predicted - median measured) / median measured makespan."""
        return relative_error(self.predicted_makespan_s, self.measured_makespan_s)

    @property
    def median_trace(self) -> Trace:
        """The repeat whose makespan is the median (the lower middle for even R)."""
        order = np.argsort(self.measured_makespans_s, kind="stable")
        return self.measured[int(order[(len(order) - 1) // 2])]

    def transfer_times(self) -> tuple[np.ndarray, np.ndarray]:
        """(predicted, median measured) seconds of every transfer, matched by edge. A
        measured transfer runs from the sender's copy-in to the receiver's copy-out;
        where the simulated slots hold those copies, the prediction adds them back."""
        sim = _edge_durations(self.predicted)
        runs = [_edge_durations(t) for t in self.measured]
        common = sorted(set(sim).intersection(*runs))
        predicted = np.array([sim[e] for e in common])
        if self.copies is not None and common:
            p = self.predicted
            pairs = zip(p.xfer_src_task.tolist(), p.xfer_dst_task.tolist(), strict=True)
            nbytes = dict(zip(pairs, p.xfer_bytes.tolist(), strict=True))
            n = np.array([nbytes[e] for e in common])
            predicted = predicted + self.copies.send(n) + self.copies.recv(n)
        return predicted, np.array([np.median([r[e] for r in runs]) for e in common])

    def task_errors(self) -> np.ndarray:
        """Per compute task, (predicted - measured) / measured (NaN elsewhere)."""
        err = np.full(len(self.compute), np.nan)
        m = self.compute & (self.measured_task_s > 0)
        err[m] = self.predicted_task_s[m] / self.measured_task_s[m] - 1.0
        return err

    def errors_by_kind(self, kinds: list[str]) -> dict[str, dict[str, float]]:
        """Per task kind: tasks, median |error|, median signed error, measured seconds."""
        err = self.task_errors()
        out: dict[str, dict[str, float]] = {}
        for kind in sorted(set(kinds)):
            idx = np.array([i for i, k in enumerate(kinds) if k == kind and np.isfinite(err[i])])
            if idx.size:
                out[kind] = {"tasks": int(idx.size),
                             "median_abs_error": float(np.median(np.abs(err[idx]))),
                             "median_error": float(np.median(err[idx])),
                             "measured_s": float(self.measured_task_s[idx].sum())}
        return out


@dataclass(frozen=True)
class Case:
    """One thing to validate: a placed plan, its cost model and the kernels to run."""

    graph: TaskGraph
    cluster: Cluster
    plan: Plan
    cost: KindCost
    kernels: KernelSource

    @property
    def placement(self) -> np.ndarray:
        if self.plan.unit is None:
            raise ValueError("validation needs a placed plan (static or heft), not greedy")
        return self.plan.unit


def compare(graph: TaskGraph, cluster: Cluster, plan: Plan, cost: KindCost,
            kernels: KernelSource, repeats: int, gate: QuietGate | None = None) -> Comparison:
    """Simulate `plan` with `cost`, execute it `repeats` times with `kernels`, each run
    through `gate` (waiting for a quiet machine, redoing disturbed runs) if given."""
    return compare_all([Case(graph, cluster, plan, cost, kernels)], repeats, gate)[0]


def compare_all(cases: list[Case], repeats: int, gate: QuietGate | None = None,
                progress: Callable[[int], None] | None = None) -> list[Comparison]:
    """`compare` for several cases, executed in rounds: every case once per round,
    `repeats` rounds. The machine's speed drifts over minutes, so a slow phase then
    hits one repeat of many cases, which their medians discard, rather than every
    repeat of one case. `progress(round)` is called after each round."""
    for case in cases:
        _ = case.placement  # every plan placed, before anything runs
    runs: list[list[tuple[Trace, Seen]]] = [[] for _ in cases]
    for r in range(max(1, repeats)):
        for case, done in zip(cases, runs, strict=True):
            done.append(_once(case, gate))
        if progress:
            progress(r + 1)
    return [_comparison(case, done) for case, done in zip(cases, runs, strict=True)]


def _once(case: Case, gate: QuietGate | None) -> tuple[Trace, Seen]:
    once = partial(_measure, case.graph, case.placement, case.plan.priority, case.cluster,
                   case.kernels)
    if gate is not None:
        return gate.run(once)
    trace, share = foreign_fraction(once)
    return trace, Seen(share, float("nan"), 0)


def _comparison(case: Case, done: list[tuple[Trace, Seen]]) -> Comparison:
    graph, cost = case.graph, case.cost
    measured = tuple(trace for trace, _ in done)
    durations = np.stack([_durations(graph, t) for t in measured])
    kernel = cost.kernel_seconds(graph)
    compute = kernel > 0  # collective steps and communication stand-ins compute nothing
    if graph.comm is not None:
        compute &= ~np.asarray(graph.comm, bool)
    copies = cost.calibration.endpoints if pinned(graph) else None
    return Comparison(predict(graph, case.cluster, case.plan, cost), measured, kernel,
                      np.median(durations, axis=0), compute, tuple(saw for _, saw in done), copies)


def _measure(graph: TaskGraph, placement: np.ndarray, priority: np.ndarray, cluster: Cluster,
             kernels: KernelSource) -> Trace:
    return shift_to_first_start(execute(graph, placement, cluster.size, cluster=cluster,
                                        priority=priority, kernels=kernels, warmup=WARMUP))


def predict(graph: TaskGraph, cluster: Cluster, plan: Plan, cost: KindCost) -> Trace:
    """The simulated run of `plan` under `cost`."""
    return run_plan(graph, cluster, plan, cost.task_times(graph, cluster))


def _edge_durations(trace: Trace) -> dict[tuple[int, int], float]:
    """Per (src, dst) task pair: first hop start to last hop end."""
    span: dict[tuple[int, int], list[float]] = {}
    for s, d, a, b in zip(trace.xfer_src_task.tolist(), trace.xfer_dst_task.tolist(),
                          trace.xfer_start.tolist(), trace.xfer_end.tolist(), strict=True):
        lo, hi = span.get((s, d), [a, b])
        span[(s, d)] = [min(lo, a), max(hi, b)]
    return {e: hi - lo for e, (lo, hi) in span.items()}


def _durations(graph: TaskGraph, trace: Trace) -> np.ndarray:
    took = np.zeros(graph.size)
    took[trace.task] = trace.task_end - trace.task_start
    return took


def shift_to_first_start(trace: Trace) -> Trace:
    t0 = float(trace.task_start.min()) if len(trace.task) else 0.0
    return replace(trace, task_start=trace.task_start - t0, task_end=trace.task_end - t0,
                   xfer_start=trace.xfer_start - t0, xfer_end=trace.xfer_end - t0)
