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

Calibration data are chains of every layer's forward and backward, on each worker
alone, at the micro-batch sizes to be validated and at sizes around them that are
never validated (`calibration_batches`), and optimizer updates of single layers and
of the whole model. Nothing is fitted to the runs it is judged on: those run the
whole step graph (many layers, transfers, a schedule), the calibration one layer at
a time; and the interpolated tier (cost/kinds.py) predicts without the validated sizes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

import numpy as np
from scipy.optimize import nnls

from ..cost.calibrated import CalibratedCost, Profile
from ..cost.kinds import Endpoints, KernelCalibration, KindFit, Point
from ..execute import execute
from ..execute.model_kernels import ModelKernels, SpinKernels, Work
from ..graph import GraphBuilder, TaskGraph
from ..models import Model
from ..parallel.config import ParallelConfig
from ..parallel.step import layer_costs
from ..parallel.tensor import LayerRole
from ..trace import Trace
from .bench import fit_latency_bandwidth
from .quiet import QuietGate


def neighbour_batches(validated: Sequence[int]) -> tuple[int, ...]:
    """Micro-batch sizes around the validated ones: 3/8 and 3/2 of each (3 x the
    largest too, if that leaves fewer than two), never a validated size itself."""
    skip = set(validated)
    out = {max(1, round(m * f)) for m in validated for f in (0.375, 1.5)} - skip
    if len(out) < 2:
        out |= {3 * max(validated)} - skip
    return tuple(sorted(out))


def calibration_batches(validated: Sequence[int]) -> tuple[int, ...]:
    """Micro-batch sizes to calibrate on: the validated ones (for the profiled tier)
    and their neighbours (for the interpolated tier, which never sees the former)."""
    return tuple(sorted({*validated, *neighbour_batches(validated)}))


def measure(profile: Profile, model: Model, batches: Sequence[int], repeats: int,
            cfg: ParallelConfig, progress: bool = False, gate: QuietGate | None = None,
            workers: int = 1) -> list[Point]:
    """Time `model`'s kernels: `repeats` forward and backward passes at each micro-batch
    size, then optimizer updates of every layer alone and of all; the same on each of
    `workers` workers at once, so each core is timed while the others are as busy as
    in a run on that many workers (they share caches, memory bandwidth, power)."""
    points: list[Point] = []
    for b in batches:
        c = ParallelConfig(batch=b, dtype_bytes=cfg.dtype_bytes, optimizer=cfg.optimizer,
                           recompute=cfg.recompute)
        graph, work = calibration_graph(model, c, repeats, workers)
        kernels = ModelKernels(model, work, b, c.dtype_bytes, c.optimizer,
                               c.recompute == "full")
        trace = _run(partial(execute, graph, graph.pin, workers, kernels=kernels), gate)
        points += _points(profile, model.name, b, graph, trace, kernels.keys(graph.size))
        if progress:
            print(f"  timed {model.name} kernels at micro-batch {b}", file=sys.stderr, flush=True)
    return points


LINK_SIZES = (8, 16_000, 128_000, 1_000_000, 4_000_000)
COPY_SIZES = (16_000, 128_000, 512_000, 1_000_000, 2_000_000, 4_000_000)


def measure_link(repeats: int = 7, idle_s: float = 1e-3, gate: QuietGate | None = None,
                 sizes: Sequence[int] = LINK_SIZES) -> tuple[float, float]:
    """(latency, bandwidth) of a worker-to-worker transfer whose receiver has been
    waiting `idle_s` for it, as in a pipeline or an all-reduce: the sender computes
    (spins) that long first. `leptonsim calibrate` measures a ping-pong of no-op tasks
    instead, where neither worker ever goes idle; waking an idle worker adds tens of
    microseconds here. Fitted on relative error, as calibrate does."""
    g, pairs = _idle_graph(repeats, idle_s, sizes)
    trace = _run(partial(execute, g, g.pin, 2, kernels=SpinKernels()), gate)
    took = {(s, d): e - a for s, d, a, e in zip(trace.xfer_src_task.tolist(),
                                                trace.xfer_dst_task.tolist(),
                                                trace.xfer_start.tolist(),
                                                trace.xfer_end.tolist(), strict=True)}
    medians = [float(np.median([took[(s, d)] for s, d, m in pairs if m == n])) for n in sizes]
    return fit_latency_bandwidth(list(sizes), medians)


def _idle_graph(repeats: int, idle_s: float, sizes: Sequence[int]
                ) -> tuple[TaskGraph, list[tuple[int, int, int]]]:
    """A chain alternating between two workers: a spin of idle_s, then a no-op on the
    other worker fed n bytes by it; the (spin, no-op, n) pairs after each size's first."""
    b = GraphBuilder()
    prev = b.task("start", comm=True, duration_s=0.0, pin=0, kind="noop")
    pairs: list[tuple[int, int, int]] = []
    for n in sizes:
        for r in range(repeats + 1):  # the first of each size warms the lane up
            sender = b.task(f"send{n}.{r}", duration_s=idle_s, pin=r % 2, kind="spin")
            b.edge(prev, sender)
            prev = b.task(f"recv{n}.{r}", comm=True, duration_s=0.0, pin=1 - r % 2, kind="noop")
            b.edge(sender, prev, float(n))
            if r:
                pairs.append((sender, prev, n))
    return b.build(), pairs


def measure_endpoints(gate: QuietGate | None = None, sizes: Sequence[int] = COPY_SIZES,
                      messages: int = 16, repeats: int = 7, runs: int = 3) -> Endpoints:
    """What a transfer costs each worker's core, and the latency left between them.

    Copies (`copy_graph`): two workers each run a chain of spins, long enough that no
    spin ever waits for data; every other spin on w0 sends n bytes to a spin three
    later on w1. The time w0 loses between its tasks, beyond the gap of a segment
    without messages, is the send cost of n bytes; what w1 loses is the receive cost
    (copy out, acknowledge). Latency: in the idle-receiver chain of measure_link,
    the time from a spin's end to its consumer's start, less the gap, send and
    receive costs (the part the simulated link still carries: the message's flight
    and waking the receiver). Each is the median of `runs` runs: a slow phase of a
    core inside one run (which the gate cannot see) moves one run, not the median.
    Sizes are synthetic; no validated step is run."""
    g, size, sends = copy_graph(sizes, messages)
    got = [copy_costs(g, _run(partial(execute, g, g.pin, 2, kernels=SpinKernels()), gate),
                      size, sends, sizes) for _ in range(runs)]
    gap = float(np.median([c[0] for c in got]))
    send, recv = (np.median([c[i] for c in got], axis=0).tolist() for i in (1, 2))
    ends = Endpoints(*fit_latency_bandwidth(sizes, send), *fit_latency_bandwidth(sizes, recv), 0.0)
    g, pairs = _idle_graph(repeats, 1e-3, sizes)
    left = []
    for _ in range(runs):
        start, end = _task_times(g, _run(partial(execute, g, g.pin, 2, kernels=SpinKernels()), gate))
        left += [float(np.median([start[d] - end[s] for s, d, m in pairs if m == n]))
                 - gap - float(ends.send(n)) - float(ends.recv(n)) for n in sizes]
    return replace(ends, latency_s=max(0.0, float(np.median(left))))


def copy_graph(sizes: Sequence[int], messages: int) -> tuple[TaskGraph, np.ndarray, np.ndarray]:
    """Two chains of spins, one per worker, a segment per size after one without
    messages; per task: its segment's size (-1: not a spin), and whether it sends."""
    b = GraphBuilder()
    last = [b.task(f"w{w}:start", comm=True, duration_s=0.0, pin=w, kind="noop") for w in (0, 1)]
    chains: list[list[int]] = [[], []]
    seg: list[int] = []
    for n in (0, *sizes):
        spin = 2e-4 + n / 1e9  # far longer than a copy of n bytes: no spin waits for data
        for i in range(2 * messages + 3):
            for w in (0, 1):
                t = b.task(f"w{w}:{n}.{i}", duration_s=spin, pin=w, kind="spin")
                b.edge(last[w], t)
                last[w] = t
                chains[w].append(t)
            seg.append(n)
    sends = np.zeros(len(seg), bool)
    for k in range(0, len(seg) - 3):
        if seg[k] and seg[k] == seg[k + 3] and k % 2 == 0:
            b.edge(chains[0][k], chains[1][k + 3], float(seg[k]))
            sends[k] = True
    g = b.build()
    size, sending = np.full(g.size, -1), np.zeros(g.size, bool)
    for w in (0, 1):
        size[chains[w]] = seg
    sending[chains[0]] = sends
    return g, size, sending


def copy_costs(g: TaskGraph, trace: Trace, size: np.ndarray, sends: np.ndarray,
               sizes: Sequence[int]) -> tuple[float, list[float], list[float]]:
    """(gap without messages, send seconds per size, receive seconds per size)."""
    start, end = _task_times(g, trace)
    lost: dict[tuple[int, int], float] = {}
    count: dict[tuple[int, int], int] = {}
    for w in (0, 1):
        tasks = np.flatnonzero((g.pin == w) & (size >= 0))
        gaps = start[tasks[1:]] - end[tasks[:-1]]
        for n in (0, *sizes):
            within = (size[tasks[1:]] == n) & (size[tasks[:-1]] == n)
            lost[(w, n)], count[(w, n)] = float(gaps[within].sum()), int(within.sum())
    base = {w: lost[(w, 0)] / count[(w, 0)] for w in (0, 1)}
    msgs = {n: int((sends & (size == n)).sum()) for n in sizes}
    per = {(w, n): (lost[(w, n)] - base[w] * count[(w, n)]) / msgs[n] for w in (0, 1) for n in sizes}
    return (float(np.mean(list(base.values()))), [max(per[(0, n)], 1e-7) for n in sizes],
            [max(per[(1, n)], 1e-7) for n in sizes])


def _task_times(g: TaskGraph, trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    start, end = np.full(g.size, np.nan), np.full(g.size, np.nan)
    start[trace.task], end[trace.task] = trace.task_start, trace.task_end
    return start, end


def _run(fn: Callable[[], Trace], gate: QuietGate | None) -> Trace:
    return gate.run(fn)[0] if gate else fn()


def calibration_graph(model: Model, cfg: ParallelConfig, repeats: int,
                      copies: int = 1) -> tuple[TaskGraph, Work]:
    """On each of `copies` units, a chain of `repeats` passes (`_chain`): every
    layer's forward, backward, and the optimizer updates. Task kinds, FLOPs and
    bytes are those build_step gives the same layers; names are
    "w<unit>:<phase>.<layer>.k<repeat>"."""
    b, work = GraphBuilder(), {}  # type: tuple[GraphBuilder, Work]
    for unit in range(copies):
        first = b.task(f"w{unit}:start", comm=True, duration_s=0.0, pin=unit, kind="start")
        prev = first
        for name, flops, nbytes, kind, what in _chain(model, cfg, repeats):
            t = b.task(f"w{unit}:{name}", flops=flops, nbytes=nbytes, pin=unit, kind=kind)
            work[t] = what
            b.edge(prev, t)
            prev = t
    return b.build(), work


Link = tuple[str, float, float, str, tuple[str, tuple[int, ...]]]  # name, flops, bytes, kind, work


def _chain(model: Model, cfg: ParallelConfig, repeats: int) -> list[Link]:
    """`repeats` passes of a training step one layer at a time: every layer's forward,
    every layer's backward, then the optimizer update of the whole model (right after
    a backward pass, as in a step) and of each layer with parameters alone."""
    n = len(model.layers)
    costs = layer_costs(model, cfg, [LayerRole(False, "", "")] * n)
    phase = "update_adam" if cfg.optimizer == "adam" else "update_sgd"
    groups = [("all", tuple(range(n)))] + [(model.layers[i].name, (i,)) for i in range(n)
                                           if model.layers[i].params]
    updates = []
    for name, layers in groups:
        total = [model.layers[i].cost(cfg.microbatch_size, phase, cfg.dtype_bytes)  # type: ignore[arg-type]
                 for i in layers]
        updates.append((name, sum(c.flops for c in total), sum(c.bytes for c in total), layers))
    out: list[Link] = []
    for r in range(repeats):
        for i, layer in enumerate(model.layers):
            out.append((f"F.{layer.name}.k{r}", costs[i, 0], costs[i, 1], layer.kind, ("F", (i,))))
        for i, layer in reversed(list(enumerate(model.layers))):
            extra = costs[i, :2] if cfg.recompute == "full" else (0.0, 0.0)
            out.append((f"B.{layer.name}.k{r}", costs[i, 2] + extra[0], costs[i, 3] + extra[1],
                        f"{layer.kind}.bwd", ("B", (i,))))
        out += [(f"optimizer.{name}.k{r}", flops, nbytes, "optimizer", ("update", layers))
                for name, flops, nbytes, layers in updates]
    return out


def _points(profile: Profile, model: str, batch: int, g: TaskGraph, trace: Trace,
            keys: list[str | None]) -> list[Point]:
    """One point per layer and phase: the median over its repeats and copies."""
    took = np.zeros(g.size)
    took[trace.task] = trace.task_end - trace.task_start
    gap = np.full(g.size, np.nan)
    order = np.lexsort((trace.task_start, trace.task_unit))  # by unit, then in time
    same = trace.task_unit[order][1:] == trace.task_unit[order][:-1]
    gap[trace.task[order][:-1][same]] = (trace.task_start[order][1:]
                                         - trace.task_end[order][:-1])[same]
    compute, memory = CalibratedCost(profile).terms(g.flops, g.nbytes)
    groups: dict[tuple[str, str], list[int]] = {}
    for t, name in enumerate(g.names):
        if keys[t]:
            layer = name.split(":", 1)[-1].rsplit(".k", 1)[0]
            groups.setdefault((layer, keys[t] or ""), []).append(t)
    return [Point(model, batch, name, g.kinds[ts[0]] if g.kinds else "task", key,
                  float(compute[ts[0]]), float(memory[ts[0]]), float(np.median(took[ts])),
                  float(np.nanmedian(gap[ts])) if np.isfinite(gap[ts]).any() else float("nan"))
            for (name, key), ts in groups.items()]


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
    return KernelCalibration(fits, tuple(points), default_gap, curves=curves(points))


def curves(points: Sequence[Point]) -> dict[str, tuple[tuple[float, float], ...]]:
    """Per work key, the median measured time at each calibrated micro-batch size."""
    at: dict[str, dict[int, list[float]]] = {}
    for p in points:
        if p.key:
            at.setdefault(p.key, {}).setdefault(p.batch, []).append(p.measured_s)
    return {key: tuple((float(b), float(np.median(ts))) for b, ts in sorted(by.items()))
            for key, by in at.items()}


def fit_nonnegative(features: np.ndarray, t: np.ndarray) -> tuple[float, ...]:
    """Coefficients >= 0 minimising sum ((features @ coef) / t - 1)^2."""
    keep = t > 0
    a, t = features[keep], t[keep]
    if not t.size:
        return (0.0,) * features.shape[1]
    coef, _ = nnls(a / t[:, None], np.ones_like(t))
    return tuple(float(c) for c in coef)
