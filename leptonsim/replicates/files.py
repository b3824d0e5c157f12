"""The replicates' report and files: samples.csv (a row per sample), samples.json (each
output's Summary) and samples.png (the makespans' histogram, the seed's T_p and the
work/span bound marked), published as one set (files.publish)."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..files import atomic_write, json_text, publish
from ..quantities import format_quantity
from .run import OUTPUTS, Replicates
from .stats import CONFIDENCE

__all__ = ["render", "summary", "write_replicates"]

KINDS = {"s": "time", "J": "energy"}


def _fmt(value: float, unit: str) -> str:
    return format_quantity(value, KINDS[unit]) if unit in KINDS else f"{value:.4g}"


def render(reps: Replicates) -> str:
    """The terminal report of `leptonsim run --samples N`."""
    s, n = reps.scenario, len(reps.rows)
    seed = s.noise.seed if s.noise is not None else s.seed
    pct = next(iter(reps.summaries.values())).precision * 100
    lines = [f"== {s.label}: {n} samples (noise seed {seed}) ==",
             f"{'output':<24}{'median':>11}{'p5':>11}{'p95':>11}   "
             f"mean [{CONFIDENCE:.0%} bootstrap CI]{'':8}samples for ±{pct:g}%"]
    for key, (label, unit) in OUTPUTS.items():
        m = reps.summaries[key]
        unit = unit or reps.throughput_unit
        name = label + ("" if unit in KINDS else f" ({unit})")
        cells = "".join(f"{_fmt(v, unit):>11}" for v in (m.median, m.p5, m.p95))
        ci = f"{_fmt(m.mean, unit)} [{_fmt(m.ci_low, unit)}, {_fmt(m.ci_high, unit)}]"
        lines.append(f"{name:<24}{cells}   {ci:<36}{m.needed:>6,}")
    tp, bound = np.median(reps.column("seed_tp_s")), np.median(reps.column("work_span_s"))
    lines.append(f"seed T_p (median) {_fmt(float(tp), 's')}, work/span bound (median) "
                 f"{_fmt(float(bound), 's')}: the bound holds in "
                 f"{'every' if reps.bound_holds else 'NOT every'} sample")
    return "\n".join(lines)


def summary(reps: Replicates) -> dict[str, object]:
    s = reps.scenario
    return {"scenario": s.name, "variant": s.variant, "samples": len(reps.rows),
            "noise_seed": s.noise.seed if s.noise is not None else s.seed,
            "confidence": CONFIDENCE, "throughput_unit": reps.throughput_unit,
            "work_span_bound_holds": reps.bound_holds,
            "outputs": {k: asdict(m) for k, m in reps.summaries.items()}}


def _csv(reps: Replicates, path: Path) -> None:
    def write(f: object) -> None:
        w = csv.writer(f)  # type: ignore[arg-type]
        cols = reps.rows[0].columns()
        w.writerow(cols)
        w.writerows([repr(getattr(r, c)) if c != "sample" else r.sample for c in cols]
                    for r in reps.rows)
    atomic_write(path, write)


def histogram(reps: Replicates):  # type: ignore[no-untyped-def]
    """The makespans' histogram; the seed's T_p and the work/span bound (medians over the
    samples) as vertical lines, the bound's p5-p95 band shaded."""
    from matplotlib.figure import Figure

    from ..figure_style import COMPUTE, FONT, GREY, WIDTH, time_scale

    span = reps.column("makespan_s")
    scale, unit = time_scale(float(span.max()))
    fig = Figure(figsize=(WIDTH * 0.6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.hist(span * scale, bins=min(50, max(5, len(span) // 4)), color=COMPUTE, alpha=0.8,
            label=f"simulated makespan ({len(span)} samples)")
    bound, tp = reps.column("work_span_s") * scale, reps.column("seed_tp_s") * scale
    ax.axvspan(*np.percentile(bound, [5, 95]), color=GREY, alpha=0.15, label="bound, p5-p95")
    ax.axvline(float(np.median(bound)), color=GREY, ls="--", label="work/span bound max(W/C, CP)")
    ax.axvline(float(np.median(tp)), color="k", ls=":", label="seed T_p = min(ΣT_i, T_m)")
    ax.set_xlabel(f"makespan ({unit})")
    ax.set_ylabel("samples")
    ax.set_title(reps.scenario.label, fontsize=FONT["title"])
    ax.legend(fontsize=FONT["legend"])
    return fig


def write_replicates(reps: Replicates, out_dir: Path | str) -> list[Path]:
    """samples.csv, samples.json and samples.png as one set in `out_dir`."""
    from ..figure_style import save_figure

    text = json_text(summary(reps), "samples.json")

    def build(staging: Path) -> None:
        _csv(reps, staging / "samples.csv")
        atomic_write(staging / "samples.json", lambda f: f.write(text))
        save_figure(histogram(reps), staging / "samples.png")

    return publish(out_dir, "samples", build)
