"""N seeded replicates of a scenario with [noise], through a sweep executor.

Sample i draws SeedSequence([noise seed, i]) (leptonsim.noise), so a replicate is the
same whichever worker runs it and however many there are. The samples go out in one
chunk per executor slot, so the scenario (its graph, for a DNN step its step) is
pickled to each worker once, not once per sample; Dask's executor takes the same path
(study/executors.py).
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, fields, replace

import numpy as np

from ..result import RunResult, run
from ..scenario import Scenario
from .stats import Summary, summarise

__all__ = ["OUTPUTS", "Replicate", "Replicates", "replicate", "replicates"]

# the outputs summarised: field of Replicate -> (label, unit)
OUTPUTS = {"makespan_s": ("makespan", "s"), "throughput": ("throughput", ""),
           "energy_j": ("energy", "J")}


@dataclass(frozen=True)
class Replicate:
    """One sample: its outputs and the seed's formulas at its drawn task times."""

    sample: int
    makespan_s: float
    throughput: float   # samples/s for a DNN step, tasks/s for a task graph
    energy_j: float
    seed_tp_s: float    # T_p = min(ΣT_i, T_m) of the drawn times
    work_span_s: float  # max(W / C, CP) of the drawn times

    @staticmethod
    def columns() -> tuple[str, ...]:
        return tuple(f.name for f in fields(Replicate))


def _prediction(result: RunResult, name: str) -> float:
    return next(r.prediction for r in result.formulas if r.name == name)


def replicate(scenario: Scenario, sample: int) -> Replicate:
    """Simulate sample `sample` of the scenario's noise."""
    r = run(replace(scenario, sample=sample))
    span = r.metrics.makespan_s
    rate = (r.step_metrics.samples_per_s if r.step_metrics is not None
            else scenario.graph.size / span if span > 0 else 0.0)
    return Replicate(sample, span, rate, r.energy.total_j,
                     _prediction(r, "seed parallel time"), _prediction(r, "work/span lower bound"))


def _chunk(scenario: Scenario, samples: list[int]) -> list[Replicate]:
    return [replicate(scenario, i) for i in samples]


@dataclass(frozen=True)
class Replicates:
    """A scenario's replicates (by sample) and each output's Summary."""

    scenario: Scenario
    rows: tuple[Replicate, ...]
    summaries: dict[str, Summary]

    def column(self, name: str) -> np.ndarray:
        return np.array([getattr(r, name) for r in self.rows], dtype=float)

    @property
    def throughput_unit(self) -> str:
        return "samples/s" if self.scenario.step is not None else "tasks/s"

    @property
    def bound_holds(self) -> bool:
        """The work/span bound below the makespan in every sample (docs/model.md)."""
        return all(r.work_span_s <= r.makespan_s * (1 + 1e-9) for r in self.rows)


def replicates(scenario: Scenario, n: int, executor: Executor, slots: int,
               precision: float) -> Replicates:
    """Samples 0 to n - 1 of the scenario, `slots` chunks at once on `executor`; each
    output summarised for a half-width of `precision` x its mean."""
    chunks = [list(range(i, n, slots)) for i in range(min(slots, n))]
    futures = [executor.submit(_chunk, scenario, c) for c in chunks]
    rows = tuple(sorted((r for f in futures for r in f.result()), key=lambda r: r.sample))
    seed = scenario.noise.seed if scenario.noise is not None else scenario.seed
    out = Replicates(scenario, rows, {})
    return replace(out, summaries={k: summarise(out.column(k), precision, seed)
                                   for k in OUTPUTS})
