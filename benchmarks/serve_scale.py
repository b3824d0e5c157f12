"""Issue 15's serving target: 10,000 requests on Llama 3 70B, 8 replicas of tp 4 on 4
DGX H100 nodes, simulated in <= 10 s on this machine. Times building (requests, KV
capacity) and simulating separately, median of --repeats, each in a fresh process, and
writes benchmarks/results/serve_scale.json.

    python benchmarks/serve_scale.py [--repeats 3] [--requests 10000] [--scheduler vllm]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = """
[scenario]
name = "Llama 3 70B, 8 replicas of tp 4"

[hardware]
topology = "two_level"
units = [{{ name = "gpu", count = 32, preset = "h100_sxm" }}]

[hardware.two_level]
units_per_node = 8
intra = {{ preset = "nvlink4" }}
inter = {{ preset = "infiniband_ndr" }}

[workload.serving]
model = "llama3_70b"
replicas = 8
tp = 4
scheduler = "{scheduler}"
requests = {requests}
seed = 0
routing = "least_outstanding"
arrivals = {{ kind = "poisson", rate = 40 }}
prompt = {{ kind = "lognormal", mean = 512, sigma = 0.8, min = 16, max = 4096 }}
output = {{ kind = "lognormal", mean = 128, sigma = 0.8, min = 1, max = 2048 }}
slo = {{ ttft = "2 s", tpot = "100 ms" }}
"""


def once(requests: int, scheduler: str) -> dict[str, float]:
    """One measurement, in this process."""
    sys.path.insert(0, str(ROOT))
    from leptonsim.scenario import documents, parse
    from leptonsim.scenario.serving import build_service
    from leptonsim.serve.run import run

    t0 = time.perf_counter()
    [(_, doc)] = documents(parse(SCENARIO.format(requests=requests, scheduler=scheduler)))
    service = build_service(doc)
    t1 = time.perf_counter()
    result = run(service)
    t2 = time.perf_counter()
    s = result.summary
    return {"build_s": t1 - t0, "simulate_s": t2 - t1, "iterations": s["iterations"],
            "requests_per_s": s["requests_per_s"], "ttft_p99_s": s["ttft"]["p99"],
            "tpot_p99_s": s["tpot"]["p99"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--scheduler", default="vllm")
    p.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.once:
        print(json.dumps(once(args.requests, args.scheduler)))
        return
    runs = [json.loads(subprocess.run(
        [sys.executable, __file__, "--once", "--requests", str(args.requests),
         "--scheduler", args.scheduler], check=True, capture_output=True, text=True).stdout)
        for _ in range(args.repeats)]
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    record = {"benchmark": "serve_scale", "requests": args.requests,
              "scheduler": args.scheduler, "target_s": 10.0, "median": median,
              "repeats": args.repeats, "python": platform.python_version(),
              "date": datetime.now(UTC).strftime("%Y-%m-%d")}
    out = ROOT / "benchmarks" / "results" / "serve_scale.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
