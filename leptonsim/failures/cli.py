"""`leptonsim failures FILE`: the run's interruptions, goodput and best checkpoint
interval from the file's [failures] table; failures.json beside the report."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ScenarioError
from .model import FailureModel
from .simulate import Best, best_interval, simulate

DAY = 86_400.0


@dataclass(frozen=True)
class Run:
    """One variant's failure study."""

    label: str
    model: FailureModel
    work_s: float | None
    horizon_s: float | None
    best: Best
    given: tuple[float, np.ndarray, np.ndarray] | None  # interval, goodput, interruptions


def add_failures_command(subparsers: Any) -> None:
    from ..study.cli import positive_int

    p = subparsers.add_parser(
        "failures", help="failures and checkpoints over a training run ([failures] table)",
        description="Simulate a training run of [failures] steps or days under the job's "
                    "failure rate (seeded, replicated): goodput (the effective training "
                    "time), interruptions, and the checkpoint interval that is best by "
                    "simulation beside Young's sqrt(2 delta M) and Daly's higher-order one.")
    p.add_argument("file", help="scenario TOML file with a [failures] table")
    p.add_argument("--replicates", type=positive_int, metavar="N",
                   help="replicates per interval (default: [failures] replicates)")
    p.add_argument("--out", metavar="DIR",
                   help="where failures.json goes (default out/<file stem>/failures)")
    p.set_defaults(func=failures_command)


def study(file: str, replicates: int | None) -> list[Run]:
    """Every variant of `file` with its [failures], simulated."""
    from .. import scenario

    runs = []
    for variant, doc in scenario.load_documents(file):
        try:
            runs.append(_study(doc, variant.name, file, replicates))
        except ScenarioError as err:
            raise variant.relocate(err).in_file(file) from None
    return runs


def _study(doc: dict[str, Any], variant: str, file: str, replicates: int | None) -> Run:
    from ..result import run
    from ..scenario import build, build_hardware
    from ..scenario.failures import build_failures
    from ..scenario.model import build_model

    if "failures" not in doc:
        raise ScenarioError("failures", "a [failures] table", "<none>",
                            hint="docs/noise.md, 'Failures and checkpoints'")
    table, workload = doc["failures"], doc["workload"]
    cluster = build_hardware(doc)
    params = float(build_model(workload["model"], file).params()) if "model" in workload else None
    step = table.get("step_time")
    if step is None and "steps" in table:  # the step's time is the scenario's
        step = run(build(doc, variant, file, cluster)).metrics.makespan_s
    model = build_failures(doc, cluster, params, float(step or 0.0))
    work = table["steps"] * model.step_s if "steps" in table else None
    horizon = table["days"] * DAY if "days" in table else None
    n, seed = replicates or int(table["replicates"]), int(doc["scenario"]["seed"])
    best = best_interval(model, n, seed, work, horizon)
    given = None
    if "interval" in table:
        out = simulate(model, float(table["interval"]), n, seed, work, horizon)
        given = (float(table["interval"]), out.goodput[0], out.interruptions[0])
    label = doc["scenario"]["name"] + (f" [{variant}]" if variant else "")
    return Run(label, model, work, horizon, best, given)


def failures_command(args: argparse.Namespace) -> int:
    from ..files import atomic_write, check_output, json_text
    from .report import render, summary

    out = Path(args.out) if args.out else Path("out") / Path(args.file).stem / "failures"
    check_output(out, directory=True)
    runs = study(args.file, args.replicates)
    text = json_text([summary(r) for r in runs], "failures.json")
    for r in runs:
        print(render(r) + "\n")
    out.mkdir(parents=True, exist_ok=True)
    path = atomic_write(out / "failures.json", lambda f: f.write(text))
    print(f"wrote {path}")
    return 0
