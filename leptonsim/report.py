"""What a run says, as summary.json (documented in docs/results.md) and as text."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .formulas import relative_error
from .parallel.plan_memory import memory_notes
from .quantities import format_quantity

if TYPE_CHECKING:  # only read here, so RunResult.report() can import this module back
    from .result import RunResult

CRITICAL_PATH_SHOWN = 50


def summary(result: RunResult) -> dict[str, Any]:
    s, m = result.scenario, result.metrics
    return {
        "scenario": s.name,
        "variant": s.variant,
        "seed": s.seed,
        "scheduler": s.scheduler,
        "network": s.network,
        "tasks": s.graph.size,
        "edges": s.graph.num_edges,
        "makespan_s": m.makespan_s,
        "critical_path_s": m.critical_path_s,
        "critical_path_tasks": list(m.critical_path[:CRITICAL_PATH_SHOWN]),
        "critical_path_length": len(m.critical_path),
        "total_work_s": m.total_work_s,
        "best_single_unit": m.best_single_unit,
        "effective_capacity": m.capacity,
        "speedup": m.speedup,
        "parallel_efficiency": m.parallel_efficiency,
        "transfer_bytes": m.transfer_bytes,
        "energy_j": result.energy.total_j,
        "energy": {"compute_j": result.energy.compute_j, "idle_j": result.energy.idle_j,
                   "network_j": result.energy.network_j},
        "cost_usd": result.cost_usd,
        "units": [{"name": u.name, "tasks": u.tasks, "busy_s": u.busy_s,
                   "utilization": u.utilization} for u in m.units],
        "links": [{"name": c.name, "transfers": c.transfers, "bytes": c.bytes,
                   "busy_s": c.busy_s, "utilization": c.utilization}
                  for c in m.channels if c.transfers],
        "formulas": [{"name": r.name, "formula": r.formula, "predicts": r.predicts,
                      "prediction": r.prediction, "simulated": r.simulated,
                      "relative_error": r.relative_error, "within_bounds": r.within_bounds,
                      "proven": r.proven, "note": r.note} for r in result.formulas],
        "claims": _claims(result),
        "memory": _memory(result),
        "breakdown": asdict(result.breakdown),
        "step": None if result.step_metrics is None else asdict(result.step_metrics),
        "symmetry": None if s.step is None else {"tp": s.step.config.tp_mode,
                                                 "dp": s.step.config.dp_mode},
    }


def _memory(result: RunResult) -> list[dict[str, Any]]:
    """Per pipeline stage, the bytes one unit holds (DNN workloads only)."""
    step = result.scenario.step
    if step is None:
        return []
    return [{"where": where, "weights_bytes": m.weights_bytes, "gradients_bytes": m.gradients_bytes,
             "optimizer_bytes": m.optimizer_bytes, "activations_bytes": m.activations_bytes,
             "total_bytes": m.total_bytes, "notes": notes}
            for (where, m), notes in zip(step.memory, _notes(result), strict=True)]


def _notes(result: RunResult) -> list[list[str]]:
    """Per memory row, what its terms assume (parallel.plan_memory.memory_notes); a
    recommender's rows, one per unit, share its one stage's."""
    step = result.scenario.step
    assert step is not None
    notes = memory_notes(step.config)
    return [notes[min(i, len(notes) - 1)] for i in range(len(step.memory))]


def _claims(result: RunResult) -> list[dict[str, Any]]:
    s, m = result.scenario, result.metrics
    measured = {"makespan_s": m.makespan_s, "speedup": m.speedup, "energy_j": result.energy.total_j}
    out = []
    for key, claimed in sorted(s.claims.items()):
        simulated = measured.get(key)
        out.append({"key": key, "claimed": claimed, "simulated": simulated,
                    "relative_error": None if not simulated else relative_error(claimed, simulated),
                    "source": s.claim_source})
    return out


def _fmt(value: float | None, predicts: str) -> str:
    if value is None:
        return "—"
    return format_quantity(value, "time") if predicts.endswith("_s") else f"{value:.4g}"


def render(result: RunResult) -> str:
    """The terminal report: headline numbers, the formula table, busiest resources."""
    s, m = result.scenario, result.metrics
    title = s.name + (f" [{s.variant}]" if s.variant else "")
    lines = [
        f"== {title} ==",
        f"{s.graph.size} tasks, {s.graph.num_edges} edges on {s.cluster.size} units; "
        f"scheduler {s.scheduler}, network {s.network}",
        f"makespan         {_fmt(m.makespan_s, '_s')}",
        f"critical path    {_fmt(m.critical_path_s, '_s')} ({len(m.critical_path)} tasks)",
        f"total work W     {_fmt(m.total_work_s, '_s')} on one {m.best_single_unit}",
        f"capacity C_eff   {m.capacity:.4g} x {m.best_single_unit}",
        f"speed-up         {m.speedup:.4g}   parallel efficiency {m.parallel_efficiency:.1%}",
        f"data moved       {format_quantity(m.transfer_bytes, 'bytes')}",
        f"energy           {format_quantity(result.energy.total_j, 'energy')} per step"
        + (f", cost ${result.cost_usd:.4g} at the units' hourly price" if result.cost_usd else ""),
        "",
        f"{'formula':<26}{'predicts':<22}{'prediction':>12}{'simulated':>12}{'rel.err':>9}  verdict",
    ]
    for r in result.formulas:
        err = "—" if r.relative_error is None else f"{r.relative_error:+.1%}"
        lines.append(f"{r.name:<26}{r.predicts:<22}{_fmt(r.prediction, r.predicts):>12}"
                     f"{_fmt(r.simulated, r.predicts):>12}{err:>9}  {r.verdict}")
    for c in _claims(result):
        err = "—" if c["relative_error"] is None else f"{c['relative_error']:+.1%}"
        lines.append(f"{'claim: ' + c['source']:<26}{c['key']:<22}"
                     f"{_fmt(c['claimed'], c['key']):>12}{_fmt(c['simulated'], c['key']):>12}"
                     f"{err:>9}")
    lines += _memory_lines(result) + _step_lines(result)
    busiest = sorted(m.units, key=lambda u: -u.utilization)[:4]
    lines += ["", "busiest units: " + ", ".join(f"{u.name} {u.utilization:.0%}" for u in busiest)]
    links = sorted((c for c in m.channels if c.transfers), key=lambda c: -c.utilization)[:3]
    if links:
        lines.append("busiest links: " + ", ".join(f"{c.name} {c.utilization:.0%}" for c in links))
    return "\n".join(lines)


def _memory_lines(result: RunResult) -> list[str]:
    step = result.scenario.step
    if step is None:
        return []
    cfg = step.config

    def b(x: float) -> str:
        return format_quantity(x, "bytes")

    lines = ["", f"dp {cfg.dp} x pp {cfg.pp} x tp {cfg.tp}"
             f"{f' x cp {cfg.cp}' if cfg.cp > 1 else ''}, {cfg.microbatches} micro-batches of "
             f"{cfg.microbatch_size}, {cfg.schedule}, tp_mode {cfg.tp_mode}"
             f"{', dp_mode mirrored' if cfg.dp_mode == 'mirrored' else ''}"
             f"{f', zero {cfg.zero}' if cfg.zero else ''}; memory per unit:"]
    notes = _notes(result)
    for (where, mem), note in zip(step.memory[:8], notes, strict=False):
        lines.append(f"  {where:<22} {b(mem.total_bytes):>9} = weights {b(mem.weights_bytes)}"
                     f" + grads {b(mem.gradients_bytes)} + optimizer {b(mem.optimizer_bytes)}"
                     f" + activations {b(mem.activations_bytes)} ({note[-1]})")
    if notes and len(notes[0]) > 1:
        lines.append("  " + "; ".join(notes[0][:-1]))
    if len(step.memory) > 8:
        lines.append(f"  ... {len(step.memory) - 8} more stages in summary.json")
    return lines


def _step_lines(result: RunResult) -> list[str]:
    """Where the mean unit's step goes and, for a DNN step, throughput and utilisation."""
    b, sm = result.breakdown, result.step_metrics

    def t(x: float) -> str:
        return _fmt(x, "_s")

    lines = ["", f"step per unit    compute {t(b.compute_s)} + exposed comm {t(b.exposed_comm_s)}"
             f" + bubble {t(b.bubble_s)} + other {t(b.other_s)} (mean unit)"]
    if sm is None:
        return lines
    tokens = "" if sm.tokens_per_s is None else f", {sm.tokens_per_s:.4g} tokens/s"
    lines += [f"throughput       {sm.samples_per_s:.4g} samples/s{tokens}",
              f"utilisation      MFU {sm.mfu:.1%}, HFU {sm.hfu:.1%} of "
              f"{format_quantity(sm.peak_flop_rate, 'flop_rate')} peak; most exposed comm "
              f"{t(sm.exposed_comm_max_s)} on {sm.exposed_comm_unit or '—'}"]
    return lines


def render_comparison(results: list[RunResult]) -> str:
    """One line per variant: the makespan beside its bounds, seed formula and claims."""
    w = max(18, *(len(r.scenario.variant) + 2 for r in results))
    lines = [f"== {results[0].scenario.name}: variants side by side ==",
             f"{'variant':<{w}}{'makespan':>11}{'lower bnd':>11}{'seed T_p':>11}"
             f"{'speed-up':>10}{'par.eff':>9}{'claimed':>11}"]
    for r in results:
        rows = {row.name: row for row in r.formulas}
        m = r.metrics
        lines.append(
            f"{r.scenario.variant or '(base)':<{w}}{_fmt(m.makespan_s, '_s'):>11}"
            f"{_fmt(rows['work/span lower bound'].prediction, '_s'):>11}"
            f"{_fmt(rows['seed parallel time'].prediction, '_s'):>11}"
            f"{m.speedup:>10.3g}{m.parallel_efficiency:>9.1%}"
            f"{_fmt(r.scenario.claims.get('makespan_s'), '_s'):>11}")
    return "\n".join(lines)
