"""Issue 15's capacity target: a capacity search of 20 rate points in <= 60 s on this
machine. Runs `leptonsim serve-capacity` on the bundled chat scenario (vLLM variant,
2,000 requests a point) with a tolerance small enough that the search uses all 20
points; median wall time of --repeats fresh processes, written to
benchmarks/results/serve_capacity.json.

    python benchmarks/serve_capacity.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "serve_llama3_8b_chat.toml"
POINTS = 20


def once() -> float:
    """Wall seconds of one search, from process start (imports included)."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "leptonsim", "serve-capacity", str(SCENARIO),
                        "--variant", "vllm", "--tolerance", "1e-9", "--max-points",
                        str(POINTS), "--out", out], check=True, capture_output=True,
                       cwd=ROOT)
        elapsed = time.perf_counter() - t0
        rows = (Path(out) / "vllm" / "capacity.csv").read_text().count("\n") - 1
    if rows != POINTS:
        raise SystemExit(f"expected {POINTS} points, the search simulated {rows}")
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    times = [once() for _ in range(args.repeats)]
    record = {"benchmark": "serve_capacity", "points": POINTS, "target_s": 60.0,
              "median_s": statistics.median(times), "runs_s": times,
              "python": platform.python_version(),
              "date": datetime.now(UTC).strftime("%Y-%m-%d")}
    out = ROOT / "benchmarks" / "results" / "serve_capacity.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
