"""The cheapest deployment for a target rate (issue 15, point 6): every unit preset
asked x tp (a divisor of the heads) x replicas on the scenario's cluster, priced at
replicas x tp x the unit's price_per_hour (presets/devices.toml), simulated at the
target rate from the cheapest up, until one meets the SLOs. Each deployment carries
why: what it costs, and the latency that fails its SLO or the one line saying why it
cannot be built (weights that leave no KV cache, a longest request that does not fit).
Pipeline parallelism per replica is not modelled yet (docs/serving.md), so pp is 1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..errors import ScenarioError
from ..quantities import format_quantity
from ..scenario.command_line import CommandLine
from .capacity import Point, evaluate

if TYPE_CHECKING:
    from ..scenario.serving import Service


@dataclass(frozen=True)
class Deployment:
    unit: str                 # the preset ("" the file's own units)
    tp: int
    replicas: int
    price_per_hour: float     # USD, every unit of every replica
    why: str                  # "meets", or the failing figure, or why it cannot run
    point: Point | None = None

    @property
    def units(self) -> int:
        return self.tp * self.replicas


def _service(file: str, sets: list[str], variant: str | None, unit: str,
              tp: int) -> Service | str:
    """The service of `file` on units of preset `unit` split tp ways, one replica; or
    the line saying why it cannot be built."""
    from ..scenario.serving import load_services

    more = [f"workload.serving.tp={tp}", "workload.serving.replicas=1"]
    if unit:
        more.append(f"hardware.units[0].preset={unit}")
    try:
        [(_, svc)] = load_services(file, CommandLine.parse([*sets, *more], variant, file))
    except ScenarioError as err:
        return f"{err.path}: expected {err.expected}, found {err.found}"
    return svc


def why_failed(point: Point, slo: dict[str, float], percentile: int) -> str:
    p = f"p{percentile}"
    bad = [f"{p} {k.upper()} {format_quantity(point.summary[k][p], 'time')} > "
           f"{format_quantity(slo[k], 'time')}"
           for k in ("ttft", "tpot") if k in slo and point.summary[k][p] > slo[k]]
    return "fails: " + ", ".join(bad)


def candidates(file: str, sets: list[str], variant: str | None, units: list[str],
               heads: int, size: int) -> list[tuple[Deployment, Service | None]]:
    """Every deployment, unsimulated, cheapest first (then fewer units, smaller tp)."""
    out: list[tuple[Deployment, Service | None]] = []
    for unit in units:
        for tp in (t for t in range(1, size + 1) if heads % t == 0):
            svc = _service(file, sets, variant, unit, tp)
            price = svc.cluster.units[0].price_per_hour if not isinstance(svc, str) else 0.0
            for replicas in range(1, size // tp + 1):
                if isinstance(svc, str):
                    out.append((Deployment(unit, tp, replicas, float("nan"), svc), None))
                    break  # no replica count fixes a unit that cannot hold one
                table = {**svc.table, "replicas": replicas}
                out.append((Deployment(unit, tp, replicas, replicas * tp * price, ""),
                            replace(svc, table=table)))
    return sorted(out, key=lambda d: (d[1] is None, d[0].price_per_hour, d[0].units,
                                      d[0].tp))


def cheapest(pool: list[tuple[Deployment, Service | None]], rate: float,
             percentile: int) -> list[Deployment]:
    """`pool` (cheapest first) simulated at `rate` until one meets its SLOs; those
    after it are left unsimulated ("costs more")."""
    out, found = [], False
    for d, svc in pool:
        if svc is None or found:
            out.append(d if svc is None else replace(d, why="not simulated: costs more"))
            continue
        point = evaluate(svc, percentile)(rate)
        found = point.passed
        out.append(replace(d, point=point, why="meets" if found
                           else why_failed(point, svc.slo, percentile)))
    return out
