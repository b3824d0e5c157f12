"""The failure study's report and its JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..quantities import format_quantity
from ..replicates.stats import summarise
from .model import HOUR

if TYPE_CHECKING:
    from .cli import Run


def _t(seconds: float) -> str:
    if seconds >= HOUR:
        return f"{seconds / HOUR:.3g} h"
    return f"{seconds / 60:.3g} min" if seconds >= 60 else format_quantity(seconds, "time")


def _best_row(r: Run) -> tuple[np.ndarray, np.ndarray]:
    curve = r.best.curve
    i = int(np.argmax(curve.goodput.mean(axis=1)))
    return curve.goodput[i], curve.interruptions[i]


def render(r: Run) -> str:
    m, b = r.model, r.best
    span = f"{r.work_s / m.step_s:,.0f} steps of {_t(m.step_s)}" if r.work_s is not None \
        else f"{r.horizon_s / 86_400:g} days"  # type: ignore[operator]
    goodput, fails = _best_row(r)
    g = summarise(goodput, 0.01)
    lines = [f"== {r.label}: failures over {span} ({goodput.size} replicates) ==",
             f"job         {m.units:,} units, {m.nodes:,} nodes, {m.links:,} links: "
             f"MTBF M = {_t(m.mtbf_s)}",
             f"checkpoint  {format_quantity(m.checkpoint_bytes, 'bytes')} at "
             f"{format_quantity(m.storage_bandwidth, 'bandwidth')}: delta = "
             f"{_t(m.checkpoint_s)}; restart R = {_t(m.restart_s)}",
             f"interval    best by simulation {_t(b.tau_s)}; Young sqrt(2 delta M) "
             f"{_t(b.young_s)}; Daly {_t(b.daly_s)}",
             f"goodput     {g.mean:.2%} [{g.ci_low:.2%}, {g.ci_high:.2%}] at the best "
             f"candidate (effective training time; p5 {g.p5:.2%}, p95 {g.p95:.2%})",
             f"interruptions {fails.mean():,.1f} per run (p5 {np.percentile(fails, 5):,.0f}, "
             f"p95 {np.percentile(fails, 95):,.0f})"]
    if r.given is not None:
        tau, gp, nf = r.given
        lines.append(f"given interval {_t(tau)}: goodput {gp.mean():.2%}, "
                     f"interruptions {nf.mean():,.1f}")
    return "\n".join(lines)


def summary(r: Run) -> dict[str, object]:
    m, b = r.model, r.best
    goodput, fails = _best_row(r)
    out: dict[str, object] = {
        "scenario": r.label, "units": m.units, "nodes": m.nodes, "links": m.links,
        "mtbf_s": m.mtbf_s, "checkpoint_bytes": m.checkpoint_bytes,
        "checkpoint_s": m.checkpoint_s, "restart_s": m.restart_s, "step_s": m.step_s,
        "work_s": r.work_s, "horizon_s": r.horizon_s, "replicates": int(goodput.size),
        "best_interval_s": b.tau_s, "young_interval_s": b.young_s, "daly_interval_s": b.daly_s,
        "goodput": {k: v for k, v in vars(summarise(goodput, 0.01)).items()},
        "interruptions_mean": float(fails.mean()),
        "curve": {"interval_s": b.curve.tau_s.tolist(),
                  "goodput_mean": b.curve.goodput.mean(axis=1).tolist()},
    }
    if r.given is not None:
        out["given"] = {"interval_s": r.given[0], "goodput_mean": float(r.given[1].mean()),
                        "interruptions_mean": float(r.given[2].mean())}
    return out
