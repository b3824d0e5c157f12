"""Noise: per-unit speed, per-task jitter and per-link bandwidth, drawn once per sample.

Every factor has one distribution, `Spread`: a lognormal of median 1, exp(sigma Z),
times `slowdown` with probability `fraction` (a straggler, a degraded link). The
lognormal is the usual model of a kernel's or a node's run-time variation (Petrini et
al., SC'03, "The case of the missing supercomputer performance"; Hoefler, Schneider and
Lumsdaine, SC'10, "Characterizing the influence of system noise on large-scale
applications by simulation", LogGOPSim); the two-point mixture is the straggler model
of Dean and Barroso, CACM 2013, "The tail at scale". Each factor multiplies a time:
a unit's compute tasks take `units[u]` times longer, task t `tasks[t]` times, a link
carries its bandwidth / `links[l]`.

A sample is drawn from numpy's SeedSequence([seed, sample]) spawned into one stream
each for units, links and tasks, so the units' draws do not move when a graph grows.
Factors are fixed for the sample (one step, or a run of steps simulated as one graph).

`realise` applies a draw where times and bandwidths are set, never in the engine loop:
the cluster's links are rebuilt with their bandwidth scaled, and the cost model is
wrapped (`Noisy`) so task_times returns the sampled durations. A graph whose tasks are
all pinned folds each unit's factor into its tasks' (the engine reads a task's time on
its pinned unit only, so no per-unit cost rows are built: 1,024 units x 10^5 tasks
would be 800 MB); a graph with unpinned tasks gets one unit type per unit
(ComputeUnit.slowdown), since the scheduler may put any task anywhere. Communication
stand-ins (collapsed collectives, their durations priced at build time) take the task
jitter but not a unit's speed: links, not cores, set their pace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .cost import CostModel
from .graph import GemmRows, TaskGraph
from .hardware import Cluster, ComputeUnit, Link

__all__ = ["Draw", "Noise", "Noisy", "Spread", "draw", "realise"]


@dataclass(frozen=True, slots=True)
class Spread:
    """exp(sigma Z) x (slowdown with probability fraction, else 1): a time multiplier."""

    sigma: float = 0.0
    fraction: float = 0.0
    slowdown: float = 1.0

    def __post_init__(self) -> None:
        if not (self.sigma >= 0 and 0 <= self.fraction <= 1 and self.slowdown >= 1):
            raise ValueError(f"a spread needs sigma >= 0, fraction in [0, 1], slowdown >= 1; "
                             f"got {self}")

    @property
    def off(self) -> bool:
        return self.sigma == 0 and (self.fraction == 0 or self.slowdown == 1)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        out = np.exp(self.sigma * rng.standard_normal(n))
        hit = rng.random(n) < self.fraction
        return np.where(hit, out * self.slowdown, out)

    def mean(self) -> float:
        """E[factor] = exp(sigma^2 / 2) (1 + fraction (slowdown - 1))."""
        return float(np.exp(self.sigma ** 2 / 2) * (1 + self.fraction * (self.slowdown - 1)))


@dataclass(frozen=True, slots=True)
class Noise:
    """A scenario's [noise] table: the three spreads and the seed of sample 0."""

    units: Spread = Spread()
    tasks: Spread = Spread()
    links: Spread = Spread()
    seed: int = 0

    @property
    def off(self) -> bool:
        return self.units.off and self.tasks.off and self.links.off


@dataclass(frozen=True)
class Draw:
    """One sample's time multipliers: per unit, per task, per link."""

    units: np.ndarray
    tasks: np.ndarray
    links: np.ndarray


def draw(noise: Noise, units: int, tasks: int, links: int, sample: int = 0) -> Draw:
    """Sample `sample` of `noise` for a cluster and graph of these sizes."""
    seeds = np.random.SeedSequence([noise.seed, sample]).spawn(3)
    on_units, on_links, on_tasks = (np.random.default_rng(s) for s in seeds)
    return Draw(noise.units.draw(on_units, units), noise.tasks.draw(on_tasks, tasks),
                noise.links.draw(on_links, links))


def pinned(graph: TaskGraph) -> bool:
    return bool((graph.pin >= 0).all())


def realise(noise: Noise, cluster: Cluster, graph: TaskGraph, cost: CostModel,
            sample: int = 0) -> tuple[Cluster, Noisy]:
    """The cluster and cost model of sample `sample`: links' bandwidths divided by their
    factors; task times multiplied by theirs (and their pinned unit's, or each unit a
    type of its own with ComputeUnit.slowdown when tasks are unpinned)."""
    d = draw(noise, cluster.size, graph.size, len(cluster.links), sample)
    links = tuple(_slowed_link(k, f) for k, f in zip(cluster.links, d.links, strict=True))
    factor = d.tasks.copy()
    units: Sequence[ComputeUnit] = cluster.units
    if pinned(graph):
        compute = ~graph.comm if graph.comm is not None else np.ones(graph.size, bool)
        factor[compute] *= d.units[graph.pin[compute]]
    else:
        units = tuple(replace(u, slowdown=u.slowdown * float(f))
                      for u, f in zip(cluster.units, d.units, strict=True))
    noisy = Cluster(tuple(units), links, cluster.switches, cluster.units_per_node, cluster.mesh)
    return noisy, Noisy(cost.base if isinstance(cost, Noisy) else cost, factor)


def _slowed_link(link: Link, factor: float) -> Link:
    return replace(link, spec=replace(link.spec, bandwidth=link.spec.bandwidth / float(factor)))


class Noisy:
    """A cost model whose task_times are `base`'s times x a factor per task (a draw);
    what it prices without a graph (`seconds`, `work_seconds`: stage balancing, the
    optimizer) is `base`'s, nominal."""

    def __init__(self, base: CostModel, factor: np.ndarray) -> None:
        self.base = base
        self.factor = factor
        self.name = f"{base.name} + noise"
        self.precision = getattr(base, "precision", None)

    def seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit,
                kinds: Sequence[str] | None = None) -> np.ndarray:
        return self.base.seconds(flops, nbytes, unit, kinds)

    def work_seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit,
                     kinds: Sequence[str] | None = None, gemms: GemmRows | None = None,
                     kernels: np.ndarray | None = None) -> np.ndarray:
        return self.base.work_seconds(flops, nbytes, unit, kinds, gemms, kernels)

    def task_times(self, graph: TaskGraph, cluster: Cluster) -> np.ndarray:
        times = self.base.task_times(graph, cluster)
        return times * self.factor[None, :]
