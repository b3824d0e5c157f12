"""`leptonsim validate SCENARIO`: simulate it, execute it for real, compare.

cli.py registers the subcommand with `add_validate_command(subparsers)`; `main` runs
it standalone (`python -m leptonsim.validate`) with the same exit codes: 0 done,
2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ScenarioError

DEFAULT_PROFILE = "profiles/this_machine.toml"


def add_validate_command(subparsers: Any) -> None:
    """Register `validate FILE [--workers N] [--repeats R] [--profile FILE] [--out DIR]`."""
    v = subparsers.add_parser(
        "validate", help="simulate and really execute a scenario on this machine; compare",
        description="Run a scenario both ways on this machine: simulated with the calibrated "
                    "cost model of a hardware profile, and executed for real with NumPy on "
                    "worker processes (the model's own kernels for [workload.model] scenarios, "
                    "synthetic kernels otherwise), one worker per core: variants needing more "
                    "workers than this machine has cores are skipped. Prints the end-to-end "
                    "and per-task errors and writes validation.json, scatter.png and "
                    "gantt_overlay.png per variant.")
    v.add_argument("file", help="scenario TOML file")
    v.add_argument("--workers", type=int, metavar="N",
                   help="worker processes = simulated units (default: the scenario's units)")
    v.add_argument("--repeats", type=int, default=5, metavar="R",
                   help="real executions; medians are reported (default 5)")
    v.add_argument("--profile", metavar="FILE", default=DEFAULT_PROFILE,
                   help=f"hardware profile of this machine (default {DEFAULT_PROFILE}; "
                        "measured and written first if missing)")
    v.add_argument("--out", metavar="DIR",
                   help="output directory (default out/<file stem>-validation)")
    v.add_argument("--no-wait", action="store_true",
                   help="do not wait for other work on the machine to settle before each run")
    v.set_defaults(func=validate_command)


def validate_command(args: argparse.Namespace) -> int:
    from .. import scenario
    from ..files import check_output
    from ..measure.machine import machine_cores
    from ..measure.quiet import QuietGate
    from .report import render, write_outputs
    from .run import validate, workers_needed

    for flag, value in (("--repeats", args.repeats), ("--workers", args.workers)):
        if value is not None and value < 1:
            raise ScenarioError(flag, "an integer >= 1", value, file="command line")
    scenarios, cores = scenario.load(args.file), machine_cores()
    # one worker per core, as the simulation assumes: an oversubscribed run measures
    # the OS scheduler sharing cores, which no simulated unit does
    needs = [(s, workers_needed(s, args.workers)) for s in scenarios]
    fits = [s for s, n in needs if n <= cores]
    if not fits:
        least, n = min(needs, key=lambda sn: sn[1])
        path = "--workers" if args.workers else "parallel" if least.step else "hardware.units"
        raise ScenarioError(path, f"at most {cores} workers to validate on this machine (one "
                            "per core)", n, file="command line" if args.workers else args.file)
    for s, n in needs:
        if n > cores:
            print(f"validate: skipped {s.label}: it needs {n} workers, one per core, and this "
                  f"machine has {cores}", file=sys.stderr)
    base = Path(args.out) if args.out else Path("out") / f"{Path(args.file).stem}-validation"
    check_output(base, directory=True)  # every output path, before calibrating or executing
    dirs = [check_output(base / s.variant, directory=True) if s.variant else base for s in fits]
    if not Path(args.profile).exists():
        check_output(args.profile, directory=False, option="--profile")
    profile = load_or_calibrate(args.profile)
    # at most 10 s of waiting per run and two re-runs; none after 5 minutes
    gate = None if args.no_wait else QuietGate(max_wait_s=10.0, retries=2,
                                               deadline=time.monotonic() + 300.0)
    for s, out in zip(fits, dirs, strict=True):
        result = validate(s, profile, args.workers, args.repeats, gate)
        print(render(result))
        written = write_outputs(result, out,
                                {"profile": str(args.profile), "machine": profile.machine})
        print(f"wrote {', '.join(str(p) for p in written)}\n")
    return 0


def load_or_calibrate(path: str) -> Any:
    """The profile at `path`; measured (about 10 s) and written there if it is missing."""
    from ..measure.calibrate import calibrate, load_profile, write_profile

    if not Path(path).exists():
        print(f"validate: no profile at {path}; calibrating this machine first (about 10 s)",
              file=sys.stderr, flush=True)
        write_profile(calibrate(progress=True, quick=False), path)
        print(f"validate: wrote {path}", file=sys.stderr, flush=True)
    return load_profile(path)
