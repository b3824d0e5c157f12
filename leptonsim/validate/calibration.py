"""Kernel calibration: what the machine profile's GEMM roofline misses for real kernels.

`leptonsim calibrate` measures this machine with synthetic kernels: a square GEMM
ladder, a large copy, no-op tasks, transfers. Real layer kernels are not square GEMMs
at peak: a convolution copies its input into columns first (im2col), pooling and
activations are NumPy element-wise passes with allocation, an LSTM is a Python loop
of small GEMMs. So each *op kind and phase* (the step graph's task kind, e.g.
"conv2d", "conv2d.bwd", "optimizer") gets an affine correction, fitted on the real
kernels at calibration micro-batch sizes:

    kernel time = a_kind + b_kind * t_roofline

with t_roofline the profile's calibrated roofline time of the task's FLOPs and bytes
(without the per-task overhead), fitted by least squares on relative error. After
each task the executor needs a little time (dispatch, freeing the task's output)
before the next starts; its median per kind is measured on the same runs and becomes
part of the simulated task, `gap_kind`.

Calibration data are single-worker chains of every layer's forward and backward at
micro-batch sizes chosen *different* from those validated (`calibration_batches`),
and optimizer updates of single layers and of the whole model; nothing is fitted to
the runs it is judged on.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from scipy.optimize import nnls

from ..calibrate import Profile
from ..execute import execute
from ..graph import GraphBuilder, TaskGraph
from ..models import Model
from ..parallel.config import ParallelConfig
from ..parallel.step import layer_costs
from ..parallel.tensor import LayerRole
from ..trace import Trace
from .cost import KernelCalibration, KindFit, Point, roofline_terms
from .kernels import ModelKernels, Work


def calibration_batches(validated: Sequence[int]) -> tuple[int, ...]:
    """Micro-batch sizes to calibrate on: 3/8 and 3/2 of each validated size (3 x the
    largest too, if that leaves fewer than two), never a validated size itself."""
    skip = set(validated)
    out = {max(1, round(m * f)) for m in validated for f in (0.375, 1.5)} - skip
    if len(out) < 2:
        out |= {3 * max(validated)} - skip
    return tuple(sorted(out))


def measure(profile: Profile, model: Model, batches: Sequence[int], repeats: int,
            cfg: ParallelConfig, progress: bool = False) -> list[Point]:
    """Time `model`'s kernels on one worker: `repeats` forward and backward passes at
    each micro-batch size, then optimizer updates of every layer alone and of all."""
    points: list[Point] = []
    for b in batches:
        c = ParallelConfig(batch=b, dtype_bytes=cfg.dtype_bytes, optimizer=cfg.optimizer,
                           recompute=cfg.recompute)
        graph, work = calibration_graph(model, c, repeats)
        kernels = ModelKernels(model, work, b, c.dtype_bytes, c.optimizer, c.recompute)
        trace = execute(graph, graph.pin, 1, kernels=kernels)
        points += _points(profile, model.name, b, graph, trace)
        if progress:
            print(f"  timed {model.name} kernels at micro-batch {b}", file=sys.stderr, flush=True)
    return points


def calibration_graph(model: Model, cfg: ParallelConfig, repeats: int) -> tuple[TaskGraph, Work]:
    """A chain on unit 0 of every layer's forward then backward, `repeats` times, then
    an optimizer update per layer with parameters and one of the whole model. Task
    kinds, FLOPs and bytes are those build_step gives the same layers."""
    n = len(model.layers)
    costs = layer_costs(model, cfg, [LayerRole(False, "", "")] * n)
    b, work = GraphBuilder(), {}  # type: tuple[GraphBuilder, Work]
    for r in range(repeats):
        for i, layer in enumerate(model.layers):
            work[b.task(f"F.{layer.name}.k{r}", flops=costs[i, 0], nbytes=costs[i, 1], pin=0,
                        kind=layer.kind)] = ("F", (i,))
        for i, layer in reversed(list(enumerate(model.layers))):
            flops, nbytes = costs[i, 2], costs[i, 3]
            if cfg.recompute:
                flops, nbytes = flops + costs[i, 0], nbytes + costs[i, 1]
            work[b.task(f"B.{layer.name}.k{r}", flops=flops, nbytes=nbytes, pin=0,
                        kind=f"{layer.kind}.bwd")] = ("B", (i,))
    groups = [(model.layers[i].name, (i,)) for i in range(n) if model.layers[i].params]
    phase = "update_adam" if cfg.optimizer == "adam" else "update_sgd"
    for name, layers in [*groups, ("all", tuple(range(n)))]:
        total = [model.layers[i].cost(cfg.microbatch_size, phase, cfg.dtype_bytes)  # type: ignore[arg-type]
                 for i in layers]
        work[b.task(f"optimizer.{name}", flops=sum(c.flops for c in total),
                    nbytes=sum(c.bytes for c in total), pin=0, kind="optimizer")] = (
            "update", layers)
    for t in range(1, len(work)):
        b.edge(t - 1, t)
    return b.build(), work


def _points(profile: Profile, model: str, batch: int, g: TaskGraph, trace: Trace) -> list[Point]:
    """One point per layer and phase: the median over its repeats."""
    took = np.zeros(g.size)
    took[trace.task] = trace.task_end - trace.task_start
    gap = np.full(g.size, np.nan)
    order = np.argsort(trace.task_start, kind="stable")
    gap[trace.task[order][:-1]] = trace.task_start[order][1:] - trace.task_end[order][:-1]
    compute, memory = roofline_terms(profile, g)
    groups: dict[tuple[str, str], list[int]] = {}
    for t, name in enumerate(g.names):
        groups.setdefault((g.kinds[t] if g.kinds else "task", name.split(".k")[0]), []).append(t)
    return [Point(model, batch, name, kind, float(compute[ts[0]]), float(memory[ts[0]]),
                  float(np.median(took[ts])),
                  float(np.nanmedian(gap[ts])) if np.isfinite(gap[ts]).any() else float("nan"))
            for (kind, name), ts in groups.items()]


def fit(points: Sequence[Point]) -> KernelCalibration:
    """A linear model per kind, and the kind's median gap (the overall median as fallback)."""
    kinds: dict[str, list[Point]] = {}
    for p in points:
        kinds.setdefault(p.kind, []).append(p)
    gaps = np.array([p.gap_s for p in points if np.isfinite(p.gap_s)])
    default_gap = float(np.median(gaps)) if gaps.size else 0.0
    fits = {}
    for kind, ps in sorted(kinds.items()):
        features = np.array([(1.0, p.compute_s, p.memory_s) for p in ps])
        a, b, c = fit_nonnegative(features, np.array([p.measured_s for p in ps]))
        g = np.array([p.gap_s for p in ps if np.isfinite(p.gap_s)])
        fits[kind] = KindFit(a, b, c, float(np.median(g)) if g.size else default_gap, len(ps))
    return KernelCalibration(fits, tuple(points), default_gap)


def fit_nonnegative(features: np.ndarray, t: np.ndarray) -> tuple[float, ...]:
    """Coefficients >= 0 minimising sum ((features @ coef) / t - 1)^2."""
    keep = t > 0
    a, t = features[keep], t[keep]
    if not t.size:
        return (0.0,) * features.shape[1]
    coef, _ = nnls(a / t[:, None], np.ones_like(t))
    return tuple(float(c) for c in coef)
