"""`leptonsim run FILE --samples N`: the options, and the command's body."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ScenarioError

if TYPE_CHECKING:
    from ..scenario import Scenario

PRECISION = 0.01  # the default half-width the report sizes the sample count for


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), found {text!r}")
    return value


def add_sample_options(p: argparse.ArgumentParser) -> None:
    from ..study.cli import positive_int
    from ..study.executors import EXECUTORS

    p.add_argument("--samples", type=positive_int, metavar="N",
                   help="run N seeded replicates of the file's [noise] (sample i draws "
                        "SeedSequence([seed, i])); print median, p5/p95 and a bootstrap "
                        "CI; write samples.csv, samples.json, samples.png")
    p.add_argument("--precision", type=_fraction, default=PRECISION, metavar="EPS",
                   help=f"with --samples: the relative half-width of the mean's 95%% "
                        f"interval the report sizes the sample count for (default {PRECISION})")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="with --samples: local processes (default: the CPU count)")
    p.add_argument("--executor", choices=EXECUTORS, default="process",
                   help="with --samples: a local process pool, or a Dask cluster")
    p.add_argument("--scheduler", metavar="ADDR",
                   help="with --executor dask: the Dask scheduler, e.g. tcp://127.0.0.1:8786")


def run_samples(args: argparse.Namespace, scenarios: list[Scenario], base: Path) -> int:
    """Each noisy variant's replicates, reported and written (into base/<variant>); a
    variant without noise is named on stderr and skipped."""
    from ..files import check_output
    from ..study.executors import open_executor
    from .files import render, write_replicates
    from .run import replicates

    noisy = [s for s in scenarios if s.noise is not None]
    if not noisy:
        raise ScenarioError("noise", "a [noise] table whose spreads are not all off, "
                            "for --samples", "<no noise>", file=scenarios[0].file,
                            hint="every replicate would be the same run")
    for s in scenarios:
        if s.noise is None:
            print(f"run: skipped {s.label}: no noise, every sample would be the same",
                  file=sys.stderr)
    scenarios = noisy
    dirs = [check_output(base / s.variant, directory=True) if s.variant else base
            for s in scenarios]
    with open_executor(args.executor, args.workers, args.scheduler) as pool:
        done = [replicates(s, args.samples, pool.executor, pool.slots, args.precision)
                for s in scenarios]
    for reps, out in zip(done, dirs, strict=True):
        print(render(reps))
        written = write_replicates(reps, out)
        print(f"wrote {', '.join(str(p) for p in written)}\n")
        sys.stdout.flush()
    return 0
