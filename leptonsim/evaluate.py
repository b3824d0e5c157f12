"""The seed's formulas and the textbook results, each held up against one run.

Every row gives the formula's prediction, the simulated value it predicts and the
relative error. For a bound, `within_bounds` says whether the run lies on the right
side of it and `proven` whether a theorem guarantees that for this run (when not,
`note` says why); estimates have within_bounds None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import formulas as f
from .hardware import Cluster
from .metrics import Metrics

TOL = 1e-9  # relative slack for float round-off in bound checks


@dataclass(frozen=True)
class FormulaRow:
    name: str
    formula: str
    predicts: str
    prediction: float
    simulated: float | None
    relative_error: float | None
    within_bounds: bool | None
    proven: bool
    note: str

    @property
    def verdict(self) -> str:
        if self.simulated is None:
            return "not simulated"
        if self.within_bounds is None:
            return "estimate"
        if self.proven:
            return "holds" if self.within_bounds else "VIOLATED"
        return "inside, unproven" if self.within_bounds else "outside, unproven"


def _row(name: str, formula: str, predicts: str, prediction: float, simulated: float | None,
         within: bool | None, note: str, proven: bool = False) -> FormulaRow:
    err = None if simulated is None else f.relative_error(prediction, simulated)
    return FormulaRow(name, formula, predicts, prediction, simulated, err, within, proven, note)


def compare(m: Metrics, cluster: Cluster, ref_times: np.ndarray, *, greedy: bool,
            communicated: bool, objective: tuple[float, float, float] | None = None
            ) -> list[FormulaRow]:
    """ref_times: each task's time on the reference (best single) unit, the seed's T_i."""
    T = m.makespan_s
    lower = f.work_span_lower_bound(m.total_work_s, m.capacity, m.critical_path_s)
    graham_applies = m.identical_units and not communicated and greedy
    why_not = "" if graham_applies else (
        "proven only for greedy schedules on identical units without communication; "
        f"here: identical={m.identical_units}, communication={communicated}, greedy={greedy}")
    serial = min(1.0, m.critical_path_s / m.total_work_s) if m.total_work_s > 0 else 1.0
    graham = f.greedy_upper_bound(m.total_work_s, m.capacity, m.critical_path_s)
    brent = f.brent_bound(m.total_work_s, m.capacity, m.critical_path_s)
    seed_tp = f.seed_parallel_time(ref_times.tolist() or [0.0])
    rows = [
        _row("seed parallel time", "T_p = min(ΣT_i, T_m)", "makespan_s", seed_tp, T,
             seed_tp <= T * (1 + TOL),
             "always equals max T_i: a lower bound, reached only by independent tasks "
             "on at least N units without transfers", proven=True),
        _row("seed hardware efficiency", "E_p = max(1/ΣE_i, E_m)", "parallel_efficiency",
             f.seed_hardware_efficiency([u.efficiency for u in cluster.units]),
             m.parallel_efficiency, None,
             "not a bound: mixes 1/ΣE_i with max E_i; parallel efficiency is "
             "W / (C_eff x makespan)"),
        _row("work/span lower bound", "max(W/C_eff, CP)", "makespan_s", lower, T,
             lower * (1 - TOL) <= T, "holds for every schedule (transfers only add time)",
             proven=True),
        _row("Graham upper bound", "W/C_eff + CP", "makespan_s", graham, T,
             graham * (1 + TOL) >= T, why_not or "proven for this run", proven=graham_applies),
        _row("Brent bound", "(W-CP)/C_eff + CP", "makespan_s", brent, T,
             brent * (1 + TOL) >= T, why_not or "proven for this run", proven=graham_applies),
        _row("Amdahl's law", "1/(s + (1-s)/C_eff), s = CP/W", "speedup",
             f.amdahl_speedup(serial, max(m.capacity, 1.0)), m.speedup, None,
             "an estimate, not a bound; with s = CP/W its time equals Brent's bound"),
        _row("Gustafson's law", "s + (1-s)·C_eff, s = CP/W", "speedup",
             f.gustafson_speedup(serial, max(m.capacity, 1.0)), m.speedup, None,
             "scaled (weak-scaling) speed-up: assumes the parallel work grows with C"),
    ]
    if objective is not None:
        et, er, lam = objective
        rows.append(_row("seed objective", "E_t + λ·E_r", "objective",
                         f.seed_objective(et, er, lam), None, None,
                         "errors come from the scenario; measuring them needs real "
                         "kernels (leptonsim validate)"))
    return rows
