"""A Validation as text, as JSON, and as files (validation.json, scatter.png,
gantt_overlay.png), published as one set as leptonsim.result does."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..cost.kinds import KernelCalibration
from ..export import atomic_write
from ..files import json_text, publish
from ..measure.quiet import QuietGate
from .run import Validation

TIER_NAMES = {"profiled": "layers as profiled at this micro-batch",
              "interpolated": "layers interpolated from other micro-batch sizes",
              "kind": "per-kind models only"}


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x * 100:+.1f}%"


def render(v: Validation) -> str:
    c = v.comparison
    runs = ", ".join(f"{t * 1e3:.2f}" for t in c.measured_makespans_s)
    lines = [f"validate {v.label}: {v.setup.cluster.size} worker(s), {v.setup.detail}",
             f"  makespan  predicted {_ms(c.predicted_makespan_s)}  measured "
             f"{_ms(c.measured_makespan_s)} (median of {len(c.measured)}: {runs} ms)  "
             f"error {_pct(c.error)}"]
    for tier in v.ablations:
        lines.append(f"  {TIER_NAMES[tier]}: predicted {_ms(v.makespan_with(tier))}  "
                     f"error {_pct(v.error_with(tier))}")
    redone = sum(s.redone for s in c.seen)
    if redone or any(s.foreign > 0.02 or s.slowdown > QuietGate.slow for s in c.seen):
        worst = max(s.slowdown for s in c.seen)
        lines.append(f"  machine disturbed: {redone} run(s) redone; kept runs saw up to "
                     f"{max(s.foreign for s in c.seen):.0%} foreign CPU and a core "
                     f"{worst:.2f}x slower than its best" if math.isfinite(worst) else
                     f"  machine disturbed: {redone} run(s) redone")
    by_kind = c.errors_by_kind(v.kinds)
    if by_kind:
        lines.append("  per-task error by kind (median |error|, median signed error, tasks):")
        lines += [f"    {k:<22} {abs(d['median_abs_error']) * 100:6.1f}%  "
                  f"{_pct(d['median_error']):>7}  {d['tasks']:>5}" for k, d in by_kind.items()]
    sim, meas = c.transfer_times()
    if sim.size:
        lines.append(f"  transfers: {sim.size}, median predicted {_ms(float(np.median(sim)))}, "
                     f"measured {_ms(float(np.median(meas)))}")
    err = c.task_errors()
    if np.isfinite(err).any():
        lines.append(f"  all tasks: median |error| {np.nanmedian(np.abs(err)) * 100:.1f}%, "
                     f"time-weighted {weighted_abs_error(c.predicted_task_s, c.measured_task_s, err):.1%}")
    return "\n".join(lines)


def weighted_abs_error(predicted: np.ndarray, measured: np.ndarray, err: np.ndarray) -> float:
    """Sum |predicted - measured| / sum measured over the tasks with an error."""
    m = np.isfinite(err)
    total = float(measured[m].sum())
    return float(np.abs(predicted[m] - measured[m]).sum() / total) if total > 0 else float("nan")


def calibration_json(cal: KernelCalibration) -> dict[str, Any]:
    return {"batches": {k: list(b) for k, b in cal.batches.items()},
            "link_to_idle_worker": None if cal.link is None else
            {"latency_s": cal.link[0], "bandwidth_Bps": cal.link[1]},
            "endpoints": None if cal.endpoints is None else vars(cal.endpoints),
            "default_gap_s": cal.default_gap_s,
            "fits": {k: {"overhead_s": f.overhead_s, "compute_factor": f.compute_factor,
                         "memory_factor": f.memory_factor, "gap_s": f.gap_s, "points": f.points}
                     for k, f in cal.fits.items()}}


def _transfers(c: Any) -> dict[str, Any]:
    sim, meas = c.transfer_times()
    return {"count": int(sim.size), "predicted_total_s": float(sim.sum()),
            "measured_total_s": float(meas.sum()),
            "predicted_median_s": float(np.median(sim)) if sim.size else None,
            "measured_median_s": float(np.median(meas)) if sim.size else None}


def to_json(v: Validation) -> dict[str, Any]:
    c, g = v.comparison, v.setup.graph
    err = c.task_errors()
    units = np.zeros(g.size, np.int64)
    units[c.predicted.task] = c.predicted.task_unit
    return {
        "scenario": v.label, "detail": v.setup.detail, "workers": v.setup.cluster.size,
        "repeats": len(c.measured),
        "predicted_makespan_s": c.predicted_makespan_s,
        "measured_makespan_s": c.measured_makespan_s,
        "measured_makespans_s": c.measured_makespans_s,
        "error": c.error,
        "cost_tier": v.setup.cost.tier,
        "other_tiers": {t: {"makespan_s": v.makespan_with(t), "error": v.error_with(t)}
                        for t in v.ablations},
        "disturbance": [{"foreign_cpu": s.foreign, "slowest_core_after": s.slowdown
                         if math.isfinite(s.slowdown) else None, "redone": s.redone}
                        for s in c.seen],
        "median_abs_task_error": float(np.nanmedian(np.abs(err))) if np.isfinite(err).any()
        else None,
        "by_kind": c.errors_by_kind(v.kinds),
        "transfers": _transfers(c),
        "calibration": calibration_json(v.setup.cost.calibration),
        "tasks": [{"name": g.names[i], "kind": v.kinds[i], "unit": int(units[i]),
                   "predicted_s": float(c.predicted_task_s[i]),
                   "measured_s": float(c.measured_task_s[i]),
                   "error": float(err[i]) if np.isfinite(err[i]) else None}
                  for i in range(g.size)],
    }


def write_outputs(v: Validation, out_dir: Path, extra: dict[str, Any] | None = None) -> list[Path]:
    """validation.json, scatter.png and gantt_overlay.png, as one set (files.publish)."""
    from ..figure_style import save_figure  # matplotlib only when files are written
    from .figures import gantt_overlay, scatter

    text = json_text({**to_json(v), **(extra or {})}, "validation.json")
    c = v.comparison
    keep = c.compute

    def build(staging: Path) -> None:
        atomic_write(staging / "validation.json", lambda f: f.write(text))
        save_figure(scatter(c.predicted_task_s[keep], c.measured_task_s[keep],
                            [k for k, m in zip(v.kinds, keep, strict=True) if m],
                            f"{v.label}: task times, predicted vs measured\n"
                            f"end to end {_pct(c.error)}"), staging / "scatter.png")
        save_figure(gantt_overlay(c.predicted, c.median_trace,
                                  f"{v.label}: simulated and measured (median run)"),
                    staging / "gantt_overlay.png")

    return publish(out_dir, "validate", build)
