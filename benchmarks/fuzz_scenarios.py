"""The big fuzz run: thousands of mutated bundled scenarios through `check` and `run`.

Mutants come from the same Hypothesis strategy as tests/test_fuzz_scenarios.py
(tests/fuzzing.py), drawn with a fixed seed, so a run is reproducible; each case runs
as the test's do (tests/fuzz_run.py): every command in a forked child under a 4 GB
RLIMIT_AS, with a hang guard, its peak RSS measured by wait4. `run` follows a clean
`check` for the cheap scenarios (tests/fuzzing.py: CHEAP), or for all with --run-all.

Prints the totals (cases, exit 0, exit 2, tracebacks, hangs, over-memory, max peak RSS)
and each failure class: its one-line signature (exception type and innermost frame, or
what broke the contract), how many cases, and the smallest reproducer, saved as TOML
under --save. Target (issue 10): 0 tracebacks, 0 hangs, none over 4 GB, >= 5,000 mutants.

    PYTHONPATH=. python benchmarks/fuzz_scenarios.py --cases 5000 --seed 0 --workers 2 \\
        --json benchmarks/results/fuzz_scenarios.json
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as with_seed  # noqa: E402

from tests.fuzz_run import Outcome, preload, run_case  # noqa: E402
from tests.fuzzing import CHEAP, Mutant, corpus, mutants  # noqa: E402


def generate(n: int, seed: int) -> list[Mutant]:
    """n distinct mutants, drawn by Hypothesis from `seed` (then seed + 1, ...)."""
    docs, found, seen = corpus(), list[Mutant](), set[str]()
    while len(found) < n:
        @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None,
                  suppress_health_check=list(HealthCheck))
        @with_seed(seed)
        @given(mutants(docs))
        def collect(m: Mutant) -> None:
            text = m.toml()
            if text not in seen and len(found) < n:
                seen.add(text)
                found.append(m)
        collect()
        seed += 1
    return found


def _case(job: tuple[int, Mutant, Path, bool, float]) -> tuple[Outcome, float]:
    i, mutant, root, run_all, timeout = job
    case_dir = root / f"{i:05d}"
    start = time.perf_counter()
    outcome = run_case(mutant, case_dir, run=run_all or mutant.scenario in CHEAP,
                       timeout=timeout)
    shutil.rmtree(case_dir, ignore_errors=True)
    return outcome, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=60.0, help="hang guard per command (s)")
    p.add_argument("--run-all", action="store_true", help="`run` mutants of every scenario")
    p.add_argument("--json", type=Path, help="write the totals and classes here")
    p.add_argument("--save", type=Path, default=ROOT / "results" / "fuzz",
                   help="directory for the reproducers (one TOML per failure class)")
    args = p.parse_args(argv)

    started = time.perf_counter()
    cases = generate(args.cases, args.seed)
    print(f"{len(cases)} mutants generated in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    results: list[tuple[Outcome, float]] = []
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp, ProcessPoolExecutor(
            args.workers, mp_context=get_context("spawn"), initializer=preload) as pool:
        jobs = [(i, m, Path(tmp), args.run_all, args.timeout) for i, m in enumerate(cases)]
        for done in pool.map(_case, jobs, chunksize=4):
            results.append(done)
            if len(results) % 250 == 0:
                print(f"{len(results)} cases, {sum(bool(o.failures) for o, _ in results)} "
                      f"failing, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    report = summarize(results, args, time.perf_counter() - started)
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def summarize(results: list[tuple[Outcome, float]], args: argparse.Namespace,
              wall: float) -> dict:
    kinds: Counter[str] = Counter()
    classes: dict[tuple[str, str, str], list[Outcome]] = {}
    for outcome, _ in results:
        for kind in {f.kind for f in outcome.failures}:
            kinds[kind] += 1
        for f in outcome.failures:
            classes.setdefault((f.kind, f.command, f.signature), []).append(outcome)
    args.save.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, ((kind, command, sig), outs) in enumerate(
            sorted(classes.items(), key=lambda kv: -len(kv[1]))):
        smallest = min(outs, key=lambda o: len(o.text))
        path = args.save / f"{n:02d}-{kind}-{re.sub(r'[^A-Za-z0-9]+', '_', sig)[:60]}.toml"
        head = "".join(f"# {m}\n" for m in smallest.mutant.mutations)
        path.write_text(f"# from {smallest.mutant.scenario}.toml\n{head}{smallest.text}")
        cmd = next(c for c in smallest.commands if c.argv[0] == command)
        rows.append({"kind": kind, "command": command, "signature": sig, "cases": len(outs),
                     "scenarios": dict(Counter(o.mutant.scenario for o in outs)),
                     "reproducer": str(path), "mutations": list(smallest.mutant.mutations),
                     "message": cmd.error if cmd.hung else _last_line(cmd.trace or cmd.stderr)})
    peaks = [(max(c.peak_rss for c in o.commands), o) for o, _ in results]
    peak, peak_case = max(peaks, key=lambda x: x[0])
    return {
        "command": "PYTHONPATH=. python benchmarks/fuzz_scenarios.py " + " ".join(
            sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(), "machine": f"{platform.processor() or platform.machine()}, "
                                        f"{_cpus()} cores, Python {platform.python_version()}",
        "wall_s": round(wall), "max_case_s": round(max(t for _, t in results), 1),
        "total": len(results),
        "exit_0": sum(o.code == 0 and not o.failures for o, _ in results),
        "exit_2": sum(o.code == 2 and not o.failures for o, _ in results),
        "ran": sum(len(o.commands) == 2 for o, _ in results),
        "failing_cases": sum(bool(o.failures) for o, _ in results),
        "tracebacks": kinds["traceback"] + kinds["exit"] + kinds["crash"],
        "hangs": kinds["hang"], "over_memory": kinds["memory"],
        "bad_refusals": kinds["refusal"], "wrote_on_refusal": kinds["wrote"],
        "bad_outputs": kinds["output"],
        "max_peak_rss_mb": round(peak / 2**20), "max_peak_rss_case": peak_case.mutant.mutations,
        "classes": rows,
    }


def print_report(r: dict) -> None:
    print(f"{r['total']} mutants ({r['ran']} also run) in {r['wall_s']} s; "
          f"slowest case {r['max_case_s']} s; commit {r['commit']}")
    print(f"exit 0: {r['exit_0']}   exit 2: {r['exit_2']}   failing: {r['failing_cases']}")
    print(f"tracebacks: {r['tracebacks']}   hangs: {r['hangs']}   over 4 GB: "
          f"{r['over_memory']}   bad refusals: {r['bad_refusals']}   wrote on refusal: "
          f"{r['wrote_on_refusal']}   bad outputs: {r['bad_outputs']}")
    print(f"max peak RSS: {r['max_peak_rss_mb']} MB")
    for c in r["classes"]:
        print(f"\n[{c['kind']}] {c['command']}: {c['signature']}  ({c['cases']} cases)")
        print(f"  {c['message']}")
        print(f"  e.g. {'; '.join(c['mutations'])[:200]}")
        print(f"  reproducer: {c['reproducer']}")


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def _commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
