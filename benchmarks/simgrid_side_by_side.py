"""leptonsim side by side with SimGrid 3.32 on the same task graphs.

    python benchmarks/simgrid_side_by_side.py agreement [--sizes 10 100 1000]
    python benchmarks/simgrid_side_by_side.py speed [--sizes 10000 100000 1000000] [--repeats 3]
    python benchmarks/simgrid_side_by_side.py cliff [--units 16 128] [--layers 10] [--repeats 3] [--base REV]
    python benchmarks/simgrid_side_by_side.py export layered N -o FILE | export focused CASE -o FILE
    python benchmarks/simgrid_side_by_side.py leptonsim FILE [--network fifo|fair|store_and_forward]

Both simulators read one neutral file (benchmarks/simgrid/lsdag.py): leptonsim's cluster,
its routes, the task graph with leptonsim's task times, every task pinned. The SimGrid side
is benchmarks/simgrid/sg_dag.cpp (s4u: one host per unit, split-duplex links, the routes
given explicitly, an Exec per task and a Comm per remote edge, one task at a time per
unit in task-id order as leptonsim's static scheduler), compiled on first use with g++
against the system SimGrid (Debian: `apt-get install libsimgrid-dev g++`) into
$XDG_CACHE_HOME/leptonsim (~/.cache/leptonsim). SimGrid runs its CM02 flow model with
the correction factors at 1 (CM02 below): max-min sharing, which is leptonsim's `fair`.

* agreement: focused cases (closed forms in benchmarks/simgrid/workloads.py) and the
  engine benchmark's layered DAG at --sizes tasks, three placements, fully connected and
  star; leptonsim fifo, fair and store_and_forward against SimGrid Lazy (its default
  solver) and Full, at surf/precision 1e-9 (default) and 1e-13. Fails (exit 1) unless
  fair equals SimGrid Full to 1e-9 on every focused case but rtt_unfair (a model
  difference) and the closed forms hold to 1e-12.
* speed: every contender in a fresh process, interleaved (A B C A B C ...), --repeats
  times; medians of the simulation call (`simulate(...)`, `Engine::run()`) and of the
  peak RSS (getrusage), ratios to leptonsim fifo taken within each repeat.
* cliff: leptonsim fifo and fair and SimGrid Lazy/Full as the cluster widens, --repeats
  interleaved runs each, medians; --base REV adds that commit's fair network (its own
  script, in a `git archive` tree) and fails (exit 1) unless its schedule hashes equal.

Exit codes: 0 done, 1 a check failed, 2 bad input (one line on stderr),
3 SimGrid or g++ absent (one line on stderr; nothing was run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (str(HERE.parent), str(HERE / "simgrid"), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import lsdag  # noqa: E402
import numpy as np  # noqa: E402
import workloads  # noqa: E402
from trees import digest, unpack  # noqa: E402

from leptonsim.errors import LeptonError, ScenarioError  # noqa: E402

RUNNER_SOURCE = HERE / "simgrid" / "sg_dag.cpp"   # and the file reader it includes:
RUNNER_HEADER = HERE / "simgrid" / "lsdag_read.hpp"
RESULTS = HERE / "results"
CM02 = ["--cfg=network/model:CM02", "--cfg=network/latency-factor:1", "--cfg=network/bandwidth-factor:1",
        "--cfg=network/weight-S:0", "--cfg=network/TCP-gamma:0", "--cfg=network/crosstraffic:0"]
FULL, FINE = ["--cfg=network/optim:Full"], ["--cfg=surf/precision:1e-13"]
SG_MODES = {"sg_lazy": CM02, "sg_full": CM02 + FULL, "sg_full_fine": CM02 + FULL + FINE}
NETWORKS = ("fifo", "fair", "store_and_forward")
UNAVAILABLE = 3
MACHINE: dict = {}   # taken when a run starts: its commit, and its load (the machine is shared)


class Unavailable(Exception):
    """SimGrid or a C++ compiler is not installed."""


# -- the SimGrid runner ---------------------------------------------------------------------
def runner() -> str:
    """Path of sg_dag compiled against the installed SimGrid (cached by source and flags)."""
    cxx = shutil.which(os.environ.get("CXX") or "g++")
    if not cxx:
        raise Unavailable(f"{os.environ.get('CXX') or 'g++'} not found (install it: apt-get install g++)")
    pc = subprocess.run(["pkg-config", "--cflags", "--libs", "simgrid"], capture_output=True, text=True) \
        if shutil.which("pkg-config") else None
    flags = pc.stdout.split() if pc and pc.returncode == 0 else ["-lsimgrid"]
    cmd = [cxx, "-O2", "-std=c++17", "-o", "OUT", str(RUNNER_SOURCE), *flags]
    sources = RUNNER_SOURCE.read_bytes() + RUNNER_HEADER.read_bytes()
    key = hashlib.sha256(sources + " ".join(cmd).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "leptonsim"
    exe = cache / f"sg_dag-{key}"
    if not exe.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f".sg_dag-{key}-{os.getpid()}"
        done = subprocess.run([str(tmp) if c == "OUT" else c for c in cmd], capture_output=True, text=True)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["?"]
            first = next((x for x in lines if "error" in x), lines[-1])
            raise Unavailable(f"cannot build the SimGrid runner ({first.strip()}); "
                              "install SimGrid: apt-get install libsimgrid-dev g++")
        tmp.replace(exe)
    return str(exe)


def run_sg(exe: str, path: Path, flags: list[str], *more: str) -> dict:
    done = subprocess.run([exe, str(path), *flags, *more], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"sg_dag {path.name} {' '.join(flags)} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- leptonsim on one file (also the speed contender's child process) -----------------------
def run_leptonsim(path: Path, network: str) -> dict:
    t0 = time.perf_counter()
    wl = lsdag.read(path)
    graph = wl.graph()
    _ = graph.successors, graph.predecessors, graph.in_degree   # cached CSR, outside the timing
    t1, c1 = time.perf_counter(), time.process_time()
    trace = lsdag.simulate_file(wl, network, graph)
    t2, c2 = time.perf_counter(), time.process_time()
    return {"sim": f"leptonsim-{network}", "tasks": graph.size, "makespan_s": trace.makespan_s,
            "build_s": t1 - t0, "sim_s": t2 - t1, "sim_cpu_s": c2 - c1,
            "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This program's own peak RSS (VmHWM): ru_maxrss would keep the peak of the process
    that started it (Linux keeps it across exec), which floors a small child at its parent's."""
    try:
        for row in Path("/proc/self/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rel(a: float, b: float) -> float:
    return (a - b) / b


def starts(trace, n: int) -> np.ndarray:
    s = np.empty(n)
    s[trace.task] = trace.task_start
    return s


# -- agreement --------------------------------------------------------------------------------
def compare(name: str, graph, cluster, work: Path, exe: str, speed: float) -> dict:
    path = work / f"{name}.lsdag"
    lsdag.write(path, graph, cluster, speed=speed, comment=name)
    wl = lsdag.read(path)
    g = wl.graph()
    traces = {net: lsdag.simulate_file(wl, net, g) for net in NETWORKS}
    row: dict = {"case": name, "tasks": g.size, "edges": g.num_edges,
                 **{net: tr.makespan_s for net, tr in traces.items()}}
    for key, flags in SG_MODES.items():
        dump = work / f"{name}.{key}.txt"
        row[key] = run_sg(exe, path, flags, "--dump", str(dump))["makespan_s"]
        sg_starts = np.loadtxt(dump, ndmin=2)[:, 1]
        row[f"max_start_diff_fair_{key}_s"] = float(np.abs(starts(traces["fair"], g.size) - sg_starts).max())
    for net in NETWORKS:
        row[f"rel_{net}_vs_sg_full"] = rel(row[net], row["sg_full"])
    row["rel_fair_vs_sg_lazy"] = rel(row["fair"], row["sg_lazy"])
    row["rel_fair_vs_sg_full_fine"] = rel(row["fair"], row["sg_full_fine"])
    return row


def agreement(a: argparse.Namespace) -> int:
    exe, work = runner(), a.work
    rows, failures = [], []
    for case, (saf, fair, why) in workloads.FOCUSED.items():
        r = compare(case, *workloads.focused(case), work, exe, 1e12)
        r.update(closed_store_and_forward=saf, closed_fair=fair, why=why)
        for net, closed in (("store_and_forward", saf), ("fair", fair)):
            if closed is not None and abs(r[net] - closed) > 1e-12 * closed:
                failures.append(f"{case}: {net} {r[net]!r} != closed form {closed!r}")
        if case != "rtt_unfair" and abs(r["rel_fair_vs_sg_full"]) > 1e-9:
            failures.append(f"{case}: fair {r['fair']!r} != SimGrid Full {r['sg_full']!r}")
        rows.append(r)
        print(line(r), flush=True)
    speed = workloads.engine_benchmark().UNIT.peak_flops
    for topology in ("full", "star"):
        for placement in ("alternate", "random", "heft"):
            for n in a.sizes:
                width = max(2, min(100, n // 10))
                g, cl = workloads.layered(n, width=width, placement=placement, topology=topology)
                rows.append(compare(f"layered_{n}w{width}_{placement}_{topology}", g, cl, work, exe, speed))
                print(line(rows[-1]), flush=True)
    write_result(a.out, {"cm02_flags": CM02, "full": FULL, "fine": FINE, "rows": rows, "failures": failures})
    for f in failures:
        print(f"FAILED {f}", file=sys.stderr)
    return 1 if failures else 0


def line(r: dict) -> str:
    return (f"{r['case']:<34} fair {r['fair']:.9g} fifo {r['fifo']:.9g} saf {r['store_and_forward']:.9g} "
            f"| SG lazy {r['sg_lazy']:.9g} full {r['sg_full']:.9g} "
            f"| fair-full {r['rel_fair_vs_sg_full']:+.2e} fine {r['rel_fair_vs_sg_full_fine']:+.2e} "
            f"fifo-full {r['rel_fifo_vs_sg_full']:+.2%}")


# -- speed ------------------------------------------------------------------------------------
def contenders(n: int, a: argparse.Namespace, path: Path, exe: str) -> dict[str, list[str]]:
    ls = [sys.executable, str(Path(__file__).resolve()), "leptonsim", str(path), "--network"]
    sg = [exe, str(path), *CM02]
    out = {"leptonsim-fifo": ls + ["fifo"]}
    if n <= a.fair_max:
        out["leptonsim-fair"] = ls + ["fair"]
    if n <= a.dag_max:
        out["simgrid-dag"] = sg
    out["simgrid-otf"] = sg + ["--on-the-fly"]
    out["simgrid-otf-full"] = sg + ["--on-the-fly", *FULL]
    return out


def child(cmd: list[str], tree: Path | None = None) -> dict:
    """Run one contender; `tree`: another commit's tree, put first on its PYTHONPATH."""
    env = None if tree is None else {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def speed(a: argparse.Namespace) -> int:
    exe, work = runner(), a.work
    sizes = []
    for n in a.sizes:
        path = work / f"layered{n}.lsdag"
        lsdag.write(path, *workloads.layered(n), speed=workloads.engine_benchmark().UNIT.peak_flops)
        runs: dict[str, list[dict]] = {}
        cmds = contenders(n, a, path, exe)
        for rep in range(a.repeats):
            for name, cmd in cmds.items():
                r = child(cmd) | {"loadavg": os.getloadavg()[0]}
                runs.setdefault(name, []).append(r)
                print(f"n={n:,} {name:<17} repeat {rep + 1}: sim {r['sim_s']:.3f} s, "
                      f"RSS {r['peak_rss_mb']:.0f} MB, makespan {r['makespan_s']:.9g} "
                      f"(load {r['loadavg']:.1f})", flush=True)
        sizes.append({"n": n, "file_mb": path.stat().st_size / 2**20, "runs": runs,
                      "summary": summary(n, runs)})
        path.unlink()
    write_result(a.out, {"cm02_flags": CM02, "repeats": a.repeats, "sizes": sizes})
    return 0


def summary(n: int, runs: dict[str, list[dict]]) -> dict:
    base = runs["leptonsim-fifo"]
    out = {}
    for name, rs in runs.items():
        ratios = [r["sim_s"] / b["sim_s"] for r, b in zip(rs, base, strict=True)]
        sim = statistics.median(r["sim_s"] for r in rs)
        out[name] = {"makespan_s": rs[0]["makespan_s"], "sim_s": sim, "tasks_per_s": n / sim,
                     "sim_s_min": min(r["sim_s"] for r in rs), "sim_s_max": max(r["sim_s"] for r in rs),
                     "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in rs),
                     "sim_ratio_to_fifo": statistics.median(ratios),
                     "sim_ratio_min": min(ratios), "sim_ratio_max": max(ratios)}
    return out


# -- the fair cliff -----------------------------------------------------------------------------
def cliff_contenders(path: Path, exe: str, base: Path | None) -> dict[str, tuple[list[str], Path | None]]:
    """name -> (command, the tree it runs in): leptonsim fifo and fair, the base commit's
    fair (its own script), SimGrid Lazy and Full."""
    ls = [sys.executable, __file__, "leptonsim", str(path), "--network"]
    out: dict[str, tuple[list[str], Path | None]] = {net: (ls + [net], None) for net in ("fifo", "fair")}
    if base is not None:
        script = str(base / "benchmarks" / "simgrid_side_by_side.py")
        out["fair_base"] = ([sys.executable, script, "leptonsim", str(path), "--network", "fair"], base)
    for key in ("sg_lazy", "sg_full"):
        out[key] = ([exe, str(path), *SG_MODES[key], "--on-the-fly"], None)
    return out


def cliff(a: argparse.Namespace) -> int:
    """Interleaved repeats (the order reversed every other one), medians of the simulation
    call; with --base, that commit's fair network side by side and its schedule compared."""
    exe, work = runner(), a.work
    base = unpack(a.base, work) if a.base else None
    rows, same = [], True
    for u in a.units:
        path = work / f"cliff{u}.lsdag"
        lsdag.write(path, *workloads.cliff(u, a.layers), speed=workloads.engine_benchmark().UNIT.peak_flops)
        cmds = cliff_contenders(path, exe, base)
        runs: dict[str, list[dict]] = {k: [] for k in cmds}
        for rep in range(a.repeats):
            for name in list(cmds) if rep % 2 == 0 else list(cmds)[::-1]:
                cmd, tree = cmds[name]
                runs[name].append(child(cmd, tree))
        row: dict = {"units": u, "tasks": runs["fifo"][0]["tasks"], "repeats": a.repeats}
        for name, rs in runs.items():
            sim = statistics.median(r["sim_s"] for r in rs)
            row.update({f"{name}_s": sim, f"{name}_s_all": [r["sim_s"] for r in rs],
                        f"{name}_tasks_per_s": row["tasks"] / sim, f"{name}_makespan_s": rs[0]["makespan_s"]})
            if "sim_cpu_s" in rs[0]:  # leptonsim's own CPU time, less moved by other work than wall
                row[f"{name}_cpu_tasks_per_s"] = row["tasks"] / statistics.median(r["sim_cpu_s"] for r in rs)
        if base is not None:
            row["fair_digest"] = digest(HERE.parent, path, "fair")
            row["fair_base_digest"] = digest(base, path, "fair")
            row["same_schedule_as_base"] = row["fair_digest"] == row["fair_base_digest"]
            same &= row["same_schedule_as_base"]
        rows.append(row)
        print(cliff_line(row), flush=True)
    write_result(a.out, {"layers": a.layers, "cm02_flags": CM02, "base": a.base, "rows": rows})
    return 0 if same else 1


def cliff_line(row: dict) -> str:
    names = ("fifo", "fair", "fair_base", "sg_lazy", "sg_full")
    rates = " ".join(f"{k} {row[f'{k}_tasks_per_s']:,.0f}" for k in names if f"{k}_s" in row)
    same = "" if "same_schedule_as_base" not in row else \
        ("; schedule = base's" if row["same_schedule_as_base"] else "; SCHEDULE DIFFERS FROM BASE")
    cpu = " ".join(f"{k} {row[f'{k}_cpu_tasks_per_s']:,.0f}" for k in names if f"{k}_cpu_tasks_per_s" in row)
    return (f"units {row['units']:>4} tasks {row['tasks']:>7,}: median tasks/s of {row['repeats']}: {rates} "
            f"(CPU time: {cpu}); "
            f"makespans fair {row['fair_makespan_s']!r} SG Full {row['sg_full_makespan_s']!r}{same}")


def write_result(out: Path, body: dict) -> None:
    res = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "command": " ".join(sys.argv[1:]),
           "machine": {**MACHINE, "loadavg_end": list(os.getloadavg())},
           "simgrid": simgrid_version(), **body}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)


def simgrid_version() -> str | None:
    done = subprocess.run(["pkg-config", "--modversion", "simgrid"], capture_output=True, text=True) \
        if shutil.which("pkg-config") else None
    return done.stdout.strip() if done and done.returncode == 0 else None


# -- command line -------------------------------------------------------------------------------
def export(a: argparse.Namespace) -> int:
    if a.kind == "layered":
        graph, cluster = workloads.layered(int(a.what), placement=a.placement, topology=a.topology)
        speed = workloads.engine_benchmark().UNIT.peak_flops
    elif a.what in workloads.FOCUSED:
        graph, cluster, speed = *workloads.focused(a.what), 1e12
    else:
        raise ScenarioError("case", f"one of {', '.join(workloads.FOCUSED)}", a.what, file="export")
    lsdag.write(a.out, graph, cluster, speed=speed, comment=f"{a.kind} {a.what}")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    agree = sub.add_parser("agreement", help="makespans side by side")
    agree.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    agree.add_argument("--out", type=Path, default=RESULTS / "simgrid_agreement.json")
    spd = sub.add_parser("speed", help="tasks/s and peak RSS side by side")
    spd.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    spd.add_argument("--repeats", type=int, default=3)
    spd.add_argument("--fair-max", type=int, default=100_000, help="largest size leptonsim fair runs")
    spd.add_argument("--dag-max", type=int, default=10_000,
                     help="largest size SimGrid's whole-DAG mode runs (quadratic in 3.32)")
    spd.add_argument("--out", type=Path, default=RESULTS / "simgrid_speed.json")
    clf = sub.add_parser("cliff", help="the fair network as the cluster widens")
    clf.add_argument("--units", type=int, nargs="+", default=[16, 128])
    clf.add_argument("--layers", type=int, default=10)
    clf.add_argument("--repeats", type=int, default=3)
    clf.add_argument("--base", help="a commit whose fair network runs side by side (git archive)")
    clf.add_argument("--out", type=Path, default=RESULTS / "simgrid_cliff.json")
    exp = sub.add_parser("export", help="write one workload file")
    exp.add_argument("kind", choices=["layered", "focused"])
    exp.add_argument("what", help="tasks (layered) or a case name (focused)")
    exp.add_argument("--placement", default="alternate", choices=["alternate", "random", "heft"])
    exp.add_argument("--topology", default="full", choices=["full", "star"])
    exp.add_argument("-o", "--out", required=True)
    one = sub.add_parser("leptonsim", help="run one file through leptonsim, print JSON")
    one.add_argument("file", type=Path)
    one.add_argument("--network", choices=NETWORKS, default="fifo")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    if a.command in ("agreement", "speed", "cliff"):
        MACHINE.update(workloads.engine_benchmark().machine())
    try:
        if a.command == "leptonsim":
            print(json.dumps(run_leptonsim(a.file, a.network)))
            return 0
        if a.command == "export":
            return export(a)
        with tempfile.TemporaryDirectory(prefix="lsdag-") as work:   # the workload files
            a.work = Path(work)
            return {"agreement": agreement, "speed": speed, "cliff": cliff}[a.command](a)
    except Unavailable as err:
        print(f"unavailable: {err}", file=sys.stderr)
        return UNAVAILABLE
    except (LeptonError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
