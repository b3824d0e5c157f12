"""Cost models: how long a task takes on a kind of unit.

    base.py        the `CostModel` interface; `TaskCost`, the base of every model, with
                   the fixed-task and communication stand-in rules (`fixed_times`)
    roofline.py    the roofline expression (`roofline_seconds`, `roofline_terms`) and
                   `Roofline`, the analytic model: rate = peak x efficiency
    calibrated.py  `Profile` (this machine, as measured), `monotone_curve` and
                   `CalibratedCost`: rate = peak x eff(flops)
    kinds.py       `KindCost`: CalibratedCost refined per op kind, and per layer from
                   measured tables, by a `KernelCalibration` (validation)
    gpu.py         `GpuCost`: GEMMs by shape (tile and wave quantisation over the SMs),
                   the rest at achievable bandwidth, a stated overlap rule, launch
                   overhead per kernel (`[cost] model = "gpu"`)
    optable.py     the op-time table CSV (kind, device, precision, flops/bytes, seconds):
                   read_table, write_table, every mistake a one-line TableError
    measured.py    `TableCost`: measured op times, interpolated log-log by size

Transfers are costed by the network (per hop: latency + bytes / bandwidth), not here.
Nothing here measures anything: leptonsim.measure times this machine and hands its
Profile and KernelCalibration to the models, never the other way round.

Everything that needs a task time takes a model, by default `DEFAULT` (Roofline):
run.run, sim.simulate, parallel.build_step (stage partitioning), optimize.search and
optimize.Estimator (the analytic estimate), the zero-work check of scenario.build. A
scenario names its model in [cost] (scenario/cost.py; GpuCost for a [workload.model]).

Adding a model (a GPU's, say): a new module here with a subclass of `TaskCost` that
sets `name` and defines `seconds(flops, nbytes, unit, kinds=None)` -> seconds per
column (call `roofline_seconds` for any roofline part; `kinds` are the tasks' op kinds,
e.g. "dense", "conv2d.bwd"); override `compute_times(graph, unit)` only if it needs
more of a graph than those columns, and `work_seconds(..., gemms, kernels)` if it
reads the GEMM shapes and kernel counts layer columns carry (gpu.py does). Pass an
instance as `cost=` to the functions above. Nothing else changes: the fixed-task
rules come with TaskCost.task_times, and tests/test_cost.py states the theorems every
model must satisfy (add it to MODELS).
"""

from .base import CostModel, TaskCost, fixed_times
from .gpu import GpuCost
from .roofline import Roofline, roofline_seconds, roofline_terms

DEFAULT: CostModel = Roofline()
"""The cost model used when none is given."""

__all__ = ["DEFAULT", "CostModel", "GpuCost", "Roofline", "TaskCost", "fixed_times", "roofline_seconds",
           "roofline_terms"]
