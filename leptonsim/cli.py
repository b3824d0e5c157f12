"""Command line: each subcommand is a function returning an exit code.

Exit codes: 0 success, 2 bad input (one line on stderr: file, key path, expected,
found), 1 anything else. An OSError from the environment (a full disk, a file that
vanished) is one line with exit code 1: the command was right, the machine failed it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import __version__
from .errors import LeptonError, ScenarioError, did_you_mean

if TYPE_CHECKING:
    from .scenario import Scenario

BAD_INPUT = 2
FAILED = 1
INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class Parser(argparse.ArgumentParser):
    """argparse whose refusals are one line, `error: leptonsim run: ...` (exit 2), like
    every other refusal; --help stays full. Subparsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(BAD_INPUT, f"error: {self.prog}: {message}\n")


def _runnable(args: argparse.Namespace) -> list[Scenario]:
    """The variants of args.file that can be built; each one that cannot is named on
    stderr with why. None: the first one's error is the command's."""
    from . import scenario

    line = scenario.CommandLine.parse(args.set, args.variant, args.file)
    each = scenario.load_each(args.file, line)
    built = [s for s in each if isinstance(s, scenario.Scenario)]
    unbuilt = [s for s in each if isinstance(s, scenario.Unbuilt)]
    if not built:
        raise unbuilt[0].error
    for u in unbuilt:
        print(f"{args.command}: skipped {u.label}: {u.error.line()}", file=sys.stderr)
    return built


def _serving(args: argparse.Namespace) -> bool:
    from .scenario.serving import is_serving_file

    return is_serving_file(args.file)


def _run(args: argparse.Namespace) -> int:
    if _serving(args):  # [workload.serving]: the serving simulator (serve/)
        from .serve.cli import run_command
        return run_command(args)
    from .files import check_output
    from .gantt_rows import grouping
    from .outputs import choose, outputs_line
    from .progress import Progress
    from .report import render, render_comparison
    from .result import run, write_outputs

    progress = Progress(args.progress)
    with progress.phase("building", args.file):
        scenarios = _runnable(args)
    base = Path(args.out) if args.out else Path("out") / Path(args.file).stem
    check_output(base, directory=True)  # the directory named, then each variant's in it
    if args.samples:
        from .replicates.cli import run_samples

        return run_samples(args, scenarios, base)
    dirs = [check_output(base / s.variant, directory=True) if s.variant else base
            for s in scenarios]
    results = []
    for s in scenarios:  # all variants simulate before any file is written
        with progress.phase("simulating", f"{s.variant or s.name} ({s.graph.size:,} tasks)"):
            results.append(run(s))
    for result, out, s in zip(results, dirs, scenarios, strict=True):
        print(render(result, formulas=not args.quiet_formulas))
        if s.noise is not None:
            print(f"noise            sample {s.sample} of seed {s.noise.seed} (docs/noise.md); "
                  "--samples N for its distribution")
        tasks = result.scenario.graph.size
        grouped = (choose(args.outputs, tasks) == "standard"
                   and grouping(result.scenario, args.gantt_rows) is not None)
        if (line := outputs_line(args.outputs, tasks, grouped)) is not None:
            print(line)
        sys.stdout.flush()  # the report before the files are written, when piped too
        with progress.phase("writing", str(out)):
            written = write_outputs(result, out, args.outputs, args.trace_format,
                                    args.gantt_rows)
        print(f"wrote {', '.join(str(p) for p in written)}\n")
    if len(results) > 1:
        print(render_comparison(results))
    return 0


def add_scenario_options(p: argparse.ArgumentParser) -> None:
    """FILE, --set and --variant: for every command that loads a scenario (_runnable)."""
    p.add_argument("file", help="scenario TOML file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the file, after its variants, e.g. --set "
                        "parallel.tp=4 or --set 'hardware.units[0].preset=h100_sxm'; VALUE "
                        "is typed by the key (a number, true/false, [1, 2], or text); "
                        "repeatable")
    p.add_argument("--variant", metavar="NAME",
                   help="run only this one of the file's [variants.*]")


def add_output_options(p: argparse.ArgumentParser) -> None:
    """--outputs, --trace-format, --gantt-rows, --progress: for every command that
    writes a run's files (result.write_outputs)."""
    from .gantt_rows import GANTT_ROWS, MAX_UNIT_ROWS
    from .outputs import AUTO, LEVELS, SUMMARY_ABOVE
    from .progress import PROGRESS

    p.add_argument("--outputs", choices=(AUTO, *LEVELS), default=AUTO,
                   help="which files to write: summary = summary.json; standard = + "
                        "trace.json, tasks.csv, transfers.csv, gantt.png; all = + "
                        "gantt_units.png (one row per unit) where gantt.png groups units; "
                        f"auto (default) = standard up to {SUMMARY_ABOVE:,} tasks, summary "
                        "above")
    p.add_argument("--trace-format", choices=("json", "json.gz"), default="json",
                   help="trace.json, or trace.json.gz compressed (Perfetto opens both)")
    p.add_argument("--gantt-rows", choices=GANTT_ROWS, default="auto",
                   help=f"gantt.png's rows: one per unit, or per pipeline stage, replica or "
                        f"node showing the share of units busy; auto (default) = units up "
                        f"to {MAX_UNIT_ROWS}, else stages, replicas or nodes")
    p.add_argument("--progress", choices=PROGRESS, default="auto",
                   help="phases (building, simulating, writing) and their times on stderr: "
                        "auto (default) = when stderr is a terminal")


def _check(args: argparse.Namespace) -> int:
    if _serving(args):
        from .serve.cli import check_command
        return check_command(args)
    for s in _runnable(args):
        label = f"{s.name} [{s.variant}]" if s.variant else s.name
        print(f"ok: {label}: {s.cluster.size} units, {len(s.cluster.links)} links, "
              f"{s.graph.size} tasks, {s.graph.num_edges} edges, scheduler {s.scheduler}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from .scenario import schema
    from .summary_schema import summary_schema

    print(json.dumps(summary_schema() if args.summary else schema(), indent=2))
    return 0


def _model(args: argparse.Namespace) -> int:
    from .models import format_layer_table, format_totals
    from .zoo import ZOO, get_model, transformer
    from .zoo.hf import read_config

    if args.name is None:
        print("models: " + ", ".join(sorted(ZOO)))
        return 0
    if args.name.endswith(".json"):  # a Hugging Face config.json; ConfigError names it
        model = transformer(read_config(args.name))
    else:
        try:
            model = get_model(args.name)
        except KeyError:
            hint = did_you_mean(args.name.lower(), ZOO) or "leptonsim model lists the zoo"
            print(f"error: model: expected a zoo model or a config.json, found {args.name!r} "
                  f"({hint})", file=sys.stderr)
            return BAD_INPUT
    print(format_totals(model) if args.totals else format_layer_table(model))
    return 0


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="leptonsim",
        description="Simulate deep-learning task graphs on hardware that may not exist yet, "
                    "and hold the seed's formulas up against the schedule.")
    p.add_argument("--version", action="version", version=f"leptonsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser("run", help="simulate a scenario; write summary.json, trace.json, gantt.png",
                       description="Simulate every variant of a scenario file, print a report, "
                                   "and write summary.json, trace.json (open in ui.perfetto.dev), "
                                   "tasks.csv, transfers.csv and gantt.png (above 100,000 "
                                   "tasks only summary.json unless --outputs says more). A "
                                   "variant that cannot be built (a split that does not fit in "
                                   "memory) is named on stderr and skipped.")
    add_scenario_options(r)
    r.add_argument("--out", metavar="DIR",
                   help="output directory (default out/<file stem>; variants in subdirectories)")
    r.add_argument("--quiet-formulas", action="store_true",
                   help="leave the seed's formulas and the bounds out of the report "
                        "(summary.json keeps them)")
    add_output_options(r)
    from .replicates.cli import add_sample_options

    add_sample_options(r)
    r.set_defaults(func=_run)
    c = sub.add_parser("check", help="validate a scenario file without simulating it",
                       description="Check every variant of a scenario file and build its "
                                   "task graph; a variant that cannot be built is named on "
                                   "stderr, and the exit code is 2 only when none can.")
    add_scenario_options(c)
    c.set_defaults(func=_check)
    s = sub.add_parser("schema", help="print the JSON Schema of scenario files (for editors)")
    s.add_argument("--summary", action="store_true",
                   help="the JSON Schema of summary.json instead (docs/results.md)")
    s.set_defaults(func=_schema)
    m = sub.add_parser("model", help="print a zoo model's layers: shapes, parameters, FLOPs",
                       description="Print a Keras-summary-like table of a zoo model, or of the "
                                   "transformer a Hugging Face config.json describes (read "
                                   "locally, never downloaded); without a name, list the zoo.")
    m.add_argument("name", nargs="?", help="model name (case-insensitive), e.g. seed_cnn, "
                                           "resnet50, llama3_70b; or a path to a config.json")
    m.add_argument("--totals", action="store_true",
                   help="print only the parameter and FLOP totals, not every layer")
    m.set_defaults(func=_model)
    from .failures.cli import add_failures_command
    from .measure.calibrate import add_calibrate_command
    from .measure.profile import add_profile_command
    from .optimize.cli import add_optimize_command
    from .precision import add_precision_command
    from .sensitivity import add_sensitivity_command
    from .serve.capacity_cli import add_capacity_command
    from .study.cli import add_sweep_command
    from .validate.cli import add_validate_command

    add_sweep_command(sub)
    add_validate_command(sub)
    add_precision_command(sub)
    add_calibrate_command(sub)
    add_profile_command(sub)
    add_optimize_command(sub)
    add_failures_command(sub)
    add_sensitivity_command(sub)
    add_capacity_command(sub)
    p.set_defaults(commands=sub.choices)
    return p


class _UntilReaderGoes(io.TextIOBase):
    """stdout until its reader goes away (`leptonsim run ... | head`), then nothing: the
    job still runs to its end and writes every file, where a BrokenPipeError would stop it."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self._stream: io.TextIOBase | None = stream

    def write(self, text: str) -> int:
        self._guard(lambda s: s.write(text))
        return len(text)

    def flush(self) -> None:
        self._guard(lambda s: s.flush())

    def _guard(self, act: Callable[[io.TextIOBase], object]) -> None:
        if self._stream is None:
            return
        try:
            act(self._stream)
        except BrokenPipeError:  # what is still buffered goes to /dev/null at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
            self._stream = None


def main(argv: Sequence[str] | None = None) -> int:
    if isinstance(sys.stdout, io.TextIOBase) and not isinstance(sys.stdout, _UntilReaderGoes):
        sys.stdout = _UntilReaderGoes(sys.stdout)
    args, extra = parser().parse_known_args(argv)
    if extra:  # named by the subcommand's parser, whose usage it is
        args.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args))
    except ScenarioError as err:
        print(f"error: {err.line()}", file=sys.stderr)
        return BAD_INPUT
    except LeptonError as err:
        where = getattr(args, "file", "")
        print(f"error: {where + ': ' if where else ''}{err}", file=sys.stderr)
        return BAD_INPUT
    except OSError as err:
        what = f"{err.filename}: " if err.filename else ""
        print(f"error: leptonsim {args.command}: {what}{err.strerror or err}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:  # Ctrl-C: each set of outputs is published whole or not at all
        print(f"error: leptonsim {args.command}: interrupted (no output is left half written)",
              file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
