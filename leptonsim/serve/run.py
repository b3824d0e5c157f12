"""One serving scenario end to end: replicas built, requests simulated, metrics, the
report table and the files (requests.csv, summary.json, timeline.png, latency_cdf.png)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..quantities import format_quantity
from .engine import Iterations, simulate
from .kvcache import BlockManager
from .metrics import PerRequest, summary
from .outputs import write_cdf, write_csv, write_summary, write_timeline
from .schedulers import Limits, Replica
from .utilisation import utilisation

if TYPE_CHECKING:
    from ..scenario.serving import Service

FILES = ("summary.json", "requests.csv", "timeline.png", "latency_cdf.png")


@dataclass(frozen=True)
class ServingResult:
    service: Service
    per_request: PerRequest
    iterations: Iterations
    summary: dict[str, Any]


def replicas(service: Service) -> list[Replica]:
    t = service.table
    limits = Limits(int(t["max_batch"]), int(t["token_budget"]), int(t["chunk"]))
    return [Replica(k, t["scheduler"], BlockManager(service.memory.blocks,
                                                    int(t["block_size"])), limits)
            for k in range(service.replicas)]


def run(service: Service, variant: str = "") -> ServingResult:
    """Simulate every request of `service` (the file's `variant`; "" the base) to its
    last token."""
    reqs, log = simulate(service.requests, replicas(service), service.table["routing"],
                         service.cost.seconds)
    per = PerRequest.of(reqs)
    s = summary(per, log, service.slo, service.replicas, service.memory.blocks)
    s |= utilisation(service, per, log, s["span_s"])
    s = {"scenario": service.name, "variant": variant, "model": service.spec.name,
         "scheduler": service.table["scheduler"], "replicas": service.replicas,
         "tp": int(service.table["tp"]), "slo": service.slo, **s,
         "memory_per_unit_bytes": {"usable": service.memory.usable,
                                   "weights": service.memory.weights,
                                   "activations": service.memory.activations,
                                   "kv_cache": service.memory.kv_bytes}}
    return ServingResult(service, per, log, s)


def _ms(x: float | None) -> str:
    return "—" if x is None or x != x else format_quantity(x, "time")


def title(summary: dict[str, Any]) -> str:
    """The scenario's name, and its variant's in brackets."""
    v = summary["variant"]
    return summary["scenario"] + (f" [{v}]" if v else "")


def _pct(x: float) -> str:
    return "—" if x != x else f"{x:.1%}"


def render(result: ServingResult) -> str:
    """The terminal report: throughput, then a latency table of percentiles."""
    s = result.summary
    m = result.service.memory
    slo = ", ".join(f"{k} <= {_ms(v)}" for k, v in s["slo"].items()) or "none"
    lines = [
        f"== {title(s)} ==",
        f"{s['model']} x {s['replicas']} replicas (tp {s['tp']}), scheduler {s['scheduler']}; "
        f"{s['requests']} requests in {s['span_s']:.4g} s, {s['iterations']} iterations",
        f"throughput       {s['requests_per_s']:.4g} req/s, "
        f"{s['output_tokens_per_s']:.4g} output tokens/s",
        f"goodput          {s['goodput_requests_per_s']:.4g} req/s "
        f"({s['slo_attained']:.1%} meet SLO: {slo})",
        f"KV cache         {s['kv_blocks_per_replica']} blocks per replica "
        f"({format_quantity(m.kv_bytes, 'bytes')} per unit), mean use "
        f"{s['mean_kv_utilisation']:.1%}; mean batch {s['mean_batch']:.3g}; "
        f"{s['preemptions']} preemptions",
        f"utilisation      MFU {_pct(s['mfu'])} of {result.service.table['precision']} peak, "
        f"MBU {_pct(s['mbu'])} of HBM bandwidth (over the span)",
        "",
        f"{'latency':<12}{'p50':>12}{'p90':>12}{'p99':>12}{'mean':>12}",
    ]
    for k in ("queue", "ttft", "tpot", "e2e"):
        row = s[k]
        lines.append(f"{k:<12}" + "".join(f"{_ms(row[p]):>12}"
                                          for p in ("p50", "p90", "p99", "mean")))
    return "\n".join(lines)


def write(result: ServingResult, out: Path) -> list[Path]:
    """The run's files in `out` (created), in FILES order."""
    out.mkdir(parents=True, exist_ok=True)
    svc, name = result.service, title(result.summary)
    return [write_summary(result.summary, out / FILES[0]),
            write_csv(result.per_request, out / FILES[1]),
            write_timeline(result.iterations, svc.memory.blocks, svc.replicas, name,
                           out / FILES[2]),
            write_cdf(result.per_request, svc.slo, name, out / FILES[3])]
