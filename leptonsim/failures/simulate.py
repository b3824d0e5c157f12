"""The training run as a seeded renewal process, and the checkpoint interval that is best
by simulation.

Each replicate alternates work and restarts. Working, the time to the next failure g is
exponential of mean M: floor(g / (tau + delta)) intervals complete and are checkpointed,
the partial one is lost and a restart begins; a restart of R succeeds when the next gap
is at least R, else it starts again after the gap (failures interrupt restarts too, as
in Daly 2006). A run ends when its intervals are done (a run of N steps: ceil(N x step /
tau) intervals, each checkpointed, the last one the rest of the work) or at a horizon
(D days: the intervals done by then).

Replicates are numpy columns and every interval candidate shares them: draw i of
replicate r is the same gap for each tau (common random numbers, Law 2015 §11.2), so the
curve over tau is smooth and its optimum steady. The loop runs once per failure or
restart, never per step: a 30-day run of 16,384 GPUs is ~300 iterations. A run of
steps ends with a shorter interval, the rest of its work, so the goodput over tau has
no saw-tooth from rounding the work up to whole intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import SimulationError
from .model import FailureModel, daly_interval, young_interval

__all__ = ["MAX_EVENTS", "Best", "Outcome", "best_interval", "simulate"]

MAX_EVENTS = 200_000  # failures and restarts per replicate: ~20 s; scenario/failures.py
                      # refuses runs that expect more than MAX_EVENTS / 2 interruptions


@dataclass(frozen=True)
class Outcome:
    """Per interval candidate (rows) and replicate (columns)."""

    tau_s: np.ndarray        # (intervals,)
    wall_s: np.ndarray       # elapsed time
    useful_s: np.ndarray     # work checkpointed (a run of N steps: at most its work)
    interruptions: np.ndarray

    @property
    def goodput(self) -> np.ndarray:
        """Useful work / elapsed time: the effective training time ratio (Llama 3)."""
        return np.divide(self.useful_s, self.wall_s, out=np.zeros_like(self.wall_s),
                         where=self.wall_s > 0)


def simulate(model: FailureModel, tau_s: np.ndarray | float, replicates: int, seed: int,
             work_s: float | None = None, horizon_s: float | None = None) -> Outcome:
    """Replicates of a run of `work_s` seconds of work, or of `horizon_s` seconds of
    wall time (exactly one), checkpointing every tau of work (and at the end of a run
    of steps: its last interval is the rest of the work)."""
    if (work_s is None) == (horizon_s is None):
        raise ValueError("give exactly one of work_s and horizon_s")
    tau = np.atleast_1d(np.asarray(tau_s, dtype=float))[:, None]
    seg = tau + model.checkpoint_s
    if work_s is not None:  # whole intervals, then the rest of the work and its checkpoint
        full = np.ceil(work_s / tau - 1e-12) - 1
        last = work_s - full * tau + model.checkpoint_s
    else:
        full, last = np.full_like(tau, np.inf), np.zeros_like(tau)
    end = math.inf if horizon_s is None else horizon_s
    shape = (tau.shape[0], replicates)
    t, done, fails = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    restarting, active = np.zeros(shape, bool), np.ones(shape, bool)
    rng, mtbf, restart = np.random.default_rng(seed), model.mtbf_s, model.restart_s
    for _ in range(MAX_EVENTS):
        if not active.any():
            break
        g = rng.exponential(mtbf, replicates)[None, :]
        # a restart: done after R if the gap allows, else failed after the gap
        rs = active & restarting
        ok = g >= restart
        t = np.where(rs, t + np.where(ok, restart, g), t)
        fails += rs & ~ok
        # work: the run finishes within the gap, or whole intervals until the gap or horizon
        wk = active & ~restarting
        rest = np.where(done < full, (full - done) * seg, 0.0) + last
        finished = wk & (g >= rest) & (t + rest <= end)
        cut = wk & ~finished & (g >= end - t)  # the horizon comes before the failure
        failed = wk & ~finished & ~cut
        k = np.minimum(np.floor(np.minimum(g, end - t) / seg), full - done)
        done = np.where(finished, full + 1, np.where(wk, done + k, done))
        t = np.where(finished, t + rest, np.where(cut, end, np.where(failed, t + g, t)))
        fails += failed
        restarting = np.where(rs, ~ok, failed | restarting)
        active &= ~finished & ~cut & (t < end)
    else:
        raise SimulationError(f"the run did not finish within {MAX_EVENTS:,} failures and "
                              "restarts: its intervals are too long for the MTBF")
    useful = done * tau if work_s is None else np.where(done > full, work_s, done * tau)
    return Outcome(tau[:, 0], np.minimum(t, end), useful, fails)


SPAN_MTBFS = 5.0  # no candidate's interval and checkpoint exceed 5 M: e^5 = 148 tries each


@dataclass(frozen=True)
class Best:
    """The checkpoint interval of highest mean goodput, by simulation, beside the formulas."""

    tau_s: float
    goodput: float
    young_s: float
    daly_s: float
    curve: Outcome


def best_interval(model: FailureModel, replicates: int, seed: int, work_s: float | None = None,
                  horizon_s: float | None = None, points: int = 41) -> Best:
    """The interval of highest mean goodput over `points` candidates spaced evenly in
    log tau from Young's / 4 to Young's x 4 (none shorter than a step, none with its
    checkpoint longer than SPAN_MTBFS x M), refined by the
    vertex of a parabola through the best candidate and its neighbours (in log tau)."""
    delta, mtbf = model.checkpoint_s, model.mtbf_s
    young = young_interval(delta, mtbf)
    centre = max(young, model.step_s, 1e-6)  # delta = 0 would put the grid at 0
    top = max(min(centre * 4, SPAN_MTBFS * mtbf - delta), centre)  # e^{s/M} attempts each
    grid = np.geomspace(max(centre / 4, model.step_s), top, points)
    out = simulate(model, grid, replicates, seed, work_s, horizon_s)
    mean = out.goodput.mean(axis=1)
    i = int(np.clip(np.argmax(mean), 1, points - 2))
    x, y = np.log(grid[i - 1:i + 2]), mean[i - 1:i + 2]
    a, b, _ = np.polyfit(x, y, 2)
    tau = float(np.exp(-b / (2 * a))) if a < 0 and x[0] <= -b / (2 * a) <= x[2] \
        else float(grid[int(np.argmax(mean))])
    return Best(tau, float(mean.max()), young, daly_interval(delta, mtbf), out)
