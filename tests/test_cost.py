"""Theorems every cost model in leptonsim.cost satisfies: a fixed task takes d / E,
a communication stand-in takes d, and time never falls when FLOPs or bytes grow.
A new model joins MODELS and must pass them unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leptonsim.cost import DEFAULT, CostModel, Roofline
from leptonsim.cost.calibrated import CalibratedCost, Profile
from leptonsim.cost.kinds import KernelCalibration, KindCost, KindFit
from leptonsim.graph import GraphBuilder, TaskGraph
from leptonsim.hardware import Cluster, ComputeUnit, LinkSpec, fully_connected

# a raw curve in which 2 MFLOP would finish before 1 MFLOP (efficiency x9 for flops x2)
# and efficiency dips (0.9 -> 0.5): monotone_curve must iron both out
PROFILE = Profile(peak_flops=1e11, memory_bandwidth=1.5e10, overhead_s=5e-6,
                  link_latency_s=3e-5, link_bandwidth=4e9,
                  efficiency_curve=((1e3, 0.01), (1e6, 0.1), (2e6, 0.9), (3e6, 0.5),
                                    (3.4e7, 1.0)))
CALIBRATION = KernelCalibration({"dense": KindFit(1e-4, 1.3, 0.7, 2e-5, 3),
                                 "conv2d.bwd": KindFit(0.0, 2.0, 0.0, 1e-5, 3)})
KINDS = ("dense", "conv2d.bwd", "relu")  # relu: not calibrated, the profile's roofline
MODELS: dict[str, CostModel] = {
    "roofline": Roofline(),
    "calibrated": CalibratedCost(PROFILE),
    "kinds": KindCost(PROFILE, CALIBRATION, tier="kind"),
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
