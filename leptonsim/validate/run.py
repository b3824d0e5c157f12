"""One scenario (or model configuration) in, one Validation out.

What runs: the scenario's task graph on `workers` cores of this machine, simulated on
`profile_cluster` (the profile's core and link, fully connected: exactly what the
executor provides) and executed with real kernels. A [workload.model] scenario is
rebuilt for that cluster (the pipeline partition balances *this* machine's costs)
and runs its layers' NumPy kernels (ModelKernels); any other graph runs the
synthetic kernels the profile was measured with. The scenario's own hardware is not
used: a prediction is only checkable on the machine that measures it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

from ..cost.calibrated import Profile, profile_cluster
from ..cost.kinds import TIERS, KernelCalibration, KindCost
from ..errors import ScenarioError
from ..execute import KernelSource, SyntheticKernels
from ..execute.model_kernels import DTYPES, ModelKernels
from ..formulas import relative_error
from ..graph import TaskGraph
from ..hardware import Cluster
from ..measure.calibration import calibration_batches, fit, measure, measure_endpoints, measure_link
from ..measure.quiet import QuietGate
from ..models import Model
from ..parallel.config import ParallelConfig
from ..parallel.step import build_step
from ..scenario import Scenario
from ..sim import SCHEDULERS, Plan, Static
from .compare import Case, Comparison, compare_all, predict


@dataclass(frozen=True)
class Setup:
    """Everything both runs share."""

    graph: TaskGraph
    cluster: Cluster
    plan: Plan
    kernels: KernelSource
    cost: KindCost
    detail: str


@dataclass(frozen=True)
class Validation:
    label: str
    setup: Setup
    comparison: Comparison
    repeats: int

    def makespan_with(self, tier: str) -> float:
        """The step simulated with another tier of the cost model (cost.TIERS)."""
        return self._tier_makespans[tier]

    @cached_property
    def _tier_makespans(self) -> dict[str, float]:
        """Each tier's simulated makespan, once: reports, JSON and figures all ask."""
        s = self.setup
        return {tier: predict(s.graph, s.cluster, s.plan, s.cost.with_tier(tier)).makespan_s
                for tier in TIERS}

    def error_with(self, tier: str) -> float:
        return relative_error(self.makespan_with(tier), self.comparison.measured_makespan_s)

    @property
    def ablations(self) -> tuple[str, ...]:
        """The other tiers worth reporting: those of a step whose layers were calibrated."""
        cost = self.setup.cost
        return tuple(t for t in TIERS if t != cost.tier) if any(cost.keys) else ()

    @property
    def kinds(self) -> list[str]:
        g = self.setup.graph
        return list(g.kinds) if g.kinds else ["task"] * g.size


def model_setup(model: Model, cfg: ParallelConfig, profile: Profile,
                calibration: KernelCalibration) -> Setup:
    """A training step of `model` under `cfg` on cfg.units cores of this machine."""
    if cfg.tp != 1:
        raise ScenarioError("parallel.tp", "1 for validation (no sharded NumPy kernels)", cfg.tp)
    if cfg.cp != 1:
        raise ScenarioError("parallel.cp", "1 for validation (no ring-attention NumPy kernels)",
                            cfg.cp)
    cluster = profile_cluster(profile, cfg.units, calibration.simulated_link)
    step = build_step(model, cfg, cluster)
    kernels = ModelKernels(model, step.work or {}, cfg.microbatch_size, cfg.dtype_bytes,
                           cfg.optimizer, cfg.recompute == "full")
    cost = KindCost(profile, calibration, kernels.keys(step.graph.size), cfg.microbatch_size)
    plan = Static().plan(step.graph, cluster, cost.task_times(step.graph, cluster))
    detail = (f"{model.name}, {DTYPES[cfg.dtype_bytes].__name__}, dp {cfg.dp} x pp {cfg.pp}, "
              f"batch {cfg.batch} in {cfg.microbatches} micro-batch(es) of {cfg.microbatch_size}")
    return Setup(step.graph, cluster, plan, kernels, cost, detail)


def graph_setup(scenario: Scenario, profile: Profile, workers: int) -> Setup:
    """A plain task graph with the synthetic kernels, planned by the scenario's scheduler."""
    g = scenario.graph
    if g.size and int(g.pin.max()) >= workers:
        raise ScenarioError("--workers", f"at least {int(g.pin.max()) + 1} (tasks are pinned "
                            f"up to unit {int(g.pin.max())})", workers, file="command line")
    if scenario.scheduler == "greedy":
        raise ScenarioError("schedule.scheduler", "static or heft for validation (greedy "
                            "places tasks at run time)", "greedy", file=scenario.file)
    cluster = profile_cluster(profile, workers)
    cost = KindCost(profile, KernelCalibration({}))
    plan = SCHEDULERS[scenario.scheduler]().plan(g, cluster, cost.task_times(g, cluster))
    kernels = SyntheticKernels(balance=profile.memory_bandwidth / profile.peak_flops)
    return Setup(g, cluster, plan, kernels, cost, f"{g.size} tasks, synthetic kernels, "
                 f"{scenario.scheduler} schedule")


def calibrate_for(model: Model, cfg: ParallelConfig, profile: Profile, repeats: int = 3,
                  progress: bool = True, gate: QuietGate | None = None) -> KernelCalibration:
    """Kernel calibration for one validated configuration: the model's layers at
    cfg's micro-batch size and at sizes around it (see calibration_batches), on as
    many workers at once as the configuration uses."""
    batches = calibration_batches([cfg.microbatch_size])
    if progress:
        print(f"validate: timing {model.name}'s kernels at micro-batch {batches} on "
              f"{cfg.units} worker(s) (calibration; validated: micro-batch "
              f"{cfg.microbatch_size})", file=sys.stderr, flush=True)
    cal = fit(measure(profile, model, batches, repeats, cfg, gate=gate, workers=cfg.units))
    if cfg.units == 1:
        return replace(cal, batches={model.name: batches})
    return replace(cal, batches={model.name: batches}, link=measure_link(gate=gate),
                   endpoints=measure_endpoints(gate=gate))


def workers_needed(scenario: Scenario, workers: int | None = None) -> int:
    """Worker processes (= simulated units) validating `scenario` takes: dp x pp x tp
    for a [workload.model] step (`workers` must then agree), else `workers` or the
    scenario's units."""
    step = scenario.step
    if step is None:
        return workers or scenario.cluster.size
    if workers is not None and workers != step.config.units:
        raise ScenarioError("--workers", f"{step.config.units} (dp x pp x tp of the scenario)",
                            workers, file="command line")
    return step.config.units


def validate(scenario: Scenario, profile: Profile, workers: int | None = None,
             repeats: int = 5, gate: QuietGate | None = None, progress: bool = True) -> Validation:
    needed = workers_needed(scenario, workers)
    step = scenario.step
    if step is not None:
        cfg = step.config
        model = scenario_model(scenario)
        cal = calibrate_for(model, cfg, profile, progress=progress, gate=gate)
        setup = model_setup(model, cfg, profile, cal)
    else:
        setup = graph_setup(scenario, profile, needed)
    return run_setup(scenario.label, setup, repeats, gate)


def run_setup(label: str, setup: Setup, repeats: int, gate: QuietGate | None = None) -> Validation:
    return run_setups([(label, setup)], repeats, gate)[0]


def run_setups(setups: list[tuple[str, Setup]], repeats: int, gate: QuietGate | None = None,
               progress: Callable[[int], None] | None = None) -> list[Validation]:
    """Validate several setups, their executions interleaved in rounds (compare_all)."""
    cases = [Case(s.graph, s.cluster, s.plan, s.cost, s.kernels) for _, s in setups]
    done = compare_all(cases, repeats, gate, progress)
    return [Validation(label, s, c, repeats) for (label, s), c in zip(setups, done, strict=True)]


def scenario_model(scenario: Scenario) -> Model:
    """The Model of a [workload.model] scenario (kept by its step graph)."""
    if scenario.step is None:
        raise ValueError(f"{scenario.label} has no [workload.model]")
    return scenario.step.model
