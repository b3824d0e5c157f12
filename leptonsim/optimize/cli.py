"""`leptonsim optimize FILE`: the best way to split a scenario's model on its hardware."""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..export import atomic_write
from ..files import check_output, json_text
from ..parallel.config import LAYOUTS
from ..progress import PROGRESS, Progress
from ..quantities import format_quantity
from ..study.cli import positive_int
from .search import BREAKDOWN, OBJECTIVES, Search, explain, objective_values, search
from .space import SCHEDULES


def add_optimize_command(sub: Any) -> None:
    p = sub.add_parser(
        "optimize", help="search DP/PP/TP, micro-batches, schedule and layout for a model",
        description="Estimate every parallel configuration of the scenario's [workload.model] on "
                    "its hardware (vectorised, under the memory limit), simulate the best few, "
                    "and rank them by step time, energy or cost. [parallel] is ignored.")
    p.add_argument("file", help="scenario TOML file with a [workload.model]")
    p.add_argument("--objective", choices=OBJECTIVES, default="time",
                   help="minimise step time (default), energy per step, or cost per step")
    p.add_argument("--top", type=positive_int, default=5, metavar="N",
                   help="candidates to simulate (default 5)")
    p.add_argument("--max-microbatches", type=positive_int, default=64, metavar="M",
                   help="largest micro-batch count to consider (default 64)")
    p.add_argument("--out", metavar="DIR", help="output directory (default out/<stem>/optimize)")
    p.add_argument("--export", metavar="FILE",
                   help="also write the winner as a scenario `leptonsim run` runs: the file "
                        "with one variant, optimized, setting the winner's split")
    p.add_argument("--progress", choices=PROGRESS, default="auto",
                   help="the estimate and each simulation, with their times, on stderr: "
                        "auto (default) = when stderr is a terminal")
    p.set_defaults(func=run_optimize)


def run_optimize(args: argparse.Namespace) -> int:
    from ..errors import ScenarioError
    from ..scenario import build_cost, build_hardware, load_documents
    from ..scenario.model import PRECISION_BYTES, build_model

    # the pipeline up to the hardware: the file's own [parallel] is never built
    variant, doc = load_documents(args.file)[0]  # the first variant, or the base
    try:
        cluster = build_hardware(doc)
        if "model" not in doc["workload"]:
            raise ScenarioError("workload.model", "a DNN model to split",
                                "<no [workload.model]>")
        table = doc["workload"]["model"]
        model = build_model(table, args.file)
    except ScenarioError as err:
        raise variant.relocate(err).in_file(args.file) from None
    out = check_output(Path(args.out) if args.out else Path("out") / Path(args.file).stem
                       / "optimize", directory=True)
    export = (None if args.export is None
              else check_output(Path(args.export), directory=False, option="--export"))
    result = search(model, cluster, int(table["batch"]), objective=args.objective,
                    top=args.top, dtype_bytes=PRECISION_BYTES[table["precision"]],
                    optimizer=table["optimizer"], training=table["training"],
                    max_tp=cluster.units_per_node, max_microbatches=args.max_microbatches,
                    cost=build_cost(doc, args.file), input_s_per_sample=float(table["input_pipeline"]),
                    fused_optimizer="optimizer" in table["fused"],
                    progress=Progress(args.progress))
    print(render(result, model.name, cluster.size))
    out.mkdir(parents=True, exist_ok=True)
    text = json_text(ranking(result), "ranking.json")
    write_table(result, out / "configurations.csv")
    atomic_write(out / "ranking.json", lambda f: f.write(text))
    written = [out / "configurations.csv", out / "ranking.json"]
    if export is not None:
        from .export import export_winner
        written.append(export_winner(result, args.file, export))
    print(f"wrote {', '.join(map(str, written))}")
    return 0


def render(result: Search, model: str, units: int) -> str:
    fits = int(result.estimate.fits.sum())
    show = {"time": lambda x: format_quantity(x, "time"),
            "energy": lambda x: format_quantity(x, "energy"),
            "cost": lambda x: f"${x:.3g}"}[result.objective]
    wide = max(len("configuration"), *(len(c.label) for c in result.candidates)) + 2
    lines = [f"== {model} on {units} units: {len(result.space)} configurations, {fits} fit in memory; "
             f"objective {result.objective} ==",
             f"{'rank':<5}{'configuration':<{wide}}{'estimated':>12}{'simulated':>12}"
             f"{'step':>13}{'energy':>13}"]
    for r, c in enumerate(result.candidates, 1):
        built = not c.unbuilt
        lines.append(f"{r:<5}{c.label:<{wide}}{show(c.estimated):>12}"
                     f"{show(c.simulated) if built else 'not built':>12}"
                     f"{format_quantity(c.step_s, 'time') if built else '—':>13}"
                     f"{format_quantity(c.energy_j, 'energy') if built else '—':>13}")
    lines.append(f"winner: {result.winner.label}")
    lines += ["  " + line for line in explain(result)]
    lines += [f"not built: {c.label}: {c.unbuilt}" for c in result.candidates if c.unbuilt]
    return "\n".join(lines)


def write_table(result: Search, path: Path) -> None:
    est, space = result.estimate, result.space
    score = objective_values(est, result.objective)
    order = np.argsort(score, kind="stable")
    cols = ["layout", "dp", "pp", "tp", "microbatches", "schedule", "chunks", "recompute", "zero",
            "sp", "cp", "step_s", *(f for f, _ in BREAKDOWN), "memory_bytes", "fits", "energy_j",
            "cost_usd"]

    def writer(f: Any) -> None:
        w = csv.writer(f)
        w.writerow(cols)
        for i in order.tolist():
            w.writerow([LAYOUTS[space.layout[i]], space.dp[i], space.pp[i], space.tp[i],
                        space.microbatches[i], SCHEDULES[space.schedule[i]], space.chunks[i],
                        bool(space.recompute[i]), space.zero[i], bool(space.sp[i]), space.cp[i],
                        *(repr(float(getattr(est, c)[i])) for c in cols[11:-3]),
                        bool(est.fits[i]), repr(float(est.energy_j[i])), repr(float(est.cost_usd[i]))])
    atomic_write(path, writer)


def ranking(result: Search) -> dict[str, Any]:
    """The ranking as JSON; a candidate whose step could not be built (the estimate
    thought it fitted, the memory plan found it does not) has null simulated figures."""
    def figures(c: Any) -> dict[str, Any]:
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v
                for k, v in c.__dict__.items()}

    return {"objective": result.objective,
            "candidates": [figures(c) for c in result.candidates],
            "why": explain(result)}
