"""Engine throughput: seeded layered DAGs with transfers on 16 fully connected units.

For each size the engine (`leptonsim.sim.simulate` with the Static scheduler, its own
event loop for a fixed placement, analytic FIFO channels) and, up to `--baseline-max` tasks, the
one-simpy-process-per-task baseline (`baseline_per_task.py`) simulate the same
graph, placement, task times and routes. Every measurement runs in a fresh
subprocess (this script with a hidden `--child` flag), so peak RSS
(`getrusage(RUSAGE_SELF).ru_maxrss`) belongs to that one simulation and sizes do
not pollute each other. Only the `simulate(...)` call is timed; graph generation
is reported separately. The median of `--repeats` runs is reported.

Placement (`--placement`):
  alternate  (default) layer k runs on units 0-7 if k is even, 8-15 if odd,
             round-robin within the half. Every edge crosses units (one transfer
             per edge) and, with `--spread` > 0, no two events share an instant,
             so engine and baseline must produce the same schedule: the script
             asserts equal makespans (1e-9 relative) and identical per-task starts.
  random     seeded uniform placement. Some edges stay on one unit and then a
             finishing task's successor becomes ready at the very instant its unit
             frees: a tie the two simulators break differently, so makespans are
             reported side by side and not asserted.
  roundrobin task t on unit t % 16 (ties as for random).

Targets at 10^6 tasks: >= 200k tasks/s, <= 1 GB peak RSS, >= 10x the baseline
(the ratio is taken at the largest size where both ran; nothing is extrapolated).

    PYTHONPATH=. python benchmarks/engine_throughput.py [--sizes 10000 100000 1000000]
    PYTHONPATH=. python benchmarks/engine_throughput.py --profile 100000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402
import simpy  # noqa: E402

from leptonsim.generators import TaskCost, layered  # noqa: E402
from leptonsim.graph import TaskGraph  # noqa: E402
from leptonsim.hardware import Cluster, ComputeUnit, LinkSpec, fully_connected, replicate  # noqa: E402

UNITS = 16
UNIT = ComputeUnit("gpu", peak_flops=100e12, memory_bandwidth=2e12)   # 100 TFLOP/s, 2 TB/s
LINK = LinkSpec(latency_s=2e-6, bandwidth=25e9)                        # 2 us, 25 GB/s
TASK_FLOPS, TASK_BYTES = 1e9, 1e7        # 10 us compute-bound (memory 5 us) on UNIT
EDGE_BYTES = 2.5e5                       # 2 us + 10 us per hop
RESULTS = HERE / "results" / "engine_throughput.json"
BASELINE_MODES = ("baseline", "baseline-fifo")


# -- the workload ---------------------------------------------------------------------
def build(n: int, width: int, degree: int, spread: float, placement: str, seed: int
          ) -> tuple[TaskGraph, Cluster]:
    graph = layered(n, width, degree, TaskCost(flops=TASK_FLOPS, nbytes=TASK_BYTES, spread=spread),
                    edge_bytes=EDGE_BYTES, seed=seed)
    t = np.arange(n)
    if placement == "alternate":
        half = UNITS // 2
        graph.pin[:] = (t // width % 2) * half + (t % width) % half
    elif placement == "roundrobin":
        graph.pin[:] = t % UNITS
    elif placement == "random":
        graph.pin[:] = np.random.default_rng(seed + 1).integers(0, UNITS, n)
    elif placement != "none":
        raise ValueError(f"unknown placement {placement!r}")
    return graph, fully_connected(replicate(UNIT, UNITS, "gpu"), LINK)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _digest(start: np.ndarray, unit: np.ndarray) -> str:
    h = hashlib.sha256(np.ascontiguousarray(start, np.float64).tobytes())
    h.update(np.ascontiguousarray(unit, np.int64).tobytes())
    return h.hexdigest()[:16]


# -- one measurement, in a fresh process ---------------------------------------------------
def child(mode: str, n: int, a: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    graph, cluster = build(n, a.width, a.degree, a.spread,
                           "none" if mode == "heft" else a.placement, a.seed)
    _ = graph.successors, graph.predecessors, graph.in_degree  # cached CSR, outside the timing
    gen_s = time.perf_counter() - t0
    rss_before = _maxrss_mb()
    out: dict = {"mode": mode, "n": n, "edges": graph.num_edges, "gen_s": gen_s}
    if mode == "engine":
        from leptonsim.sim import simulate
        w0, c0 = time.perf_counter(), time.process_time()
        trace = simulate(graph, cluster, "static")
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        start = np.empty(n)
        unit = np.empty(n, np.int64)
        start[trace.task], unit[trace.task] = trace.task_start, trace.task_unit
        out.update(makespan_s=trace.makespan_s, hops=int(len(trace.xfer_channel)),
                   digest=_digest(start, unit))
    elif mode in BASELINE_MODES:
        from baseline_per_task import simulate_per_task

        from leptonsim.sim import Static
        queue = "fifo" if mode == "baseline-fifo" else "priority"
        w0, c0 = time.perf_counter(), time.process_time()
        res = simulate_per_task(graph, cluster, Static(), unit_queue=queue)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        out.update(makespan_s=res.makespan_s, hops=res.hops,
                   digest=_digest(res.task_start, res.task_unit))
    elif mode == "heft":
        from leptonsim.cost import Roofline
        from leptonsim.sim import Heft
        from leptonsim.sim.engine import run_plan
        w0, c0 = time.perf_counter(), time.process_time()
        times = Roofline().task_times(graph, cluster)
        plan = Heft().plan(graph, cluster, times)
        plan_s = time.perf_counter() - w0
        trace = run_plan(graph, cluster, plan, times)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        out.update(plan_s=plan_s, sim_s=wall - plan_s, makespan_s=trace.makespan_s,
                   hops=int(len(trace.xfer_channel)))
    else:
        raise ValueError(f"unknown mode {mode!r}")
    out.update(wall_s=wall, cpu_s=cpu, tasks_per_s=n / wall, rss_before_sim_mb=rss_before,
               peak_rss_mb=_maxrss_mb())
    return out


def spawn(mode: str, n: int, a: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(n),
           "--width", str(a.width), "--degree", str(a.degree), "--spread", str(a.spread),
           "--placement", a.placement, "--seed", str(a.seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} n={n} failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    """Median over repeats; makespans/digests must agree across repeats (determinism)."""
    first = runs[0]
    for r in runs[1:]:
        if r["makespan_s"] != first["makespan_s"] or r.get("digest") != first.get("digest"):
            raise AssertionError(f"{first['mode']} n={first['n']}: repeats disagree")
    med = {k: statistics.median(r[k] for r in runs)
           for k in ("wall_s", "cpu_s", "gen_s", "peak_rss_mb", "rss_before_sim_mb")}
    return {**{k: first[k] for k in ("mode", "n", "edges", "makespan_s", "hops")},
            "digest": first.get("digest"), **med,
            "max_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "tasks_per_s": first["n"] / med["wall_s"],
            "tasks_per_cpu_s": first["n"] / med["cpu_s"],
            "wall_s_all": [r["wall_s"] for r in runs]}


# -- machine -------------------------------------------------------------------------------
def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip() or None
    except OSError:
        commit = None
    return {"platform": platform.platform(), "cpu_model": cpu, "cores": os.cpu_count(),
            "mem_total_gb": mem_gb, "python": platform.python_version(),
            "simpy": simpy.__version__, "numpy": np.__version__, "git_commit": commit,
            "loadavg_start": list(os.getloadavg())}


# -- profiling -----------------------------------------------------------------------------
def profile(n: int, a: argparse.Namespace) -> None:
    """cProfile `simulate` at n tasks; own time grouped by where it is spent."""
    import cProfile
    import pstats

    from leptonsim.sim import simulate
    graph, cluster = build(n, a.width, a.degree, a.spread, a.placement, a.seed)
    _ = graph.successors, graph.predecessors, graph.in_degree
    w0 = time.perf_counter()
    simulate(graph, cluster, "static")
    plain = time.perf_counter() - w0
    prof = cProfile.Profile()
    prof.enable()
    simulate(graph, cluster, "static")
    prof.disable()
    st = pstats.Stats(prof)
    groups: dict[str, float] = {}
    rows = []
    total = 0.0
    for (file, line, fn), (_cc, nc, tt, _ct, _) in st.stats.items():  # type: ignore[attr-defined]
        total += tt
        if "simpy" in file:
            g = "simpy " + Path(file).name
        elif "leptonsim/sim/engine" in file or "leptonsim/sim/fixed" in file:
            g = "engine.py"
        elif "leptonsim/sim/network" in file:
            g = "network.py"
        elif "leptonsim" in file:
            g = "leptonsim other"
        elif file == "~":
            g = "builtins (" + fn.split(" of ")[0].strip("<>").replace("method ", "") + ")"
        else:
            g = "other"
        groups[g] = groups.get(g, 0.0) + tt
        rows.append((tt, nc, f"{Path(file).name}:{line} {fn}"))
    print(f"simulate at n={n}: {plain:.3f} s unprofiled ({n / plain:,.0f} tasks/s); "
          f"{total:.2f} s own time under cProfile")
    phases = _phases(graph, cluster)
    print("unprofiled phases: " + ", ".join(f"{k} {v:.3f} s" for k, v in phases.items()))
    print("\nown time by group:")
    for g, tt in sorted(groups.items(), key=lambda kv: -kv[1]):
        if tt < 0.0005:
            continue
        print(f"  {g:<45} {tt:7.3f} s  {100 * tt / total:5.1f} %")
    print("\ntop functions by own time:")
    for tt, nc, name in sorted(rows, reverse=True)[:25]:
        print(f"  {tt:7.3f} s  {100 * tt / total:5.1f} %  {nc:>10,} calls  {name}")


def _phases(graph: TaskGraph, cluster: Cluster) -> dict[str, float]:
    """Wall time of simulate's phases: cost+plan, engine set-up, event loop, trace."""
    from leptonsim.cost import Roofline
    from leptonsim.sim import Static
    from leptonsim.sim.engine import _Run
    from leptonsim.sim.network import FifoNetwork
    t0 = time.perf_counter()
    times = Roofline().task_times(graph, cluster)
    plan = Static().plan(graph, cluster, times)
    t1 = time.perf_counter()
    run = _Run(graph, cluster, plan, times, FifoNetwork)
    t2 = time.perf_counter()
    run.simulate()
    t3 = time.perf_counter()
    run._trace()
    t4 = time.perf_counter()
    return {"cost+plan": t1 - t0, "set-up": t2 - t1, "event loop": t3 - t2, "trace": t4 - t3}


# -- report --------------------------------------------------------------------------------
def fmt_rate(x: float | None) -> str:
    return "not run" if x is None else f"{x:,.0f}"


def print_table(res: dict) -> None:
    hdr = (f"{'tasks':>9} {'gen s':>6} {'xfer/task':>9} {'engine s':>9} {'engine t/s':>11} "
           f"{'eng RSS MB':>10} {'base s':>8} {'base t/s':>9} {'fifo t/s':>9} {'base RSS MB':>11} "
           f"{'ratio':>6}  makespan engine / baseline (s)")
    print(hdr)
    for row in res["sizes"]:
        e, b, f = row["engine"], row.get("baseline"), row.get("baseline_fifo")
        ratio = row.get("ratio")
        print(f"{e['n']:>9,} {e['gen_s']:>6.2f} {e['hops'] / e['n']:>9.3f} {e['wall_s']:>9.3f} "
              f"{e['tasks_per_s']:>11,.0f} {e['max_peak_rss_mb']:>10.0f} "
              f"{(b['wall_s'] if b else float('nan')):>8.3f} "
              f"{fmt_rate(b and b['tasks_per_s']):>9} {fmt_rate(f and f['tasks_per_s']):>9} "
              f"{(b['max_peak_rss_mb'] if b else float('nan')):>11.0f} "
              f"{(f'{ratio:.1f}x' if ratio else '-'):>6}  "
              f"{e['makespan_s']:.9g} / {format(b['makespan_s'], '.9g') if b else 'not run'}"
              f"{'  (' + row['match'] + ')' if b else ''}")
    for h in res.get("heft", []):
        print(f"HEFT n={h['n']:,}: plan {h['plan_s']:.2f} s + simulate {h['sim_s']:.2f} s "
              f"(peak RSS {h['peak_rss_mb']:.0f} MB, makespan {h['makespan_s']:.6g} s, "
              f"{h['hops'] / h['n']:.3f} transfers/task)")


def verdicts(res: dict) -> list[str]:
    rows = res["sizes"]
    big = max(rows, key=lambda r: r["engine"]["n"])
    e = big["engine"]
    out = [f"throughput at n={e['n']:,}: {e['tasks_per_s']:,.0f} tasks/s vs >= 200,000: "
           f"{'MET' if e['tasks_per_s'] >= 200_000 else 'NOT MET'} ({e['tasks_per_s'] / 2e5:.2f}x target)",
           f"peak RSS at n={e['n']:,}: {e['max_peak_rss_mb']:.0f} MB vs <= 1024 MB: "
           f"{'MET' if e['max_peak_rss_mb'] <= 1024 else 'NOT MET'}"]
    both = [r for r in rows if r.get("ratio")]
    if both:
        r = max(both, key=lambda r: r["engine"]["n"])
        note = "" if r["engine"]["n"] == e["n"] else \
            f" (baseline not run at n={e['n']:,}; ratio at the largest size where both ran)"
        out.append(f"speed-up at n={r['engine']['n']:,}: {r['ratio']:.1f}x vs >= 10x: "
                   f"{'MET' if r['ratio'] >= 10 else 'NOT MET'}{note}")
    else:
        out.append("speed-up: baseline not run at any size")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-max", type=int, default=100_000)
    ap.add_argument("--no-fifo", action="store_true", help="skip the FIFO-Resource baseline timing")
    ap.add_argument("--degree", type=int, default=2)
    ap.add_argument("--width", type=int, default=100)
    ap.add_argument("--spread", type=float, default=0.5,
                    help="task cost drawn in [1-s, 1+s] x nominal (> 0 avoids simultaneous events)")
    ap.add_argument("--placement", choices=["alternate", "random", "roundrobin"], default="alternate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heft-sizes", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--profile", type=int, metavar="N", help="cProfile the engine at N tasks and exit")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.child:
        print(json.dumps(child(a.child[0], int(a.child[1]), a)))
        return 0
    if a.profile:
        profile(a.profile, a)
        return 0

    started = datetime.now(UTC)
    res: dict = {"date": started.isoformat(timespec="seconds"), "machine": machine(),
                 "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
                 "config": {"units": UNITS, "unit": {"peak_flops": UNIT.peak_flops,
                                                     "memory_bandwidth": UNIT.memory_bandwidth},
                            "link": {"latency_s": LINK.latency_s, "bandwidth": LINK.bandwidth},
                            "task_flops": TASK_FLOPS, "task_bytes": TASK_BYTES,
                            "edge_bytes": EDGE_BYTES, "width": a.width, "degree": a.degree,
                            "spread": a.spread, "placement": a.placement, "seed": a.seed,
                            "repeats": a.repeats, "baseline_max": a.baseline_max,
                            "scheduler": "static"},
                 "sizes": [], "heft": []}
    exact = a.placement == "alternate" and a.spread > 0
    failures = []
    for n in sorted(a.sizes):
        modes = ["engine"]
        if n <= a.baseline_max:
            modes += ["baseline"] + ([] if a.no_fifo else ["baseline-fifo"])
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        for rep in range(a.repeats):
            for m in modes:
                r = spawn(m, n, a)
                runs[m].append(r)
                print(f"  n={n:,} {m:<13} repeat {rep + 1}: {r['wall_s']:.3f} s "
                      f"({r['tasks_per_s']:,.0f} tasks/s, peak RSS {r['peak_rss_mb']:.0f} MB)",
                      flush=True)
        row: dict = {"n": n, "engine": summarise(runs["engine"])}
        if "baseline" in runs:
            e, b = row["engine"], summarise(runs["baseline"])
            row["baseline"] = b
            row["ratio"] = e["tasks_per_s"] / b["tasks_per_s"]
            if "baseline-fifo" in runs:
                row["baseline_fifo"] = summarise(runs["baseline-fifo"])
                row["ratio_vs_fifo"] = e["tasks_per_s"] / row["baseline_fifo"]["tasks_per_s"]
            rel = abs(e["makespan_s"] - b["makespan_s"]) / max(abs(e["makespan_s"]), 1e-300)
            row["makespan_rel_diff"] = rel
            same = rel <= 1e-9 and e["digest"] == b["digest"] and e["hops"] == b["hops"]
            row["match"] = ("identical schedule" if same else
                            f"differ by {rel:.2e} rel" + ("" if exact else ": tie-breaking"))
            if exact and not same:
                failures.append(f"n={n}: engine and baseline disagree ({row['match']}, "
                                f"hops {e['hops']} vs {b['hops']}) in a tie-free configuration")
        res["sizes"].append(row)
    for n in a.heft_sizes:
        h = spawn("heft", n, a)
        print(f"  n={n:,} heft: plan {h['plan_s']:.2f} s, simulate {h['sim_s']:.2f} s", flush=True)
        res["heft"].append(h)
    res["machine"]["loadavg_end"] = list(os.getloadavg())
    res["elapsed_s"] = (datetime.now(UTC) - started).total_seconds()
    res["verdicts"] = verdicts(res)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    print()
    print_table(res)
    print()
    for v in res["verdicts"]:
        print(v)
    print(f"\nresults written to {a.out}")
    if failures:
        print("\n".join(["ASSERTION FAILED:"] + failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
