"""Where a run's memory goes (issue 14, item 3), two ways:

- `--tasks N`: the engine benchmark's layered DAG (engine_throughput.build), traced with
  tracemalloc; bytes per task after each phase (graph, engine set-up, event loop,
  trace) and the largest allocation sites of each phase by file and line.
- `--scenario FILE`: `result.run` of a scenario (its first variant), without writing
  outputs; wall time, RSS and peak RSS after each phase (build, simulate, metrics,
  report).

    PYTHONPATH=. python benchmarks/engine_memory.py --tasks 100000
    PYTHONPATH=. python benchmarks/engine_memory.py --scenario scenarios/gpt3_ptdp.toml
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (str(HERE.parent), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)


def by_phase(n: int, top: int) -> None:
    from engine_throughput import build

    from leptonsim.cost import Roofline
    from leptonsim.sim import Static
    from leptonsim.sim.engine import _Run
    from leptonsim.sim.network import FifoNetwork

    tracemalloc.start()
    snaps = [("start", tracemalloc.take_snapshot())]
    graph, cluster = build(n, 100, 2, 0.5, "alternate", 0)
    _ = graph.successors, graph.predecessors, graph.in_degree
    snaps.append(("graph", tracemalloc.take_snapshot()))
    times = Roofline().task_times(graph, cluster)
    run = _Run(graph, cluster, Static().plan(graph, cluster, times), times, FifoNetwork)
    snaps.append(("engine set-up", tracemalloc.take_snapshot()))
    run.simulate()
    snaps.append(("event loop", tracemalloc.take_snapshot()))
    trace = run._trace()
    snaps.append(("trace", tracemalloc.take_snapshot()))
    _, peak = tracemalloc.get_traced_memory()
    assert len(trace.task) == n
    total = 0.0
    for (_, before), (name, after) in zip(snaps, snaps[1:], strict=False):
        diff = after.compare_to(before, "lineno")
        added = sum(d.size_diff for d in diff) / n
        total += added
        print(f"{name:<14} +{added:6.1f} B/task  (cumulative {total:6.1f})")
        for d in diff[:top]:
            if d.size_diff >= n:
                f = d.traceback[0]
                print(f"    {d.size_diff / n:6.1f}  {f.filename.split('site-packages/')[-1]}:{f.lineno}")
    print(f"tracemalloc peak {peak / n:.1f} B/task at n={n:,}")


def scenario_phases(file: str) -> None:
    t0 = time.perf_counter()

    def mark(what: str) -> None:
        status = Path("/proc/self/status").read_text().splitlines()
        cur = int(next(ln for ln in status if ln.startswith("VmRSS")).split()[1])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"{time.perf_counter() - t0:7.1f} s  {what:<28} RSS {cur / 1024:8,.0f} MB, "
              f"peak {peak / 1024:8,.0f} MB", flush=True)

    from leptonsim import result, scenario
    from leptonsim.report import render
    mark("imports")
    s = next(x for x in scenario.load_each(file) if isinstance(x, scenario.Scenario))
    mark(f"build ({s.graph.size:,} tasks)")
    simulate = result.simulate

    def timed(*args, **kwargs):
        mark("cost model's task times")
        trace = simulate(*args, **kwargs)
        mark(f"simulate ({len(trace.xfer_channel):,} hops)")
        return trace

    result.simulate = timed  # type: ignore[assignment]
    r = result.run(s)
    mark("metrics, energy, step")
    render(r)
    mark("report")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, help="tracemalloc the benchmark's DAG of N tasks")
    ap.add_argument("--scenario", help="time and RSS by phase of a scenario's run")
    ap.add_argument("--top", type=int, default=8, help="allocation sites per phase")
    a = ap.parse_args(argv)
    if a.scenario:
        scenario_phases(a.scenario)
    if a.tasks:
        by_phase(a.tasks, a.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
