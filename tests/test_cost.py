"""Theorems every cost model in leptonsim.cost satisfies: a fixed task takes d / E,
a communication stand-in takes d, and time never falls when FLOPs or bytes grow.
A new model joins MODELS and must pass them unchanged."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leptonsim.cost import DEFAULT, CostModel, GpuCost, Roofline, TaskCost
from leptonsim.cost.calibrated import CalibratedCost, Profile
from leptonsim.cost.kinds import KernelCalibration, KindCost, KindFit
from leptonsim.cost.measured import TableCost
from leptonsim.cost.optable import parse_table
from leptonsim.graph import GraphBuilder, TaskGraph
from leptonsim.hardware import Cluster, ComputeUnit, LinkSpec, fully_connected, replicate
from leptonsim.models import LayerStack
from leptonsim.ops import Dense
from leptonsim.optimize import Estimator, enumerate_space, search
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.step import build_step
from leptonsim.result import run
from leptonsim.scenario import load

ROOT = Path(__file__).resolve().parents[1]

# a raw curve in which 2 MFLOP would finish before 1 MFLOP (efficiency x9 for flops x2)
# and efficiency dips (0.9 -> 0.5): monotone_curve must iron both out
PROFILE = Profile(peak_flops=1e11, memory_bandwidth=1.5e10, overhead_s=5e-6,
                  link_latency_s=3e-5, link_bandwidth=4e9,
                  efficiency_curve=((1e3, 0.01), (1e6, 0.1), (2e6, 0.9), (3e6, 0.5),
                                    (3.4e7, 1.0)))
CALIBRATION = KernelCalibration({"dense": KindFit(1e-4, 1.3, 0.7, 2e-5, 3),
                                 "conv2d.bwd": KindFit(0.0, 2.0, 0.0, 1e-5, 3)})
KINDS = ("dense", "conv2d.bwd", "relu")  # relu: not calibrated, the profile's roofline
# every unit ("*"), a dip at 1e9 FLOPs; dense by its own rows, relu by bytes, the rest by "*"
TABLE = parse_table("""kind,device,precision,flops,bytes,seconds
*,*,fp32,1e3,,2e-6
*,*,fp32,1e9,,1e-6
*,*,fp32,1e12,,4e-3
dense,*,fp32,1e6,,1e-5
dense,*,fp32,1e10,,3e-3
relu,*,fp32,,1e4,1e-6
relu,*,fp32,,1e8,1e-3
""".splitlines(keepends=True), "ops.csv")
MODELS: dict[str, CostModel] = {
    "roofline": Roofline(),
    "calibrated": CalibratedCost(PROFILE),
    "kinds": KindCost(PROFILE, CALIBRATION, tier="kind"),
    "table": TableCost(TABLE, extrapolate=True),
    "gpu": GpuCost(),
    "gpu-blend": GpuCost(overlap=0.25),
}
# exp/log interpolation of the efficiency can round a constant-time segment either way
ROUNDING = 1e-12

work = st.one_of(st.just(0.0), st.floats(0.0, 12.0).map(lambda e: 10.0 ** e))  # every decade
task = st.tuples(work, work, st.one_of(st.none(), st.floats(0.0, 10.0)), st.booleans(),
                 st.sampled_from(KINDS))
units = st.lists(st.tuples(st.floats(1e9, 1e15), st.floats(1e8, 1e13), st.floats(0.01, 1.0),
                           st.floats(0.0, 1e-3)), min_size=1, max_size=3)


def _graph(tasks: list[tuple[float, float, float | None, bool, str]]) -> TaskGraph:
    b = GraphBuilder()
    for i, (flops, nbytes, d, comm, kind) in enumerate(tasks):
        b.task(f"t{i}", flops=flops, nbytes=nbytes, duration_s=d, comm=comm and d is not None,
               kind=kind)
    return b.build()


def _cluster(specs: list[tuple[float, float, float, float]]) -> Cluster:
    return fully_connected([ComputeUnit(f"u{i}", peak, bw, efficiency=e, overhead_s=o)
                            for i, (peak, bw, e, o) in enumerate(specs)], LinkSpec(1e-6, 1e9))


@pytest.mark.parametrize("name", MODELS)
@given(tasks=st.lists(task, min_size=1, max_size=12), specs=units)
def test_fixed_tasks_take_d_over_e_and_comm_stand_ins_take_d(name, tasks, specs):
    graph, cluster = _graph(tasks), _cluster(specs)
    times = MODELS[name].task_times(graph, cluster)
    assert times.shape == (len(cluster.unit_types), graph.size)
    fixed = ~np.isnan(graph.duration_s)
    comm = fixed & graph.comm
    for row, unit in zip(times, cluster.unit_types, strict=True):
        assert row[fixed & ~comm].tolist() == (graph.duration_s[fixed & ~comm]
                                               / unit.efficiency).tolist()
        assert row[comm].tolist() == graph.duration_s[comm].tolist()
        assert (row[~fixed] >= 0).all()


@pytest.mark.parametrize("name", MODELS)
@given(columns=st.lists(st.tuples(work, work, work, work, st.sampled_from(KINDS)),
                        min_size=1, max_size=12), specs=units)
def test_time_is_monotone_in_flops_and_in_bytes(name, columns, specs):
    """More FLOPs or more bytes (or both) never take less time, by column (`seconds`)
    or as the tasks of a graph (`task_times`)."""
    f, b, df, db = (np.array([c[i] for c in columns]) for i in range(4))
    kinds = [c[4] for c in columns]
    model, cluster = MODELS[name], _cluster(specs)
    for unit in cluster.unit_types:
        base = model.seconds(f, b, unit, kinds)
        for more in (model.seconds(f + df, b, unit, kinds), model.seconds(f, b + db, unit, kinds),
                     model.seconds(f + df, b + db, unit, kinds)):
            assert (more >= base * (1 - ROUNDING)).all()
    small = [(x, y, None, False, k) for x, y, k in zip(f, b, kinds, strict=True)]
    large = [(x + dx, y + dy, None, False, k)
             for x, y, dx, dy, k in zip(f, b, df, db, kinds, strict=True)]
    t0 = model.task_times(_graph(small), cluster)
    t1 = model.task_times(_graph(large), cluster)
    assert (t1 >= t0 * (1 - ROUNDING)).all()


def test_the_default_is_the_analytic_roofline():
    unit = ComputeUnit("u", peak_flops=1e12, memory_bandwidth=1e11, efficiency=0.5,
                       overhead_s=1e-6)
    t = DEFAULT.seconds(np.array([1e9, 1e6]), np.array([1e6, 1e9]), unit)
    assert DEFAULT.name == "roofline"
    assert t.tolist() == pytest.approx([1e9 / 0.5e12 + 1e-6, 1e9 / 1e11 + 1e-6], rel=1e-15)


class Slower(TaskCost):
    """A model added as the next issue would add one: `name` and `seconds`, nothing else
    (here the roofline `factor` times slower)."""

    name = "slower"

    def __init__(self, factor: float, precision: str | None = None) -> None:
        self.factor, self.roofline = factor, Roofline(precision)

    def seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit,
                kinds: Sequence[str] | None = None) -> np.ndarray:
        return self.factor * self.roofline.seconds(flops, nbytes, unit, kinds)


class PerLayer(TaskCost):
    """Every column takes 1 s, whatever its work: a partition by layer count."""

    name = "per-layer"

    def seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit,
                kinds: Sequence[str] | None = None) -> np.ndarray:
        return np.ones(np.shape(flops))


GPU = ComputeUnit("gpu", 100e12, 2e12, memory_bytes=80e9, efficiency=0.5)


def _stack(widths: Sequence[int]):
    s = LayerStack("stack", (64,))
    for i, w in enumerate(widths):
        s.add(f"fc{i}", Dense(w))
    return s.build()


def test_build_step_partitions_with_the_cost_model_it_is_given():
    model = _stack([4096, 64, 64, 64, 64, 64])  # one heavy layer, then five light ones
    cfg = ParallelConfig(dp=1, pp=2, tp=1, batch=8, microbatches=2)
    cluster = fully_connected(replicate(GPU, 2), LinkSpec(1e-6, 1e11))
    assert build_step(model, cfg, cluster).stages == ((0, 1), (1, 6))
    assert build_step(model, cfg, cluster, cost=PerLayer()).stages == ((0, 3), (3, 6))


def test_the_estimator_and_the_search_cost_with_the_model_they_are_given():
    model = _stack([512] * 4)
    cluster = fully_connected(replicate(GPU, 4), LinkSpec(1e-6, 1e11))
    space = enumerate_space(4, 64, 4)
    est, slow = (Estimator(model, cluster, 64, cost=c)(space) for c in (DEFAULT, Slower(2.0)))
    assert slow.compute_s.tolist() == (2 * est.compute_s).tolist()
    assert slow.optimizer_s.tolist() == (2 * est.optimizer_s).tolist()
    one = fully_connected([GPU], LinkSpec(1e-6, 1e11))  # one unit: the step is its compute
    fast, slow_run = (search(model, one, 64, top=1, cost=c).winner for c in (DEFAULT, Slower(2.0)))
    assert slow_run.step_s == pytest.approx(2 * fast.step_s, rel=1e-12)
    assert slow_run.estimated == pytest.approx(2 * fast.estimated, rel=1e-12)


def test_run_simulates_with_the_cost_model_it_is_given():
    scenario = load(ROOT / "scenarios" / "seed_cnn_data_parallel.toml")[0]
    precision = scenario.cost.precision  # type: ignore[attr-defined]
    base = run(scenario, cost=Roofline(precision))
    slow = run(scenario, cost=Slower(3.0, precision))
    assert slow.metrics.total_work_s == pytest.approx(3 * base.metrics.total_work_s, rel=1e-12)
    assert slow.metrics.makespan_s > base.metrics.makespan_s


def _imports(package: str) -> set[str]:
    """Every leptonsim package a module of `package` imports (absolute or relative)."""
    found = set()
    for path in (ROOT / "leptonsim" / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                name = node.module if node.level == 0 else "leptonsim." * (node.level > 1) + node.module
                found.add(name.removeprefix("leptonsim.").split(".")[0])
            elif isinstance(node, ast.Import):
                found |= {a.name.removeprefix("leptonsim.").split(".")[0] for a in node.names}
    return found


def test_dependencies_point_one_way():
    """cost/ and execute/ never import the code that measures this machine; measure/
    never imports validate/ (which imports both)."""
    assert "measure" not in _imports("cost")
    assert "measure" not in _imports("execute")
    assert "validate" not in _imports("measure")


def test_a_scenarios_workload_is_partitioned_and_run_with_its_cost_model():
    """build_workload balances the stages with the model it is given, and the Scenario
    keeps it, so run() times the tasks with the same model that placed them."""
    from leptonsim.parallel.memory import block_starts
    from leptonsim.parallel.pipeline import partition_at
    from leptonsim.scenario import build_hardware, build_workload, documents, parse, scenario

    text = (ROOT / "scenarios" / "gpt3_ptdp.toml").read_text()
    ((_, doc),) = documents(parse(text))
    doc["hardware"]["units"][0]["count"] = 2
    doc["hardware"]["two_level"]["units_per_node"] = 2
    doc["parallel"].update(dp=1, pp=2, tp=1, tp_mode="full")
    doc["workload"]["model"].update(name="gpt2_small", batch=4, microbatches=2)
    cluster = build_hardware(doc)
    by_roofline = build_workload(doc, cluster)
    by_layer = build_workload(doc, cluster, PerLayer())
    model = by_layer.step.model
    n = len(model.layers)  # equal cost per layer, stages of whole blocks (Megatron's placement)
    assert by_layer.step.stages == tuple(partition_at([1.0] * n, block_starts(model), 2))
    assert by_roofline.step.stages != by_layer.step.stages
    s = scenario(doc, cluster, by_layer)
    assert s.cost is by_layer.cost
    assert run(s).metrics.total_work_s == pytest.approx(
        float(PerLayer().task_times(s.graph, cluster).min(axis=0).sum()), rel=1e-12)
