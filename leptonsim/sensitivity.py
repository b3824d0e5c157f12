"""One-at-a-time sensitivity: which scenario parameter moves an output most.

Every positive float of the normalised document's [hardware] and [noise] tables (peaks,
bandwidths, latencies, efficiencies, powers, spreads: presets merged, SI units) is set
to (1 - delta) and (1 + delta) times its value in turn, all else nominal, and the
scenario is built and run for each; parameters are ranked by the swing of the output
(the tornado diagram of decision analysis: Howard, "Decision analysis: practice and
promise", Management Science 1988). A side whose value the model refuses (an efficiency
above 1) is reported as refused. It is local and ignores interactions; variance-based
(Sobol) indices are not computed here.
"""

from __future__ import annotations

import copy
import math
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from .errors import LeptonError

__all__ = ["OUTPUTS", "Swing", "parameters", "tornado"]

Doc = dict[str, Any]
Path = tuple[str | int, ...]
TABLES = ("hardware", "noise")
OUTPUTS = ("makespan_s", "energy_j", "throughput")


@dataclass(frozen=True)
class Swing:
    """One parameter's two runs: the output at (1 - delta) and (1 + delta) x its value,
    None for a side the model refused."""

    path: str
    value: float
    nominal: float | None
    low: float | None
    high: float | None

    @property
    def width(self) -> float:
        """The output's range over the low side, the nominal and the high side (those
        run): a side refused still lets the other one count."""
        seen = [v for v in (self.low, self.nominal, self.high) if v is not None]
        return max(seen) - min(seen) if seen else 0.0


def parameters(doc: Doc) -> list[Path]:
    """The key paths of every positive, finite float under TABLES (not integers, not
    booleans: counts and switches are not continuous parameters)."""
    out: list[Path] = []

    def walk(node: object, path: Path) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))
        elif type(node) is float and math.isfinite(node) and node > 0:
            out.append(path)

    for table in TABLES:
        if table in doc:
            walk(doc[table], (table,))
    return out


def dotted(path: Path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _set(doc: Doc, path: Path, factor: float) -> Doc:
    out = copy.deepcopy(doc)
    node: Any = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] *= factor
    return out


def output(doc: Doc, name: str, file: str = "<string>") -> float | None:
    """`name` of the run of a normalised document; None when it cannot be built."""
    from .result import run
    from .scenario import build

    try:
        r = run(build(doc, "", file))
    except (LeptonError, ValueError):
        return None
    if name == "makespan_s":
        return r.metrics.makespan_s
    if name == "energy_j":
        return r.energy.total_j
    span = r.metrics.makespan_s
    return (r.step_metrics.samples_per_s if r.step_metrics is not None
            else r.scenario.graph.size / span if span > 0 else 0.0)


def tornado(doc: Doc, name: str, delta: float, executor: Executor,
            file: str = "<string>") -> tuple[float | None, list[Swing]]:
    """The nominal output and each parameter's Swing, widest first (ties by path)."""
    paths = parameters(doc)
    nominal = executor.submit(output, doc, name, file)
    runs = [(p, [executor.submit(output, _set(doc, p, f), name, file)
                 for f in (1 - delta, 1 + delta)]) for p in paths]
    base = nominal.result()
    swings = []
    for p, (low, high) in runs:
        value: Any = doc
        for k in p:
            value = value[k]
        swings.append(Swing(dotted(p), float(value), base, low.result(), high.result()))
    return base, sorted(swings, key=lambda s: (-s.width, s.path))


def figure(swings: list[Swing], nominal: float, name: str, title: str, top: int = 15):  # type: ignore[no-untyped-def]
    """The tornado: the `top` widest swings as bars from the low side's output to the
    high side's, around the nominal output."""
    from matplotlib.figure import Figure

    from .figure_style import BUBBLE, COMPUTE, FONT, GREY, WIDTH

    shown = [s for s in swings if s.width > 0][:top][::-1]
    fig = Figure(figsize=(WIDTH * 0.7, 1.0 + 0.3 * max(1, len(shown))), layout="constrained")
    ax = fig.add_subplot()
    for i, s in enumerate(shown):
        for side, colour in ((s.low, COMPUTE), (s.high, BUBBLE)):
            if side is not None:
                ax.barh(i, side - nominal, left=nominal, color=colour, height=0.6)
    ax.axvline(nominal, color=GREY, lw=1)
    ax.set_yticks(range(len(shown)), [s.path for s in shown], fontsize=FONT["small"])
    ax.set_xlabel(f"{name} (blue: parameter x (1 - delta), orange: x (1 + delta))")
    ax.set_title(title, fontsize=FONT["title"])
    return fig


def add_sensitivity_command(subparsers: Any) -> None:
    from .replicates.cli import _fraction
    from .study.cli import positive_int
    from .study.executors import EXECUTORS

    p = subparsers.add_parser(
        "sensitivity", help="rank the scenario's parameters by their effect on an output",
        description="One at a time, set every positive number of [hardware] and [noise] "
                    "to (1 - delta) and (1 + delta) times its value and run the scenario; "
                    "print the parameters by the output's swing and write sensitivity.csv "
                    "and tornado.png (docs/noise.md).")
    p.add_argument("file", help="scenario TOML file (its first variant)")
    p.add_argument("--output", choices=OUTPUTS, default="makespan_s")
    p.add_argument("--delta", type=_fraction, default=0.1, help="relative step (default 0.1)")
    p.add_argument("--workers", type=positive_int, metavar="N")
    p.add_argument("--executor", choices=EXECUTORS, default="process")
    p.add_argument("--scheduler", metavar="ADDR", help="with --executor dask")
    p.add_argument("--out", metavar="DIR", help="default out/<file stem>/sensitivity")
    p.set_defaults(func=_command)


def _command(args: Any) -> int:
    import csv
    from pathlib import Path as FilePath

    from .figure_style import save_figure
    from .files import atomic_write, check_output, publish
    from .scenario import load_documents
    from .study.executors import open_executor

    out = FilePath(args.out) if args.out else FilePath("out") / FilePath(args.file).stem / "sensitivity"
    check_output(out, directory=True)
    variant, doc = load_documents(args.file)[0]
    with open_executor(args.executor, args.workers, args.scheduler) as pool:
        nominal, swings = tornado(doc, args.output, args.delta, pool.executor, args.file)
    if nominal is None:  # the file's own error, as `leptonsim run` gives it
        from .scenario import build

        build(doc, variant.name, args.file)
        raise LeptonError("the nominal scenario could not be run")
    print(f"{args.output}: nominal {nominal:.6g}; x (1 -/+ {args.delta:g}):")
    for s in swings[:20]:
        cells = " ".join(f"{v:12.6g}" if v is not None else f"{'refused':>12}"
                         for v in (s.low, s.high))
        print(f"  {s.path:<48} {cells}  swing {s.width / nominal:7.2%}")

    def write(f: Any) -> None:
        w = csv.writer(f)
        w.writerow(["parameter", "value", "low", "high", "swing"])
        w.writerows([s.path, repr(s.value), "" if s.low is None else repr(s.low),
                     "" if s.high is None else repr(s.high), repr(s.width)] for s in swings)

    def build_set(staging: FilePath) -> None:
        atomic_write(staging / "sensitivity.csv", write)
        save_figure(figure(swings, nominal, args.output, doc["scenario"]["name"]),
                    staging / "tornado.png")

    written = publish(out, "sensitivity", build_set)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0
