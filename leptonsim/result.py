"""One scenario in, one result out: `run` simulates it and compares the formulas,
`RunResult` holds what it gives (read by the report, the study and the API), and
`write_outputs` writes its files (outputs.py's levels) as one set. report.py reads RunResult only for
its types, so RunResult.report() can import it without a cycle."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import evaluate, metrics, step_metrics
from .cost import CostModel
from .energy import EnergyReport, cost_usd, energy_of
from .evaluate import FormulaRow
from .export import atomic_write, write_chrome_trace, write_tasks_csv, write_transfers_csv
from .files import json_text, publish
from .metrics import Metrics
from .noise import realise
from .parallel.mirror import routed
from .report import render, summary
from .scenario import Scenario
from .sim import simulate
from .step_metrics import Breakdown, StepMetrics
from .trace import Trace
from .trace_view import view_of


@dataclass(frozen=True)
class RunResult:
    """A simulated scenario: its trace, metrics, the formulas beside them, energy, cost."""

    scenario: Scenario
    trace: Trace
    metrics: Metrics
    formulas: list[FormulaRow]
    energy: EnergyReport
    cost_usd: float             # the step at the units' price per hour (0 without prices)
    breakdown: Breakdown        # the mean unit's step: compute, exposed comm, bubble, other
    step_metrics: StepMetrics | None  # throughput, MFU, HFU (a DNN step only)

    def report(self) -> str:
        """The terminal report `leptonsim run` prints for this result."""
        return render(self)



def run(scenario: Scenario, cost: CostModel | None = None) -> RunResult:
    """Simulate the scenario with its cost model, or with `cost` (which times the tasks;
    a DNN step keeps the stages its scenario balanced with scenario.cost)."""
    scenario, cost = drawn(scenario, cost or scenario.cost)
    times = cost.task_times(scenario.graph, scenario.cluster)
    network = scenario.cluster if scenario.step is None else routed(scenario.step.config,
                                                                    scenario.cluster)
    trace = simulate(scenario.graph, network, scenario.scheduler, cost, scenario.network)
    if scenario.step is not None:  # a step lasts at least as long as its input pipeline
        trace = scenario.step.with_input(trace)
    groups = None if scenario.step is None else scenario.step.mirrored()
    m = _metrics(scenario, times, trace, groups)
    graph = scenario.graph
    work = metrics.work_times(graph, times)
    obj = scenario.objective
    rows = evaluate.compare(
        m, scenario.cluster, work[int(np.argmin(work.sum(axis=1)))],
        greedy=scenario.scheduler == "greedy",
        communicated=len(trace.xfer_channel) > 0 or bool(graph.comm.any()),  # type: ignore[union-attr]
        objective=None if obj is None else (obj.training_error, obj.inference_error, obj.lam))
    price = sum(u.price_per_hour for u in scenario.cluster.units)
    collapsed = None if scenario.step is None else scenario.step.collapsed_bytes
    step = scenario.step
    return RunResult(scenario, trace, m, rows,
                     energy_of(scenario.cluster, trace, graph.comm, collapsed, groups),
                     cost_usd(m.makespan_s, 1, price),
                     step_metrics.breakdown(trace, graph, scenario.cluster, step, m.makespan_s),
                     None if step is None else step_metrics.step_metrics(
                         step, scenario.cluster, trace, m.makespan_s,
                         getattr(scenario.cost, "precision", None)))  # the workload's


def drawn(scenario: Scenario, cost: CostModel) -> tuple[Scenario, CostModel]:
    """Sample `scenario.sample` of its [noise] drawn into its cluster and `cost`
    (leptonsim.noise.realise); both as they are without noise."""
    if scenario.noise is None:
        return scenario, cost
    cluster, noisy = realise(scenario.noise, scenario.cluster, scenario.graph, cost,
                             scenario.sample)
    return replace(scenario, cluster=cluster, cost=noisy, noise=None), noisy


def _metrics(scenario: Scenario, times: np.ndarray, trace: Trace,
             groups: dict[int, tuple[int, ...]] | None) -> Metrics:
    """A symmetric run simulated one unit per group: metrics and energy count every
    unit of the group (`groups`; the written trace keeps the simulated units only)."""
    copies = None if scenario.step is None else scenario.step.copies()
    m = metrics.compute(scenario.graph, scenario.cluster, times, trace, copies, groups)
    step = scenario.step
    if step is not None and step.config.dp_mode == "mirrored":  # every replica's bytes
        g = scenario.graph
        moved = g.edge_bytes[g.pin[g.edge_src] != g.pin[g.edge_dst]].sum()
        return replace(m, transfer_bytes=float(moved) * step.config.dp)
    return m


def write_outputs(result: RunResult, out_dir: Path | str, outputs: str = "auto",
                  trace_format: str = "json", gantt_rows: str = "auto") -> list[Path]:
    """Write the files of level `outputs` (outputs.py: summary.json; standard adds
    trace.json, tasks.csv, transfers.csv, gantt.png; `auto`: standard up to 10^5 tasks,
    summary above) as one set (files.publish): a reader sees the previous run's files
    or this run's, never a mix, whenever the writer fails or dies. `trace_format`
    json.gz compresses the trace; `gantt_rows` (gantt_rows.GANTT_ROWS) groups the
    chart's units."""
    from .figure_style import save_figure  # matplotlib only when files are written
    from .gantt_rows import grouping
    from .outputs import choose, files
    from .plots import gantt

    text = json_text(summary(result), "summary.json")  # refused before anything is written
    s = result.scenario
    title = f"{s.name}{f' [{s.variant}]' if s.variant else ''} — {s.scheduler}"
    level = choose(outputs, s.graph.size)
    rows = grouping(s, gantt_rows) if level != "summary" else None
    names = files(level, f"trace.{trace_format}", grouped=rows is not None)
    writers = {
        "summary.json": lambda path: atomic_write(path, lambda f: f.write(text)),
        f"trace.{trace_format}": lambda path: write_chrome_trace(
            result.trace, path, view_of(s, len(result.trace.unit_names))),
        "tasks.csv": lambda path: write_tasks_csv(result.trace, path),
        "transfers.csv": lambda path: write_transfers_csv(result.trace, path),
        "gantt.png": lambda path: save_figure(gantt(result.trace, title, rows), path),
        "gantt_units.png": lambda path: save_figure(gantt(result.trace, title), path),
    }

    def build(staging: Path) -> None:
        for name in names:
            writers[name](staging / name)

    return publish(out_dir, "run", build)
