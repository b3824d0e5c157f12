"""How many parallel configurations per second the analytic estimate evaluates
(issue 5, item 5: at least 100k/s, vectorised NumPy).

GPT-3 175B on 1,024 A100s (128 nodes of 8): every (layout, dp, pp, tp <= 8,
micro-batches <= 256, schedule, chunks in {2, 4}, recompute) of batch 1536.
Reports the median of repeats for a cold estimate (per-layer and per-stage tables
built from scratch, as `leptonsim optimize` does) and a warm one (tables cached),
side by side in one run. Writes benchmarks/results/optimize_throughput.json.

    python benchmarks/optimize_throughput.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leptonsim.hardware import LinkSpec, replicate, two_level  # noqa: E402
from leptonsim.optimize import Estimator, enumerate_space  # noqa: E402
from leptonsim.scenario import loads  # noqa: E402
from leptonsim.zoo import get_model  # noqa: E402


def cluster():
    (s,) = loads((ROOT / "scenarios" / "gpt3_ptdp.toml").read_text())
    unit = s.cluster.units[0]
    return two_level(replicate(unit, 1024, "gpu"), 8, LinkSpec(2e-6, 300e9), LinkSpec(5e-6, 200e9))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    model, hw = get_model("gpt3_175b"), cluster()
    space = enumerate_space(1024, 1536, len(model.layers), max_tp=8, max_microbatches=256,
                            chunks=(2, 4))
    cold, warm = [], []
    for _ in range(args.repeats):
        est = Estimator(model, hw, 1536)
        t0 = time.perf_counter()
        est(space)
        t1 = time.perf_counter()
        est(space)
        t2 = time.perf_counter()
        cold.append(t1 - t0)
        warm.append(t2 - t1)
    n = len(space)
    res = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
           "machine": {"platform": platform.platform(), "python": platform.python_version(),
                       "cpu": next((ln.split(":", 1)[1].strip() for ln in
                                    Path("/proc/cpuinfo").read_text().splitlines()
                                    if ln.startswith("model name")), "")},
           "configurations": n, "cold_s": cold, "warm_s": warm,
           "cold_per_s": n / statistics.median(cold), "warm_per_s": n / statistics.median(warm)}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "optimize_throughput.json").write_text(json.dumps(res, indent=2) + "\n")
    print(f"{n} configurations; cold (tables built) median {statistics.median(cold):.3f} s = "
          f"{res['cold_per_s']:,.0f}/s; warm (vectorised evaluation only) median "
          f"{statistics.median(warm):.4f} s = {res['warm_per_s']:,.0f}/s")
    print(f"target >= 100,000/s for the vectorised estimate: "
          f"{'met' if res['warm_per_s'] >= 1e5 else 'NOT met'}; end to end on this space: "
          f"{'met' if res['cold_per_s'] >= 1e5 else 'not met'} (the fixed table setup dominates)")


if __name__ == "__main__":
    main()
