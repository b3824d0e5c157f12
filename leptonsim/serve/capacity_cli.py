"""`leptonsim serve-capacity FILE`: the highest rate each variant of a serving
scenario sustains within its SLOs (serve/capacity.py) and, with --target, the cheapest
deployment sustaining that rate (serve/deploy.py); a table each, and their files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import check_output
from ..quantities import format_quantity
from ..scenario.command_line import CommandLine
from .capacity import PERCENTILES, Search, check_plannable, evaluate, nominal_rate, search
from .capacity_files import write_deployments, write_load_figure, write_points
from .deploy import Deployment, candidates, cheapest

if TYPE_CHECKING:
    from ..scenario.serving import Service


FILE_UNITS = "(file's)"  # the deployment on the scenario's own units (no --units)


def add_capacity_command(sub: Any) -> None:
    from ..cli import add_scenario_options
    from ..study.cli import positive_int

    p = sub.add_parser(
        "serve-capacity", help="a serving scenario's highest rate within its SLOs; the "
                               "cheapest deployment for a rate",
        description="Bisect over the request rate (the scenario's seeded stream, scaled "
                    "in time) for the highest rate whose p99 (--percentile) TTFT and TPOT "
                    "meet the scenario's [workload.serving] slo; print every point, write "
                    "capacity.csv and latency_vs_load.png. With --target, also rank every "
                    "unit preset x tp x replicas on the cluster by $/hour and name the "
                    "cheapest that meets the SLOs at that rate (deployments.csv).")
    add_scenario_options(p)
    p.add_argument("--percentile", type=int, choices=PERCENTILES, default=99,
                   help="the latency percentile the SLOs bound (default 99)")
    p.add_argument("--tolerance", type=float, default=0.02, metavar="EPS",
                   help="stop when the failing rate is within (1 + EPS) of the passing "
                        "one (default 0.02)")
    p.add_argument("--max-points", type=positive_int, default=20, metavar="N",
                   help="rates to simulate at most per variant (default 20)")
    p.add_argument("--target", type=float, metavar="RATE",
                   help="requests/s the cheapest deployment must sustain")
    p.add_argument("--units", metavar="PRESET,...",
                   help="with --target: unit presets to compare (default the file's units)")
    p.add_argument("--out", metavar="DIR",
                   help="output directory (default out/<file stem>/capacity; variants in "
                        "subdirectories)")
    p.set_defaults(func=run_capacity)


def run_capacity(args: argparse.Namespace) -> int:
    from ..errors import ScenarioError
    from ..scenario.serving import load_services

    if not (args.tolerance > 0) or (args.target is not None and not args.target > 0):
        bad = "--tolerance" if not args.tolerance > 0 else "--target"
        raise ScenarioError(bad, "a number > 0", getattr(args, bad[2:]), file=args.file)
    _check_units(_units(args), args.file)
    services = load_services(args.file, CommandLine.parse(args.set, args.variant, args.file))
    base = Path(args.out) if args.out else Path("out") / Path(args.file).stem / "capacity"
    check_output(base, directory=True)
    for _, svc in services:  # every variant checked before any is searched
        check_plannable(svc, args.percentile)
    for variant, svc in services:
        written = _plan(args, variant, svc, base / variant if variant else base)
        print(f"wrote {', '.join(map(str, written))}\n")
        sys.stdout.flush()
    return 0


def _units(args: argparse.Namespace) -> list[str]:
    """--units as preset names; [""]: the file's own units."""
    return args.units.split(",") if args.units else [""]


def _check_units(units: list[str], file: str) -> None:
    from ..errors import ScenarioError
    from ..presets import device_presets

    known = device_presets()
    for u in units:
        if u and u not in known:
            raise ScenarioError("--units", "device presets separated by commas", u,
                                file=file, hint=", ".join(sorted(known)))


def _plan(args: argparse.Namespace, variant: str, svc: Service, out: Path) -> list[Path]:
    """One variant's search (and deployments): printed, then its files in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    title = svc.name + (f" [{variant}]" if variant else "")
    found = search(evaluate(svc, args.percentile), nominal_rate(svc), args.tolerance,
                   args.max_points)
    print(render_search(found, svc, title, args.percentile))
    written = [write_points(found, out / "capacity.csv"),
               write_load_figure(found, svc.slo, title, out / "latency_vs_load.png")]
    if args.target is not None:
        pool = candidates(args.file, args.set, variant or None, _units(args), svc.spec.heads,
                          svc.cluster.size)
        ranked = cheapest(pool, args.target, args.percentile)
        print(render_deployments(ranked, args.target, svc))
        print(_headroom(ranked, pool, args))
        written.append(write_deployments(ranked, out / "deployments.csv"))
    return written


def _headroom(ranked: list[Deployment], pool: list[tuple[Deployment, Service | None]],
              args: argparse.Namespace) -> str:
    """The winner's own capacity (the same search from the target rate): how far above
    the target it holds."""
    won = [i for i, d in enumerate(ranked) if d.why == "meets"]
    if not won or (svc := pool[won[0]][1]) is None:
        return ""
    s = search(evaluate(svc, args.percentile), args.target, args.tolerance, args.max_points)
    return f"its capacity: {conclusion(s, len(s.points))[len('capacity: '):]}\n"


def _t(x: float | None) -> str:
    return "—" if x is None or x != x else format_quantity(x, "time")


def _slo_text(svc: Service, percentile: int) -> str:
    return ", ".join(f"p{percentile} {k.upper()} <= {_t(v)}" for k, v in svc.slo.items())


def render_search(s: Search, svc: Service, title: str, percentile: int) -> str:
    p = f"p{percentile}"
    head = (f"{'rate/s':>9}{'req/s':>9}{'goodput':>9}{'TTFT p50':>10}{'TTFT ' + p:>10}"
            f"{'TPOT p50':>10}{'TPOT ' + p:>10}{'MFU':>7}  verdict")
    lines = [f"== {title}: capacity ==",
             f"{svc.spec.name} x {svc.replicas} replicas (tp {svc.table['tp']}), scheduler "
             f"{svc.table['scheduler']}, {len(svc.requests)} requests; SLO "
             f"{_slo_text(svc, percentile)}", "", head]
    for pt in sorted(s.points, key=lambda q: q.rate):
        m = pt.summary
        lines.append(f"{pt.rate:>9.4g}{m['requests_per_s']:>9.4g}"
                     f"{m['goodput_requests_per_s']:>9.4g}{_t(m['ttft']['p50']):>10}"
                     f"{_t(m['ttft'][p]):>10}{_t(m['tpot']['p50']):>10}"
                     f"{_t(m['tpot'][p]):>10}{m['mfu']:>7.1%}  "
                     f"{'meets' if pt.passed else 'fails'}")
    lines += ["", conclusion(s, len(s.points))]
    return "\n".join(lines)


def conclusion(s: Search, points: int) -> str:
    if s.lo is None:
        return f"capacity: no rate meets the SLOs, down to {s.hi:.4g} req/s ({points} points)"
    if s.hi is None:
        return f"capacity: at least {s.lo:.4g} req/s (every rate up to it meets the SLOs; " \
               f"{points} points)"
    return (f"capacity: {s.lo:.4g} req/s meets the SLOs, {s.hi:.4g} req/s does not "
            f"({points} points)")


def render_deployments(ds: list[Deployment], rate: float, svc: Service) -> str:
    lines = [f"-- the cheapest deployment for {rate:.4g} req/s (pp 1) --",
             f"{'unit':<12}{'tp':>4}{'replicas':>10}{'units':>7}{'$/hour':>9}  why"]
    shown = [d for d in ds if not d.why.startswith("not simulated")]
    for d in shown:
        price = "—" if d.price_per_hour != d.price_per_hour else f"{d.price_per_hour:.2f}"
        lines.append(f"{d.unit or FILE_UNITS:<12}{d.tp:>4}{d.replicas:>10}"
                     f"{d.units:>7}{price:>9}  {d.why}")
    if len(shown) < len(ds):
        lines.append(f"... and {len(ds) - len(shown)} dearer deployments, not simulated "
                     "(deployments.csv lists them)")
    best = next((d for d in ds if d.why == "meets"), None)
    lines.append("" if best is None else
                 f"cheapest: {best.replicas} x tp {best.tp} on {best.unit or FILE_UNITS}"
                 f" at ${best.price_per_hour:.2f}/hour; every cheaper one fails as listed")
    if best is None:
        lines.append("no deployment on this cluster meets the SLOs at this rate")
    return "\n".join(lines)
