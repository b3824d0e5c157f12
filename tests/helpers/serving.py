"""A small serving scenario as TOML text, its Service, and its simulated requests."""

from __future__ import annotations

from typing import Any

import tomli_w

from leptonsim.scenario import documents, parse
from leptonsim.scenario.serving import Service, build_service
from leptonsim.serve.engine import Iterations, simulate
from leptonsim.serve.run import replicas
from leptonsim.serve.schedulers import Req


def serving_toml(memory: str = "80 GB", units: int = 2, **serving: Any) -> str:
    """Llama 3 8B on `units` H100s of `memory` each; `serving` overrides the table."""
    table: dict[str, Any] = {
        "model": "llama3_8b", "replicas": 1, "tp": 1, "requests": 60, "seed": 3,
        "token_budget": 4096, "max_batch": 64,
        "arrivals": {"kind": "poisson", "rate": 20.0},
        "prompt": {"kind": "uniform", "min": 16, "max": 1024},
        "output": {"kind": "uniform", "min": 1, "max": 512},
        "slo": {"ttft": "500 ms", "tpot": "50 ms"},
    }
    table.update(serving)
    doc = {"scenario": {"name": "serving test"},
           "hardware": {"topology": "switch", "link": {"preset": "nvlink4"},
                        "units": [{"name": "gpu", "count": units, "preset": "h100_sxm",
                                   "memory": memory}]},
           "workload": {"serving": table}}
    return tomli_w.dumps(doc)


def service(memory: str = "80 GB", units: int = 2, **serving: Any) -> Service:
    [(_, doc)] = documents(parse(serving_toml(memory, units, **serving)))
    return build_service(doc)


def served(svc: Service) -> tuple[list[Req], Iterations]:
    """Every request of `svc` simulated (the Req objects keep their state)."""
    return simulate(svc.requests, replicas(svc), svc.table["routing"], svc.cost.seconds)
