"""`leptonsim sweep FILE`: the command, registered on the main parser by
`add_sweep_command(subparsers)`. Returns exit codes like the other commands; a
ScenarioError or StudyError (a LeptonError) propagates for the caller to print as one
line with exit code 2."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from ..limits import MAGNITUDES
from .executors import WAIT_WORKERS_S

__all__ = ["INTERRUPTED", "add_sweep_command", "positive_int", "sweep_command"]

INTERRUPTED = 130  # the shell's code for a process stopped by Ctrl-C (128 + SIGINT)

DESCRIPTION = """\
Run every point of the [sweep] table of a scenario file (and every variant, if it
has variants) and append one row per point to DIR/results.csv as points finish.
An interrupted sweep (Ctrl-C, kill -9) resumes where it stopped when the same command
is run again: finished points are kept and not recomputed. At the end the rows are
also written in point order to DIR/results.sorted.csv. See docs/studies.md."""

EPILOG = """\
examples:
  leptonsim sweep study.toml --workers 8 --plot
  leptonsim sweep study.toml --executor dask --scheduler tcp://10.0.0.5:8786
  leptonsim sweep study.toml --price 2.5      # cost_usd at 2.5 USD per unit-hour"""


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (counts of workers, candidates, ...)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, found {text!r}")
    return value


def _price(text: str) -> float:
    """A finite price per unit-hour within the bound of leptonsim.limits (inf and nan are
    not prices: they would reach cost_usd and the CSV as such)."""
    most = MAGNITUDES["price_per_hour"].largest
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= most:
        raise argparse.ArgumentTypeError(f"expected a price from 0 to {most} USD per "
                                         f"unit-hour, found {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to 86400, found {text!r}")
    return value


def add_sweep_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register `sweep` on the subparsers of the main parser; returns its parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sweep", help="run a parameter sweep ([sweep] table) in parallel; write results.csv",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="scenario TOML file with a [sweep] table")
    p.add_argument("--out", metavar="DIR",
                   help="output directory (default out/<file stem>/sweep)")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="local worker processes (default: one per CPU; 1 runs in this process)")
    p.add_argument("--executor", choices=("process", "dask"), default="process",
                   help="where points run: a local process pool (default) or a Dask cluster")
    p.add_argument("--scheduler", metavar="ADDR",
                   help="Dask scheduler address, e.g. tcp://127.0.0.1:8786 (with --executor dask)")
    p.add_argument("--wait-workers", type=_seconds, default=WAIT_WORKERS_S, metavar="SECONDS",
                   help="how long a Dask cluster may take to have a worker before the sweep is "
                        f"refused (default {WAIT_WORKERS_S:g})")
    p.add_argument("--price", type=_price, metavar="USD",
                   help="price per unit-hour in USD for units without price_per_hour in the "
                        "scenario; fills the cost_usd column (left empty when unknown)")
    p.add_argument("--progress", action="store_true",
                   help="show the progress bar even when stderr is not a terminal")
    p.add_argument("--plot", action="store_true",
                   help="also draw the figures (PNG and SVG) into DIR/plots")
    p.set_defaults(func=sweep_command)
    return p


def sweep_command(args: argparse.Namespace) -> int:
    from ..files import check_output
    from .cluster import SchedulerLost
    from .executors import Stopped, open_executor
    from .load import load_sweep
    from .runner import RESULTS, run_sweep, sweep_store

    sweep = load_sweep(args.file)  # every mistake in the file, before anything runs
    out = Path(args.out) if args.out else Path("out") / Path(args.file).stem / "sweep"
    check_output(out, directory=True)  # one output-path check, before any point runs
    resume = f"finished points are in {out / RESULTS}; run the same command again to resume"
    try:
        with sweep_store(sweep, out, args.price) as store, \
                open_executor(args.executor, args.workers, args.scheduler,
                              args.wait_workers) as pool:
            done = run_sweep(sweep, out, pool.executor, slots=pool.slots, store=store,
                             price_per_unit_hour=args.price,
                             progress=True if args.progress else None)
    except KeyboardInterrupt:
        print(f"interrupted: {resume}", file=sys.stderr)
        return INTERRUPTED
    except Stopped as stop:
        print(f"stopped by {stop}: {resume}", file=sys.stderr)
        return 128 + stop.signum  # the shell's code for death by that signal
    except SchedulerLost as err:  # not a mistake in the input: exit 1, as for any failure
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{done.total} points ({done.resumed} already done, {done.computed} run): "
          f"wrote {done.results}, {done.sorted}")
    if args.plot:
        from .plots import plot_study

        written = plot_study(done.sorted, out / "plots", sweep.labels)
        print(f"wrote {len(written)} figures to {out / 'plots'}")
    return 0
