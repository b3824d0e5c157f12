"""What a run says, as summary.json (documented in docs/results.md) and as text."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from . import __version__
from .formulas import relative_error
from .parallel.plan_memory import memory_notes
from .quantities import format_quantity

if TYPE_CHECKING:  # only read here, so RunResult.report() can import this module back
    from .result import RunResult

CRITICAL_PATH_SHOWN = 50


def summary(result: RunResult) -> dict[str, Any]:
    s, m = result.scenario, result.metrics
    return {
        "leptonsim_version": __version__,
        "scenario": s.name,
        "variant": s.variant,
        "file": s.file,
        "settings": [{"key": k, "value": v} for k, v in s.settings],
        "run": _inputs(result),
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


def _inputs(result: RunResult) -> dict[str, Any]:
    """What defines the run, beside the file: the units by kind and, for a DNN step, the
    model, batch, precision and split."""
    s = result.scenario
    units: dict[str, int] = {}
    for u in s.cluster.units:
        units[_kind(u.name)] = units.get(_kind(u.name), 0) + 1
    out: dict[str, Any] = {"units": [{"kind": k, "count": n} for k, n in units.items()]}
    if s.step is not None:
        cfg = s.step.config
        out.update(model=s.step.model.name, training=cfg.training, batch=cfg.batch,
                   microbatches=cfg.microbatches, dtype_bytes=cfg.dtype_bytes,
                   dp=cfg.dp, pp=cfg.pp, tp=cfg.tp, cp=cfg.cp, ep=cfg.ep, sp=cfg.sp,
                   zero=cfg.zero, schedule=cfg.schedule, recompute=cfg.recompute)
    return out


def _kind(unit: str) -> str:
    """A unit's kind: its name without the index the cluster gave it (gpu3: gpu)."""
    return unit.rstrip("0123456789") or unit


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


def render(result: RunResult, formulas: bool = True) -> str:
    """The terminal report: the answer first (step time, throughput, MFU, memory,
    what limits it, speed-up and what it is against), then the memory plan, the seed's
    formulas and the bounds with what each verdict means (unless `formulas` is False),
    and the busiest resources."""
    s, m = result.scenario, result.metrics
    title = s.name + (f" [{s.variant}]" if s.variant else "")
    lines = [f"== {title} ==",
             f"{_what(result)}; {s.graph.size:,} tasks, scheduler {s.scheduler}, network "
             f"{s.network}", *_answer_lines(result)]
    lines += _memory_lines(result)
    if formulas:
        lines += _formula_lines(result)
    busiest = sorted(m.units, key=lambda u: -u.utilization)[:4]
    lines += ["", "busiest units: " + ", ".join(f"{u.name} {u.utilization:.0%}" for u in busiest)]
    links = sorted((c for c in m.channels if c.transfers), key=lambda c: -c.utilization)[:3]
    if links:
        lines.append("busiest links: " + ", ".join(f"{c.name} {c.utilization:.0%}" for c in links))
    return "\n".join(lines)


def _what(result: RunResult) -> str:
    """What ran on what: the model, its batch and split, or the task graph's size."""
    s = result.scenario
    on = " + ".join(f"{u['count']} x {u['kind']}" for u in _inputs(result)["units"])
    if s.step is None:
        return f"a task graph on {on}"
    cfg = s.step.config
    split = f"dp {cfg.dp} x pp {cfg.pp} x tp {cfg.tp}" + (f" x cp {cfg.cp}" if cfg.cp > 1 else "")
    phase = "training step" if cfg.training else "inference pass"
    return f"{s.step.model.name} {phase}, batch {cfg.batch}, {split} on {on}"


def _answer_lines(result: RunResult) -> list[str]:
    """How long, how fast, how efficient, what limits it."""
    m, b, sm = result.metrics, result.breakdown, result.step_metrics
    t = _time
    step = "step time" if result.scenario.step is not None else "makespan"
    parts = {"compute": b.compute_s, "exposed comm": b.exposed_comm_s, "bubble": b.bubble_s,
             "other": b.other_s}
    lines = [f"{step:<17}{t(m.makespan_s)} = " + " + ".join(
        f"{k} {t(v)}" for k, v in parts.items()) + " (mean unit)"]
    if sm is not None:
        tokens = "" if sm.tokens_per_s is None else f", {sm.tokens_per_s:,.0f} tokens/s"
        lines += [f"{'throughput':<17}{_rate(sm.samples_per_s)} samples/s{tokens}",
                  f"{'MFU':<17}{sm.mfu:.1%} of {format_quantity(sm.peak_flop_rate, 'flop_rate')}"
                  f" peak (HFU {sm.hfu:.1%}, recompute included)"]
    if (mem := _peak_memory(result)) is not None:
        lines.append(f"{'memory per unit':<17}{mem}")
    total = sum(parts.values())
    if total > 0:
        shares = ", ".join(f"{k} {v / total:.0%}" for k, v in
                           sorted(parts.items(), key=lambda kv: -kv[1]) if v > 0)
        worst = ("" if sm is None or sm.exposed_comm_max_s <= 0 else
                 f"; most exposed comm {t(sm.exposed_comm_max_s)} on {sm.exposed_comm_unit}")
        lines.append(f"{'limited by':<17}{shares} of the mean unit's step{worst}")
    lines += [f"{'speed-up':<17}{m.speedup:.3g} over one {m.best_single_unit} running every task "
              f"of this graph in turn ({t(m.total_work_s)}, no transfers); parallel efficiency "
              f"{m.parallel_efficiency:.1%} of {_units(m.capacity)} units",
              f"{'energy':<17}{format_quantity(result.energy.total_j, 'energy')}"
              + (" per step" if result.scenario.step is not None else "")
              + (f", cost ${result.cost_usd:.4g} at the units' hourly price"
                 if result.cost_usd else ""),
              f"{'data moved':<17}{format_quantity(m.transfer_bytes, 'bytes')}"]
    return lines


def _peak_memory(result: RunResult) -> str | None:
    step = result.scenario.step
    if step is None or not step.memory:
        return None
    where, mem = max(step.memory, key=lambda wm: wm[1].total_bytes)
    return f"{format_quantity(mem.total_bytes, 'bytes')} at most, in {where}"


_VERDICTS = {
    "holds": "holds: a proven bound, and the schedule is inside it",
    "VIOLATED": "VIOLATED: a proven bound broken, a bug to report",
    "inside, unproven": "inside, but the bound is not proven for this run",
    "outside, unproven": "outside, where the bound is not proven for this run",
    "estimate": "an estimate, not a bound",
    "not simulated": "nothing simulated to compare",
}
"""Each FormulaRow.verdict in words, for the report (summary.json keeps the verdict)."""


def _formula_lines(result: RunResult) -> list[str]:
    """The seed's formulas and the bounds beside the simulation, each verdict in words."""
    lines = ["", "the seed's formulas and the bounds (--quiet-formulas hides them):",
             f"  {'formula':<26}{'prediction':>12}{'simulated':>12}{'rel.err':>9}  what it means"]
    for r in result.formulas:
        err = "—" if r.relative_error is None else f"{r.relative_error:+.1%}"
        lines.append(f"  {r.name:<26}{_fmt(r.prediction, r.predicts):>12}"
                     f"{_fmt(r.simulated, r.predicts):>12}{err:>9}  {_VERDICTS[r.verdict]}")
    for c in _claims(result):
        err = "—" if c["relative_error"] is None else f"{c['relative_error']:+.1%}"
        lines.append(f"  {'claim: ' + c['source'] + ' ' + c['key']:<26}"
                     f"{_fmt(c['claimed'], c['key']):>12}{_fmt(c['simulated'], c['key']):>12}"
                     f"{err:>9}")
    return lines


def _time(x: float) -> str:
    return _fmt(x, "_s")


def _units(c: float) -> str:
    """C_eff as people read it: 10,000 units, not 1e+04; 2.5 where units differ."""
    return f"{round(c):,}" if abs(c - round(c)) < 1e-9 else f"{c:.4g}"


def _rate(x: float) -> str:
    """A rate per second as people read it: 706,000, not 7.06e+05."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


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


def render_comparison(results: list[RunResult]) -> str:
    """One line per variant: a column for each key the variants set differently, then
    step time, throughput and MFU (for a DNN step), speed-up, the makespan's lower bound,
    the seed's T_p and any claimed makespan."""
    keys = _differing(results)
    cols: list[tuple[str, Any]] = [(k.rsplit(".", 1)[-1], lambda r, k=k: _setting(r, k))
                                   for k in keys]
    steps = all(r.step_metrics is not None for r in results)
    cols += [("step time" if steps else "makespan", lambda r: _time(r.metrics.makespan_s))]
    if steps:
        cols += [("samples/s", lambda r: _rate(r.step_metrics.samples_per_s)),
                 ("MFU", lambda r: f"{r.step_metrics.mfu:.1%}")]
    cols += [("speed-up", lambda r: f"{r.metrics.speedup:.3g}"),
             ("par.eff", lambda r: f"{r.metrics.parallel_efficiency:.1%}"),
             ("lower bnd", lambda r: _time(_row(r, "work/span lower bound"))),
             ("seed T_p", lambda r: _time(_row(r, "seed parallel time")))]
    if any(r.scenario.claims for r in results):
        cols += [("claimed", lambda r: _fmt(r.scenario.claims.get("makespan_s"), "_s"))]
    rows = [[r.scenario.variant or "(base)", *(f(r) for _, f in cols)] for r in results]
    head = ["variant", *(n for n, _ in cols)]
    widths = [max(len(x) for x in col) + 2 for col in zip(head, *rows, strict=True)]
    fmt = [(w, "<" if i == 0 else ">") for i, w in enumerate(widths)]
    table = ["".join(f"{x:{a}{w}}" for x, (w, a) in zip(line, fmt, strict=True)).rstrip()
             for line in (head, *rows)]
    return "\n".join([f"== {results[0].scenario.name}: variants side by side ==", *table])


def _differing(results: list[RunResult]) -> list[str]:
    """The keys some variant sets to a value another does not, in the order first set."""
    keys: dict[str, None] = {}
    for r in results:
        keys.update((k, None) for k, _ in r.scenario.settings)
    return [k for k in keys if len({repr(_setting(r, k)) for r in results}) > 1]


def _setting(result: RunResult, key: str) -> str:
    value = dict(result.scenario.settings).get(key, "—")
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _row(result: RunResult, name: str) -> float:
    return next(r.prediction for r in result.formulas if r.name == name)
