"""Issue 14's end-to-end scale targets: `leptonsim run FILE` with its default outputs,
from a fresh interpreter, timed from outside (imports, build, simulation, report and
files), with the child's own peak RSS.

    python benchmarks/scale_targets.py [--repeats 3]

Targets: Llama 3 405B on 16,384 H100s <= 60 s and <= 4 GB; the 1T GPT on 3,072 A100s
<= 60 s; GPT-3 175B on 1,024 A100s (scenarios/gpt3_ptdp.toml) <= 15 s. Repeats are
interleaved (one of each, then again) and medians reported; on a shared machine read them
with its load. Writes benchmarks/results/scale_targets.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = {  # name: (scenario, wall target s, peak RSS target MB or None)
    "llama3_405b_16k": (ROOT / "benchmarks" / "scenarios" / "llama3_405b_16k.toml", 60, 4096),
    "gpt_1t_3072": (ROOT / "benchmarks" / "scenarios" / "gpt_1t_3072.toml", 60, None),
    "gpt3_175b_1024": (ROOT / "scenarios" / "gpt3_ptdp.toml", 15, None),
}


def child(scenario: str, out: str) -> None:
    """Run the CLI in this process, then print its peak RSS (MB) as the last line."""
    sys.path.insert(0, str(ROOT))
    from leptonsim.cli import main
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        code = main(["run", scenario, "--out", out])
        sys.stdout = stdout
    if code:
        raise SystemExit(code)
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def once(scenario: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--child", str(scenario), out],
                              check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    return {"wall_s": wall, **json.loads(done.stdout.splitlines()[-1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in RUNS}
    for i in range(args.repeats):
        for name, (scenario, _, _) in RUNS.items():
            runs[name].append(once(scenario))
            print(f"{name} run {i + 1}: wall {runs[name][-1]['wall_s']:.1f} s, "
                  f"peak RSS {runs[name][-1]['peak_rss_mb']:.0f} MB", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit,
              "machine": {"platform": platform.platform(), "cores": os.cpu_count(),
                          "python": platform.python_version(), "load": os.getloadavg()},
              "runs": {}}
    for name, (scenario, wall_target, rss_target) in RUNS.items():
        med = {k: statistics.median(r[k] for r in runs[name]) for k in runs[name][0]}
        met = med["wall_s"] <= wall_target and (rss_target is None
                                                 or med["peak_rss_mb"] <= rss_target)
        report["runs"][name] = {"scenario": str(scenario.relative_to(ROOT)), "repeats": runs[name],
                                "median": med, "target": {"wall_s": wall_target,
                                                          "peak_rss_mb": rss_target}, "met": met}
        print(f"{name}: median wall {med['wall_s']:.1f} s (target {wall_target} s), peak RSS "
              f"{med['peak_rss_mb']:.0f} MB{f' (target {rss_target} MB)' if rss_target else ''}: "
              f"{'met' if met else 'NOT met'}")
    out = ROOT / "benchmarks" / "results" / "scale_targets.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
