"""Run a sweep: skip what results.csv already holds, run the rest on an executor, append
each row as it finishes, then write results.sorted.csv."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from .executors import InlineExecutor
from .load import PointTask, Sweep
from .row import columns
from .store import RESULTS, ResultsFile, open_store, read_rows, write_sorted
from .worker import PointFailure, evaluate

__all__ = ["RESULTS", "SORTED", "SweepOutcome", "run_sweep", "sweep_store"]

SORTED = "results.sorted.csv"


@dataclass(frozen=True)
class SweepOutcome:
    total: int          # points × variants in the sweep
    resumed: int        # found finished in results.csv
    computed: int       # run now
    results: Path
    sorted: Path


def _progress(total: int, initial: int, show: bool | None) -> Any:
    from tqdm import tqdm

    enabled = sys.stderr.isatty() if show is None else show
    return tqdm(total=total, initial=initial, disable=not enabled, file=sys.stderr,
                unit="point", desc="sweep", dynamic_ncols=True, smoothing=0.1)


@contextmanager
def sweep_store(sweep: Sweep, out_dir: Path, price_per_unit_hour: float | None = None
                ) -> Iterator[ResultsFile]:
    """out_dir/results.csv of this sweep, out_dir locked: refused if another sweep holds
    it or if its rows were computed from another scenario, price or leptonsim."""
    identity = {"leptonsim": __version__, "price_per_unit_hour": price_per_unit_hour,
                "scenario": sweep.fingerprints(), "labels": sweep.labels}
    with open_store(out_dir, columns(sweep.parameter_names), identity) as store:
        yield store


def run_sweep(sweep: Sweep, out_dir: Path, executor: Executor | None = None, *,
              slots: int = 1, price_per_unit_hour: float | None = None,
              progress: bool | None = None, store: ResultsFile | None = None) -> SweepOutcome:
    """Run every point of `sweep` not already in out_dir/results.csv on `executor`
    (in this process when None), keeping about 2·slots points in flight.
    progress: True/False to force the bar on or off; None shows it on a terminal.
    store: out_dir as opened by `sweep_store` with the same price (the command opens it
    before the executor, to refuse a directory before contacting a cluster)."""
    with nullcontext(store) if store else sweep_store(sweep, out_dir, price_per_unit_hour) as held:
        done = {(r["point_id"], r["variant"]) for r in held.existing}
        todo = [t for t in sweep.tasks(price_per_unit_hour)
                if (t.point.point_id, t.variant) not in done]
        resumed = len(sweep) - len(todo)
        with _progress(len(sweep), resumed, progress) as bar:
            for row in _results(executor or InlineExecutor(), iter(todo), max(2 * slots, 1)):
                held.append(row)
                bar.update(1)
        order = {(t.point.point_id, t.variant): t.order() for t in sweep.tasks()}
        rows = [r for r in read_rows(held.path) if (r["point_id"], r["variant"]) in order]
        rows.sort(key=lambda r: order[(r["point_id"], r["variant"])])
        sorted_path = write_sorted(out_dir / SORTED, held.columns, rows)
    return SweepOutcome(len(sweep), resumed, len(todo), held.path, sorted_path)


def _results(executor: Executor, tasks: Iterator[PointTask], window: int
             ) -> Iterator[dict[str, Any]]:
    """Rows in completion order, with at most `window` points submitted at a time.
    A point that is a mistake in the sweep stops the sweep with its ScenarioError."""
    running: set[Future[Any]] = set()

    def fill() -> None:
        while len(running) < window:
            task = next(tasks, None)
            if task is None:
                return
            running.add(executor.submit(evaluate, task))

    fill()
    while running:  # on an exception, the executor's owner stops what is still running
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        failures = []
        for future in finished:
            running.discard(future)
            outcome = future.result()
            if isinstance(outcome, PointFailure):
                failures.append(outcome)
            else:
                yield outcome
        if failures:  # after the rows that finished with it are saved
            raise failures[0].error()
        fill()
