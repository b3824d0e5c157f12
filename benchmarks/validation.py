"""Validation suite: predicted vs measured training steps on this machine (issue 3,
part 5). Targets: median |end-to-end error| <= 5 %, maximum <= 10 %.

Workloads: seed_cnn at batch 32 and 128, a transformer block (LayerNorm, attention,
LayerNorm, Dense, GELU, Dense; seq 64, hidden 128), a small LSTM language model. Each
runs on 1 worker, on 2 workers data-parallel (dp 2) and on 2 workers as a pipeline
(pp 2, 4 micro-batches, 1F1B), float32, Adam; `--repeats` executions, medians.

Calibration first, and only on data the validation never uses: the machine profile
(`leptonsim calibrate`: synthetic GEMMs, a copy, no-op tasks, transfers), then the
kernel calibration (chains of every layer's forward and backward alone, at the
validated micro-batch sizes and at sizes around them that no run uses, and optimizer
updates; once on 1 worker, once on 2 workers at the same time, for the 1- and
2-worker runs) and the transfers (synthetic: what a
message costs the sender's and the receiver's core, and the latency left between
them; also the older link to an idle worker, for the "copies on the link" ablation).
The step is predicted with each layer as profiled at its micro-batch size (the
verdict), and, as ablations, with the layers interpolated from the other sizes only
(how the model generalises to sizes nobody measured) and with per-kind models only.
Then the 12 runs, each execution through a gate that waits for a quiet machine and
redoes disturbed runs (leptonsim.measure.quiet), interleaved in rounds (every run
once per round) so that a slow minute of the machine lands on one repeat of several
runs, which their medians discard, not on every repeat of one run.

    python benchmarks/validation.py [--repeats 5] [--profile FILE] [--max-wait 20]
        [--budget 480] [--only LABEL] [--out FILE] [--figures DIR]

Writes benchmarks/results/validation.json and docs/figures/validation/*.png (or --out,
--figures).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leptonsim.measure.calibrate import calibrate, load_profile, profile_toml  # noqa: E402
from leptonsim.measure.calibration import (  # noqa: E402
    calibration_batches,
    fit,
    measure,
    measure_endpoints,
    measure_link,
)
from leptonsim.measure.quiet import QuietGate  # noqa: E402
from leptonsim.models import LayerStack, Model  # noqa: E402
from leptonsim.ops import GELU, Dense, LayerNorm, MultiHeadSelfAttention  # noqa: E402
from leptonsim.parallel.config import ParallelConfig  # noqa: E402
from leptonsim.validate.compare import predict  # noqa: E402
from leptonsim.validate.report import calibration_json, to_json  # noqa: E402
from leptonsim.validate.run import Validation, model_setup, run_setups  # noqa: E402
from leptonsim.zoo import get_model, lstm_lm  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "validation.json"
FIGURES = ROOT / "docs" / "figures" / "validation"
CONFIGS = {"1 worker": (1, 1, 1), "dp 2": (2, 1, 1), "pp 2": (1, 2, 4)}  # dp, pp, micro-batches
TARGET_MEDIAN, TARGET_MAX = 0.05, 0.10
ABLATION_TIERS = ("interpolated", "kind")  # cost-model tiers reported beside "profiled"


def transformer_block() -> Model:
    s = LayerStack("transformer_block", (64, 128))
    s.add("ln1", LayerNorm())
    s.add("attention", MultiHeadSelfAttention(4))
    s.add("ln2", LayerNorm())
    s.add("fc", Dense(512))
    s.add("gelu", GELU())
    s.add("proj", Dense(128))
    return s.build()


def workloads() -> list[tuple[str, Model, int]]:
    """(label, model, global batch)."""
    lstm = replace(lstm_lm(vocab=2000, embed=128, hidden=128, layers=2, seq_len=32), name="lstm")
    cnn = get_model("seed_cnn")
    return [("seed_cnn b32", cnn, 32), ("seed_cnn b128", cnn, 128),
            ("transformer_block b32", transformer_block(), 32), ("lstm b32", lstm, 32)]


def config(batch: int, name: str) -> ParallelConfig:
    dp, pp, mb = CONFIGS[name]
    return ParallelConfig(dp=dp, pp=pp, batch=batch, microbatches=mb, dtype_bytes=4,
                          optimizer="adam")


def kernel_calibration(profile: Any, repeats: int, gate: QuietGate, workers: int) -> Any:
    """Each model's layers at the validated micro-batch sizes and around them, on
    `workers` workers at once."""
    validated: dict[str, set[int]] = {}
    models: dict[str, Model] = {}
    for _, model, batch in workloads():
        models[model.name] = model
        validated.setdefault(model.name, set()).update(
            config(batch, c).microbatch_size for c in CONFIGS)
    points, batches = [], {}
    for name, model in models.items():
        batches[name] = calibration_batches(sorted(validated[name]))
        print(f"kernel calibration: {name} at micro-batch {batches[name]} on {workers} "
              f"worker(s) (validated: {sorted(validated[name])})", flush=True)
        points += measure(profile, model, batches[name], repeats, config(1, "1 worker"),
                          gate=gate, workers=workers)
    return replace(fit(points), batches=batches)


def run_suite(profile: Any, calibrations: dict[int, Any], repeats: int, gate: QuietGate,
              only: str = "") -> tuple[list[Validation], dict[str, float]]:
    """The runs whose label contains `only`, and each one's link-only makespan. The
    executions are interleaved: every run once per round, `repeats` rounds."""
    setups, configs = [], []
    for label, model, batch in workloads():
        for name in CONFIGS:
            if only in f"{label}, {name}":
                cfg = config(batch, name)
                setups.append((f"{label}, {name}", model_setup(model, cfg, profile,
                                                               calibrations[cfg.units])))
                configs.append((model, cfg))
    results = run_setups(setups, repeats, gate, progress=lambda r: print(
        f"round {r}/{repeats} of {len(setups)} runs done", flush=True))
    print(f"{'run':<34} {'predicted':>9} {'measured':>9}  error   (interpolated) "
          "(kind models only) (copies on the link)")
    link_only = {}
    for v, (model, cfg) in zip(results, configs, strict=True):
        c = v.comparison
        link_only[v.label] = link_only_makespan(v, model, cfg)
        print(f"{v.label:<34} {c.predicted_makespan_s * 1e3:7.2f}ms {c.measured_makespan_s * 1e3:7.2f}"
              f"ms {c.error * 100:+6.1f}%   ({v.error_with('interpolated') * 100:+6.1f}%) "
              f"({v.error_with('kind') * 100:+6.1f}%) "
              f"({(link_only[v.label] / c.measured_makespan_s - 1) * 100:+6.1f}%)", flush=True)
    return results, link_only


def link_only_makespan(v: Validation, model: Model, cfg: ParallelConfig) -> float:
    """The step simulated as before the endpoint costs: transfers on a DMA-like link
    (the measured link to an idle worker, copies included), the units left free."""
    cal = v.setup.cost.calibration
    if cal.endpoints is None:
        return v.comparison.predicted_makespan_s
    s = model_setup(model, cfg, v.setup.cost.profile, replace(cal, endpoints=None))
    return predict(s.graph, s.cluster, s.plan, s.cost).makespan_s


def by_kind(results: list[Validation]) -> dict[str, dict[str, float]]:
    """Per-task errors of every run pooled by task kind."""
    pooled: dict[str, list[tuple[float, float, float]]] = {}
    for v in results:
        c = v.comparison
        err = c.task_errors()
        for i, kind in enumerate(v.kinds):
            if np.isfinite(err[i]):
                pooled.setdefault(kind, []).append(
                    (err[i], c.predicted_task_s[i], c.measured_task_s[i]))
    out = {}
    for kind, rows in sorted(pooled.items()):
        e, p, m = (np.array(col) for col in zip(*rows, strict=True))
        out[kind] = {"tasks": len(rows), "median_abs_error": float(np.median(np.abs(e))),
                     "median_error": float(np.median(e)),
                     "time_weighted_abs_error": float(np.abs(p - m).sum() / m.sum()),
                     "measured_s": float(m.sum())}
    return out


def summary(results: list[Validation], link_only: dict[str, float],
            gate: QuietGate) -> dict[str, Any]:
    errors = [abs(v.comparison.error) for v in results]
    med, worst = statistics.median(errors), max(errors)
    seen = [s for v in results for s in v.comparison.seen]
    out: dict[str, Any] = {"median_abs_error": med, "max_abs_error": worst,
                           "median_target_met": med <= TARGET_MEDIAN,
                           "max_target_met": worst <= TARGET_MAX,
                           "kept_runs": len(seen),
                           "kept_runs_disturbed": sum(gate.disturbed(s) for s in seen)}
    ablations = {tier: [abs(v.error_with(tier)) for v in results] for tier in ABLATION_TIERS}
    ablations["copies_on_the_link"] = [abs(link_only[v.label] / v.comparison.measured_makespan_s
                                           - 1) for v in results]
    for name, e in ablations.items():
        out[name] = {"median_abs_error": statistics.median(e), "max_abs_error": max(e),
                     "median_target_met": statistics.median(e) <= TARGET_MEDIAN,
                     "max_target_met": max(e) <= TARGET_MAX}
    return out


def error_figure(labels: list[str], err: np.ndarray, interpolated: np.ndarray) -> Any:
    """Per run, the end-to-end error (%) of the verdict beside the interpolated tier's."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 6.3), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(err))
    ax.barh(y - 0.2, err, height=0.4, label="layers profiled at the step's micro-batch (verdict)",
            color=["#2ca02c" if abs(e) <= 5 else "#ff7f0e" if abs(e) <= 10 else "#d62728"
                   for e in err])
    ax.barh(y + 0.2, interpolated, height=0.4, color="0.75", hatch="//", edgecolor="0.4",
            label="layers interpolated from other micro-batch sizes (ablation)")
    for x, style in ((5, "--"), (10, ":")):
        for sign in (-1, 1):
            ax.axvline(sign * x, color="black", linestyle=style, linewidth=1)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)
    ax.set(xlabel="end-to-end error, (predicted - measured) / measured (%)",
           title="Predicted vs measured step time (median of repeats); lines at ±5 % and ±10 %")
    return fig


def figures(results: list[Validation], where: Path) -> list[Path]:
    from leptonsim.plots import save_figure
    from leptonsim.validate.figures import gantt_overlay, scatter

    where.mkdir(parents=True, exist_ok=True)
    err = np.array([v.comparison.error * 100 for v in results])
    interpolated = np.array([v.error_with("interpolated") * 100 for v in results])
    written = [save_figure(error_figure([v.label for v in results], err, interpolated),
                           where / "end_to_end_error.png")]
    pred = np.concatenate([v.comparison.predicted_task_s[v.comparison.compute] for v in results])
    meas = np.concatenate([v.comparison.measured_task_s[v.comparison.compute] for v in results])
    kinds = [k for v in results for k, m in zip(v.kinds, v.comparison.compute, strict=True) if m]
    written.append(save_figure(scatter(pred, meas, kinds, "All validation runs: task times, "
                                       "predicted vs measured"), where / "task_scatter.png"))
    for v in results:
        if v.setup.cluster.size > 1:
            name = v.label.replace(", ", "_").replace(" ", "_")
            written.append(save_figure(gantt_overlay(v.comparison.predicted,
                                                     v.comparison.median_trace,
                                                     f"{v.label}: simulated and measured"),
                                       where / f"gantt_{name}.png"))
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--calibration-repeats", type=int, default=5,
                    help="forward/backward passes per calibration micro-batch size")
    ap.add_argument("--profile", help="use this profile instead of calibrating now")
    ap.add_argument("--max-wait", type=float, default=20.0,
                    help="seconds to wait for a quiet machine before each run")
    ap.add_argument("--budget", type=float, default=480.0,
                    help="seconds of each phase (calibration, then the runs) after which "
                         "runs are no longer waited for or redone")
    ap.add_argument("--only", default="", help="run only the runs whose label contains this")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    ap.add_argument("--figures", type=Path, default=FIGURES, help="directory for the figures")
    args = ap.parse_args()
    began = time.perf_counter()
    date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    gate = QuietGate(max_wait_s=args.max_wait, deadline=time.monotonic() + args.budget)
    gate.wait()
    profile = load_profile(args.profile) if args.profile else calibrate(progress=True)
    calibrations = {w: kernel_calibration(profile, args.calibration_repeats, gate, w)
                    for w in sorted({config(32, c).units for c in CONFIGS})}
    link, ends = measure_link(gate=gate), measure_endpoints(gate=gate)
    print(f"link to an idle worker: {link[0] * 1e6:.1f} us + n / {link[1] / 1e9:.2f} GB/s "
          f"(profile's ping-pong: {profile.link_latency_s * 1e6:.1f} us + n / "
          f"{profile.link_bandwidth / 1e9:.2f} GB/s); endpoints: send "
          f"{ends.send_s * 1e6:.1f} us + n / {ends.send_bandwidth / 1e9:.2f} GB/s, receive "
          f"{ends.recv_s * 1e6:.1f} us + n / {ends.recv_bandwidth / 1e9:.2f} GB/s, latency "
          f"{ends.latency_s * 1e6:.1f} us", flush=True)
    calibrations = {w: replace(c, link=link, endpoints=ends) if w > 1 else c
                    for w, c in calibrations.items()}
    # the runs get a budget of their own: a slow calibration must not leave them ungated
    gate = replace(gate, deadline=time.monotonic() + args.budget)
    results, link_only = run_suite(profile, calibrations, args.repeats, gate, args.only)
    report = {"date": date, "command": " ".join(["python", "benchmarks/validation.py", *sys.argv[1:]]),
              "repeats": args.repeats, "machine": profile.machine, "profile_toml": profile_toml(profile),
              "kernel_calibration": {w: calibration_json(c) for w, c in calibrations.items()},
              "calibration_points": {w: [vars(p) for p in c.points]
                                     for w, c in calibrations.items()},
              "summary": summary(results, link_only, gate), "by_kind": by_kind(results),
              "runs": [{**{k: val for k, val in to_json(v).items() if k != "calibration"},
                        "copies_on_the_link_makespan_s": link_only[v.label],
                        "copies_on_the_link_error":
                            link_only[v.label] / v.comparison.measured_makespan_s - 1}
                       for v in results],
              "wall_s": 0.0}
    written = figures(results, args.figures)
    report["wall_s"] = time.perf_counter() - began
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    s = report["summary"]
    print(f"\nmedian |error| {s['median_abs_error']:.1%} (target <= 5%: "
          f"{'met' if s['median_target_met'] else 'NOT met'}), max |error| "
          f"{s['max_abs_error']:.1%} (target <= 10%: {'met' if s['max_target_met'] else 'NOT met'})"
          + "".join(f"; {name.replace('_', ' ')}: median {s[name]['median_abs_error']:.1%}, "
                    f"max {s[name]['max_abs_error']:.1%}"
                    for name in (*ABLATION_TIERS, "copies_on_the_link")))
    print(f"{s['kept_runs_disturbed']} of {s['kept_runs']} kept executions were disturbed "
          "(the gate's budget ran out before they could be redone)")
    for kind, d in report["by_kind"].items():
        print(f"  {kind:<20} median |error| {d['median_abs_error']:6.1%}  time-weighted "
              f"{d['time_weighted_abs_error']:6.1%}  tasks {d['tasks']}")
    print(f"wrote {args.out} and {len(written)} figures in {args.figures} ({report['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
