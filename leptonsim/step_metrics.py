"""Where a step's time goes, and how well it uses the hardware (docs/model.md, "Step
metrics"). Computed once per run from the scenario and its simulated trace, and read
by the report, summary.json, the study's CSV and benchmarks/published.py alike.

- `breakdown`: the mean unit's step as compute + exposed communication + pipeline
  bubble + other, which add up to the makespan (any scenario).
- `step_metrics`: samples/s, tokens/s, MFU, HFU, the most exposed communication of any
  unit and the bubble, for a DNN step (Scenario.step).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .graph import TaskGraph
from .hardware import Cluster
from .metrics import covered
from .models import Layer, Model
from .ops.base import Phase
from .parallel.step import StepGraph
from .trace import Trace

SEQUENCE_KINDS = ("attention", "lstm", "gru")  # ops whose input's first axis is the sequence
PHASES: dict[bool, tuple[Phase, ...]] = {True: ("forward", "backward_data", "backward_weights"),
                                         False: ("forward",)}


@dataclass(frozen=True)
class Breakdown:
    """The mean unit's step, in seconds; the four add up to the makespan."""

    compute_s: float       # running its own compute tasks
    exposed_comm_s: float  # moving data (or in a collapsed collective) while computing nothing
    bubble_s: float        # idle inside the pipeline's window (bubble_s / units)
    other_s: float         # the rest: waiting outside that window, the input pipeline


@dataclass(frozen=True)
class StepMetrics:
    samples_per_s: float
    tokens_per_s: float | None  # None: not a sequence model
    model_flops: float          # forward + backward of the model's algorithm, no recompute
    hardware_flops: float       # every FLOP the units execute in the step
    peak_flop_rate: float       # sum over the units of their peak at the run's precision
    mfu: float
    hfu: float
    exposed_comm_max_s: float   # the unit whose communication is the most exposed
    exposed_comm_unit: str
    bubble_s: float             # unit-seconds, summed over the units (bubble_s)


def _unit_of(trace: Trace, tasks: int) -> np.ndarray:
    unit = np.zeros(tasks, np.int64)
    unit[trace.task] = trace.task_unit
    return unit


def _activity(trace: Trace, unit_of: np.ndarray, tasks: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit, start, end) of the given task rows of the trace and of every transfer,
    once for its sender's unit and once for its receiver's: what keeps a unit active."""
    return (np.concatenate([trace.task_unit[tasks], unit_of[trace.xfer_src_task],
                            unit_of[trace.xfer_dst_task]]),
            np.concatenate([trace.task_start[tasks], trace.xfer_start, trace.xfer_start]),
            np.concatenate([trace.task_end[tasks], trace.xfer_end, trace.xfer_end]))


def _weights(step: StepGraph | None) -> dict[int, int]:
    """Units each simulated unit stands for (a symmetric tensor-parallel group's size)."""
    return {} if step is None else {u: len(m) for u, m in step.groups.items()}


def unit_activity(trace: Trace, comm: np.ndarray | None, tasks: int
                  ) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Per unit that ran tasks: the seconds it computed (the union of its
    non-communication tasks) and the seconds it communicated while computing nothing
    (the union of its tasks, collapsed collectives included, and of the transfers it
    sends or receives, less its compute). Vectorised: O(rows log rows), any unit count."""
    unit_of = _unit_of(trace, tasks)
    is_comm = (np.zeros(tasks, bool) if comm is None else np.asarray(comm, bool))[trace.task]
    units = np.unique(trace.task_unit)
    n = int(units.max()) + 1 if len(units) else 0
    every = np.arange(len(trace.task))
    busy = covered(trace.task_unit[~is_comm], trace.task_start[~is_comm],
                   trace.task_end[~is_comm], n)[units]
    both = covered(*_activity(trace, unit_of, every), n)[units]
    return units.tolist(), busy, both - busy


def bubble_s(step: StepGraph | None, trace: Trace) -> float:
    """The pipeline bubble of a DNN step, in unit-seconds: summed over the units that run
    pipeline ops, the time each spends within the pipeline's window (from the first
    forward's start to the last backward's end, anywhere; the last forward's end in
    inference) neither running a task of its own nor sending or receiving a transfer.
    The window holds the fill and the drain of GPipe and 1F1B (Huang et al. 2019;
    Narayanan et al. 2021, section 2.2): with uniform stages and free transfers it is
    gpipe_bubble_fraction (p - 1)/(m + p - 1) of the window, less the optimizer steps
    that run in the drain. 0 without a pipeline (pp = 1) or a DNN step."""
    if step is None or step.config.pp == 1 or not step.work:
        return 0.0
    pipeline = np.zeros(step.graph.size, bool)
    pipeline[[t for t, (what, _) in step.work.items() if what in ("F", "B")]] = True
    on = pipeline[trace.task]
    start, end = float(trace.task_start[on].min()), float(trace.task_end[on].max())
    units = np.unique(trace.task_unit[on])
    unit, lo, hi = _activity(trace, _unit_of(trace, step.graph.size), np.arange(len(trace.task)))
    busy = covered(unit, np.clip(lo, start, end), np.clip(hi, start, end), int(unit.max()) + 1)
    weight = _weights(step)  # a symmetric group idles alike
    return sum((end - start - float(busy[u])) * weight.get(u, 1) for u in units.tolist())


def breakdown(trace: Trace, graph: TaskGraph, cluster: Cluster, step: StepGraph | None,
              makespan_s: float) -> Breakdown:
    """The mean unit's step: compute, exposed communication (unit_activity), the
    pipeline bubble (bubble_s) and the rest (waiting outside the pipeline's window).
    A symmetric group's unit counts for all its units. Per unit, activity and bubble
    are disjoint parts of the step, so the first three never exceed the makespan."""
    units, busy, exposed = _accelerators(step, *unit_activity(trace, graph.comm, graph.size))
    weight = _weights(step)
    w = [weight.get(u, 1) for u in units]
    size = cluster.size if step is None else step.config.units
    compute = sum(wi * float(x) for wi, x in zip(w, busy, strict=True)) / size
    comm_s = sum(wi * float(x) for wi, x in zip(w, exposed, strict=True)) / size
    bubble = bubble_s(step, trace) / size
    return Breakdown(compute, comm_s, bubble, max(makespan_s - (compute + comm_s + bubble), 0.0))


def _accelerators(step: StepGraph | None, units: list[int], busy: np.ndarray,
                  exposed: np.ndarray) -> tuple[list[int], np.ndarray, np.ndarray]:
    """unit_activity's rows of the step's own units: with offload, not its hosts'."""
    if step is None:
        return units, busy, exposed
    keep = np.array(units, np.int64) < step.config.units
    return [u for u, k in zip(units, keep, strict=True) if k], busy[keep], exposed[keep]


def sequence_length(model: Model) -> int | None:
    """Tokens per sample: the sequence axis of the first attention or recurrent layer's
    input (its shape is (sequence, features)); None for a model without one."""
    for layer in model.layers:
        if layer.kind in SEQUENCE_KINDS:
            return int(layer.input_shape[0])
    return None


def _as_algorithm(layer: Layer) -> Layer:
    """Attention as the plain algorithm computes it (every score, once): fused kernels
    recompute the scores in the backward and a causal one skips masked tiles (Dao et
    al., "FlashAttention", NeurIPS 2022), neither of which model FLOPs count."""
    if getattr(layer.op, "implementation", "unfused") == "unfused":
        return layer
    return replace(layer, op=replace(layer.op, implementation="unfused"))  # type: ignore[type-var]


def model_flops(model: Model, batch: int, training: bool) -> float:
    """The model's FLOPs for `batch` samples: its layers' forward and (training)
    backward FLOPs as the ops count them, without recompute. For a transformer's GEMMs
    this is PaLM's 6 N + 12 L s h per token (Chowdhery et al., "PaLM", JMLR 2023,
    appendix B; palm_flops_per_token); the ops add their elementwise work. FLOPs do
    not depend on the element size (the 2 bytes passed)."""
    return float(sum(_as_algorithm(layer).cost(batch, phase, 2).flops
                     for layer in model.layers for phase in PHASES[training]))


def palm_flops_per_token(params: float, layers: int, seq: int, hidden: int) -> float:
    """Training FLOPs per token as PaLM counts them: 6 N for the matrix multiplies of
    the N parameters (forward 2 N, backward 4 N) and 12 L s h for attention's two
    products over the sequence (Chowdhery et al. 2023, appendix B, with H Q = h)."""
    return 6.0 * params + 12.0 * layers * seq * hidden


def hardware_flops(step: StepGraph) -> float:
    """Every FLOP the units execute in the forwards and backwards: the step graph's
    tasks, each times the units it stands for, so activation recompute, a fused
    kernel's recomputed scores and the ops tensor parallelism replicates on every rank
    count (Korthikanti et al., "Reducing Activation Recomputation in Large Transformer
    Models", MLSys 2023, section 6). The optimizer's update is not the model's work."""
    g = step.graph
    tasks = [t for t, (what, _) in (step.work or {}).items() if what in ("F", "B")]
    if not step.work:  # a step without its tasks' roles: every compute task
        tasks = np.flatnonzero(~np.asarray(g.comm, bool)).tolist()
    idx = np.asarray(tasks, np.int64)
    return float((g.flops[idx] * step.copies()[idx]).sum())


def step_metrics(step: StepGraph, cluster: Cluster, trace: Trace, makespan_s: float,
                 precision: str | None) -> StepMetrics:
    """The step's throughput and utilisation (module docstring). MFU = model FLOPs /
    (makespan x the units' summed peak at `precision`): PaLM's definition, the peak of a
    unit being units x peak on identical units; HFU the same with hardware FLOPs."""
    cfg = step.config
    safe = makespan_s if makespan_s > 0 else float("inf")
    seq = sequence_length(step.model)
    peak = float(sum(u.peak(precision) for u in cluster.units[:cfg.units]))  # not hosts
    model, hardware = model_flops(step.model, cfg.batch, cfg.training), hardware_flops(step)
    units, _, exposed = _accelerators(step, *unit_activity(trace, step.graph.comm,
                                                           step.graph.size))
    worst = int(np.argmax(exposed)) if len(units) else 0
    return StepMetrics(
        samples_per_s=cfg.batch / safe,
        tokens_per_s=None if seq is None else cfg.batch * seq / safe,
        model_flops=model, hardware_flops=hardware, peak_flop_rate=peak,
        mfu=model / (safe * peak), hfu=hardware / (safe * peak),
        exposed_comm_max_s=float(exposed[worst]) if len(units) else 0.0,
        exposed_comm_unit=cluster.units[units[worst]].name if len(units) else "",
        bubble_s=bubble_s(step, trace))
