"""What-if studies: parameter sweeps of a scenario, run in parallel, resumable.

    from leptonsim.study import load_sweep, open_executor, run_sweep, plot_study

    sweep = load_sweep("study.toml")             # the [sweep] table, checked
    with open_executor("process", workers=4) as pool:
        outcome = run_sweep(sweep, Path("out/study"), pool.executor, slots=pool.slots)
    plot_study(outcome.sorted, Path("out/study/plots"))

The format, the CSV columns and the figures are described in docs/studies.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .executors import InlineExecutor, open_executor
from .load import PointTask, Sweep, load_sweep, loads_sweep
from .row import columns
from .runner import SweepOutcome, run_sweep
from .sampling import Point, points
from .spec import Parameter, SweepSpec, parse_sweep
from .store import StudyError
from .worker import evaluate

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "InlineExecutor", "Parameter", "Point", "PointTask", "StudyError", "Sweep",
    "SweepOutcome", "SweepSpec", "add_sweep_command", "columns", "evaluate", "load_sweep",
    "loads_sweep", "open_executor", "parse_sweep", "plot_study", "points", "run_sweep",
]


def plot_study(csv_path: str | Path, out_dir: str | Path,
               labels: dict[str, str] | None = None) -> list[Path]:
    """The study figures of a results CSV, as PNG and SVG (matplotlib loads on use);
    `labels` names swept key paths (default: those of the sweep.json beside the CSV)."""
    from .plots import plot_study as _plot_study

    return _plot_study(csv_path, out_dir, labels)


def add_sweep_command(subparsers: Any) -> Any:
    """Register `leptonsim sweep` on the main parser's subparsers."""
    from .cli import add_sweep_command as _add

    return _add(subparsers)
