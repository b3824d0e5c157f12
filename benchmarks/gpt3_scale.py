"""GPT-3 175B training step at PTD-P scale: TP 8 x PP 16 x DP 8 = 1,024 units, 64
micro-batches per replica (issue 3, item 9: < 60 s and < 4 GB on a 2-core machine).

Times the three phases separately (scenario load + step graph build, simulation,
metrics) for `scenarios/gpt3_ptdp.toml`, in a fresh process per repeat, and reports
medians and the peak RSS. Writes benchmarks/results/gpt3_scale.json.

    python benchmarks/gpt3_scale.py [--repeats 3] [--microbatches 64]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "gpt3_ptdp.toml"


def once(microbatches: int) -> dict[str, float]:
    """One measurement, in this process."""
    sys.path.insert(0, str(ROOT))
    from leptonsim import metrics
    from leptonsim.cost import Roofline
    from leptonsim.scenario import loads
    from leptonsim.sim import simulate

    text = SCENARIO.read_text().replace("microbatches = 64", f"microbatches = {microbatches}")
    t0 = time.perf_counter()
    (scenario,) = loads(text, str(SCENARIO))
    t1 = time.perf_counter()
    times = Roofline().task_times(scenario.graph, scenario.cluster)
    trace = simulate(scenario.graph, scenario.cluster, "static")
    t2 = time.perf_counter()
    metrics.compute(scenario.graph, scenario.cluster, times, trace)
    t3 = time.perf_counter()
    return {"build_s": t1 - t0, "simulate_s": t2 - t1, "metrics_s": t3 - t2, "total_s": t3 - t0,
            "tasks": scenario.graph.size, "edges": scenario.graph.num_edges,
            "makespan_s": trace.makespan_s,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--microbatches", type=int, default=64)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(once(args.microbatches)))
        return
    runs = []
    for i in range(args.repeats):
        out = subprocess.run([sys.executable, __file__, "--child", "--microbatches",
                              str(args.microbatches)], check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout))
        print(f"run {i + 1}/{args.repeats}: " + ", ".join(f"{k} {v:.4g}" for k, v in runs[-1].items()))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": {"platform": platform.platform(), "cpu": cpu,
                          "cores": __import__("os").cpu_count(), "python": platform.python_version()},
              "microbatches": args.microbatches, "repeats": runs, "median": med,
              "targets": {"total_s": 60, "peak_rss_mb": 4096}}
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpt3_scale.json").write_text(json.dumps(report, indent=2) + "\n")
    print("median: " + ", ".join(f"{k} {v:.4g}" for k, v in med.items()))
    print(f"targets: total < 60 s -> {'met' if med['total_s'] < 60 else 'NOT met'}; "
          f"peak RSS < 4 GB -> {'met' if med['peak_rss_mb'] < 4096 else 'NOT met'}")


if __name__ == "__main__":
    main()
