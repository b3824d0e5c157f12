"""The engine benchmark of two commits, side by side in one run: is a change slower?

Each commit is unpacked with `git archive` into a temporary directory, and each of its
measurements runs that commit's own `benchmarks/engine_throughput.py --child engine N`
in a fresh process (so each side times its own code with its own benchmark). The two
sides alternate, A B B A A B ..., so a machine that gets busier or quieter during the
run disturbs both alike (the machines here are shared and noisy), and neither side is
always the one that runs first. Reported: the median
wall time of each side, their ratio, and whether the two simulated the same schedule
(makespan and per-task start digest equal).

    PYTHONPATH=. python benchmarks/engine_ab.py --base 063b65c [--head HEAD] [--sizes 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "engine_ab.json"


def unpack(rev: str, into: Path) -> tuple[Path, str]:
    """The tree of `rev` under `into`, and its full commit hash."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    archive = into / f"{commit}.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), commit], check=True)
    tree = into / commit
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree, commit


def measure(tree: Path, n: int) -> dict:
    cmd = [sys.executable, str(tree / "benchmarks" / "engine_throughput.py"), "--child", "engine",
           str(n)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tree,
                          env={**os.environ, "PYTHONPATH": str(tree)})
    if proc.returncode != 0:
        raise RuntimeError(f"{tree.name[:8]} n={n} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the commit to compare against")
    ap.add_argument("--head", default="HEAD", help="the commit under test (default HEAD)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    rows, same = [], True
    with tempfile.TemporaryDirectory(prefix="leptonsim-ab-") as tmp:
        (base, base_c), (head, head_c) = unpack(a.base, Path(tmp)), unpack(a.head, Path(tmp))
        for n in a.sizes:
            runs: dict[str, list[dict]] = {"base": [], "head": []}
            for rep in range(a.repeats):
                pair = (("base", base), ("head", head))
                for side, tree in pair if rep % 2 == 0 else pair[::-1]:  # ABBA: no side always first
                    r = measure(tree, n)
                    runs[side].append(r)
                    print(f"  n={n:,} {side} repeat {rep + 1}: {r['wall_s']:.3f} s", flush=True)
            med = {s: statistics.median(r["wall_s"] for r in rs) for s, rs in runs.items()}
            cpu = {s: statistics.median(r["cpu_s"] for r in rs) for s, rs in runs.items()}  # load-proof
            agree = {(r["makespan_s"], r["digest"]) for rs in runs.values() for r in rs}
            same &= len(agree) == 1
            rows.append({"n": n, "base_wall_s": med["base"], "head_wall_s": med["head"],
                         "head_over_base": med["head"] / med["base"], "same_schedule": len(agree) == 1,
                         "base_cpu_s": cpu["base"], "head_cpu_s": cpu["head"],
                         "head_over_base_cpu": cpu["head"] / cpu["base"],
                         "peak_rss_mb": {s: statistics.median(r["peak_rss_mb"] for r in rs)
                                         for s, rs in runs.items()},
                         "wall_s_all": {s: [r["wall_s"] for r in rs] for s, rs in runs.items()}})
    res = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "base": base_c, "head": head_c,
           "repeats": a.repeats, "cores": os.cpu_count(), "loadavg_end": list(os.getloadavg()),
           "sizes": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    for r in rows:
        print(f"n={r['n']:,}: base {r['base_wall_s']:.3f} s, head {r['head_wall_s']:.3f} s, "
              f"head/base {r['head_over_base']:.3f} (median of {a.repeats}, alternated; CPU time "
              f"{r['head_over_base_cpu']:.3f}); "
              f"{'same schedule' if r['same_schedule'] else 'SCHEDULES DIFFER'}")
    print(f"results written to {a.out}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
