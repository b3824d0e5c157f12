"""Find the best parallel configuration: estimate every one, simulate the best few.

The analytic estimate (estimate.py) ranks the whole space under the memory limit;
the top candidates are built as real step graphs and simulated, and the simulated
objective decides. The report says why the winner wins: its time breakdown beside
the runner-up's and beside the plain data-parallel configuration's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cost import DEFAULT, CostModel
from ..energy import cost_usd, energy_of
from ..errors import SimulationError, SizeError
from ..hardware import Cluster
from ..models import Model
from ..parallel.config import ParallelConfig
from ..parallel.mirror import routed
from ..parallel.step import build_step
from ..parallel.tensor import split_gcd
from ..progress import Progress
from ..sim import simulate
from .estimate import Estimate, Estimator
from .space import Space, enumerate_space

OBJECTIVES = ("time", "energy", "cost")
SYMMETRIC_ABOVE = 64  # units: beyond this, simulate one rank per tensor-parallel group

UNBUILT_TRIES = 4  # candidates tried per one asked for, when some cannot be built


@dataclass(frozen=True)
class Candidate:
    index: int                   # into the space
    label: str
    estimated: float             # objective, estimated
    simulated: float             # objective, simulated (inf if it could not be built)
    step_s: float
    energy_j: float
    cost_usd: float
    unbuilt: str = ""            # why its step could not be built, if it could not


@dataclass(frozen=True)
class Search:
    space: Space
    estimate: Estimate
    objective: str
    candidates: list[Candidate]  # best first, by simulated objective
    baseline: int | None         # plain data parallelism (DDP, zero 0), if it fits

    @property
    def winner(self) -> Candidate:
        return self.candidates[0]


def objective_values(est: Estimate, objective: str) -> np.ndarray:
    value = {"time": est.step_s, "energy": est.energy_j, "cost": est.cost_usd}[objective]
    return np.where(est.fits, value, np.inf)


def search(model: Model, cluster: Cluster, batch: int, *, objective: str = "time", top: int = 5,
           dtype_bytes: int = 2, optimizer: str = "adam", training: bool = True,
           max_tp: int | None = None, max_microbatches: int = 64,
           cost: CostModel = DEFAULT, input_s_per_sample: float = 0.0,
           fused_optimizer: bool = False, progress: Progress | None = None) -> Search:
    """Rank every configuration by the estimate, simulate the `top` few; `cost` prices
    tasks in the estimate, the step partitions and the simulations. `progress` reports
    the estimate and each simulation on stderr."""
    progress = progress or Progress("never")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    space = enumerate_space(cluster.size, batch, len(model.layers), max_tp=max_tp,
                            max_microbatches=max_microbatches, training=training,
                            split=split_gcd(model), tokens=_tokens(model))
    if not len(space):
        raise SimulationError(f"no parallel configuration splits batch {batch} over {cluster.size} units")
    with progress.phase("estimating", f"{len(space):,} configurations"):
        est = Estimator(model, cluster, batch, dtype_bytes=dtype_bytes, optimizer=optimizer,
                        training=training, cost=cost,
                        input_s_per_sample=input_s_per_sample)(space)
    score = objective_values(est, objective)
    if not np.isfinite(score).any():
        raise SimulationError(f"no configuration of {model.name} fits in "
                              f"{cluster.units[0].memory_bytes / 1e9:.3g} GB per unit")
    fixed = {"dtype_bytes": dtype_bytes, "optimizer": optimizer, "training": training,
             "input_s_per_sample": input_s_per_sample, "fused_optimizer": fused_optimizer}
    confirmed: list[Candidate] = []
    # down the ranking until `top` are built (a candidate the memory plan or the size
    # bounds refuse does not count), trying at most UNBUILT_TRIES x top of them
    for i in np.argsort(score, kind="stable")[:UNBUILT_TRIES * top]:
        if not np.isfinite(score[i]) or sum(not c.unbuilt for c in confirmed) == top:
            break
        with progress.phase("simulating", space.describe(int(i))):
            confirmed.append(_confirm(model, cluster, batch, space, int(i), float(score[i]),
                                      objective, fixed, cost))
    confirmed.sort(key=lambda c: (c.simulated, c.index))
    plain = np.flatnonzero((space.dp == cluster.size) & (space.zero == 0) & np.isfinite(score))
    baseline = int(plain[np.argmin(score[plain])]) if plain.size else None
    return Search(space, est, objective, confirmed, baseline)


def _tokens(model: Model) -> int:
    """The sequence length sequence and context parallelism split: a transformer's (0
    without attention, where neither is tried)."""
    return next((layer.input_shape[0] for layer in model.layers if layer.kind == "attention"), 0)


def _confirm(model: Model, cluster: Cluster, batch: int, space: Space, i: int, estimated: float,
             objective: str, fixed: dict, cost: CostModel) -> Candidate:
    big = cluster.size > SYMMETRIC_ABOVE
    try:
        try:
            step = build_step(model, _config(space, i, batch, big, fixed), cluster, cost)
        except SizeError:  # every rank spelt out is too many tasks: one rank per group
            step = build_step(model, _config(space, i, batch, True, fixed), cluster, cost)
    except (SimulationError, SizeError, ValueError) as err:  # the estimate fits, the plan not
        return Candidate(i, space.describe(i), estimated, np.inf, np.inf, np.inf, np.inf,
                         str(err).splitlines()[0])
    trace = step.with_input(simulate(step.graph, routed(step.config, cluster), "static", cost))
    joules = energy_of(cluster, step.every_unit(trace), step.graph.comm,
                       step.collapsed_bytes).total_j
    usd = cost_usd(trace.makespan_s, 1, sum(u.price_per_hour for u in cluster.units))
    value = {"time": trace.makespan_s, "energy": joules, "cost": usd}[objective]
    return Candidate(i, space.describe(i), estimated, value, trace.makespan_s, joules, usd)


def _config(space: Space, i: int, batch: int, big: bool, fixed: dict) -> ParallelConfig:
    """Configuration i as simulated: a big one with one rank per tensor-parallel group
    (exact collective times, docs/model.md), a task per run of layers, and one
    data-parallel replica for all where that is exact (parallel.mirror)."""
    return space.config(i, batch, tp_mode="symmetric" if big and space.tp[i] > 1 else "full",
                        fuse=big, dp_mode="auto" if big else "full", **fixed)


BREAKDOWN = (("compute_s", "compute"), ("bubble_s", "pipeline bubble"),
             ("tp_comm_s", "tensor-parallel all-reduces"),
             ("cp_comm_s", "exposed context-parallel ring"), ("pp_comm_s", "stage hand-offs"),
             ("dp_exposed_s", "exposed gradient all-reduce"), ("optimizer_s", "optimizer"))


def explain(result: Search) -> list[str]:
    """Why the winner wins: where its estimated time goes against its rivals, and what
    the simulation adds (contention and placement the estimate does not see)."""
    est, win = result.estimate, result.winner
    sim = {c.index: c for c in result.candidates}
    rivals = [("the runner-up", c.index) for c in result.candidates[1:2]]
    if result.baseline is not None and result.baseline != win.index:
        rivals.append(("plain data parallelism", result.baseline))
    lines = []
    for name, j in rivals:
        diffs = sorted(((float(getattr(est, f)[j] - getattr(est, f)[win.index]), label)
                        for f, label in BREAKDOWN), reverse=True)
        saved = [f"{gain * 1e3:.3g} ms less on {label}" for gain, label in diffs[:2] if gain > 0]
        why = (" and ".join(saved) if saved else "no less estimated time")
        text = f"against {name} ({result.space.describe(j)}): {why} (estimated)"
        if j in sim and np.isfinite(sim[j].simulated):
            text += (f"; simulated {result.objective} {_pct(sim[j].simulated, win.simulated)} "
                     f"higher")
        text += (f"; memory per unit {est.memory_bytes[win.index] / 1e9:.3g} GB vs "
                 f"{est.memory_bytes[j] / 1e9:.3g} GB")
        lines.append(text)
    return lines


def _pct(rival: float, winner: float) -> str:
    return f"{(rival / winner - 1) * 100:.3g}%" if winner > 0 else "n/a"
