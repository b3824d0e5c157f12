"""Theorems of the GPU cost model (cost/gpu.py) and of the GEMM shapes the ops hand it:
it is the roofline when it knows nothing more, SMs never slow a GEMM down, no GEMM
beats its FLOPs at the achievable peak, time is monotone in every dimension, a shard's
GEMMs are 1/tp of the layer's, and the estimator prices layers as the step graph does."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import leptonsim as ls
from leptonsim.cli import main
from leptonsim.cost import GpuCost, Roofline
from leptonsim.cost.gpu import (
    K_FILL,
    OPERAND_BYTES,
    TILE_EFFICIENCY,
    gemm_efficiency,
    gemm_seconds,
    operand_demand,
    tile_efficiency,
)
from leptonsim.errors import GraphError
from leptonsim.graph import GemmRows, GraphBuilder
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected
from leptonsim.ops import GRU, LSTM, Conv2D, Dense, DotInteraction, MultiHeadSelfAttention
from leptonsim.ops.base import Gemm
from leptonsim.optimize import Estimator
from leptonsim.optimize.space import SCHEDULES, Space
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.step import build_step
from leptonsim.parallel.tensor import layer_roles
from leptonsim.parallel.work import layer_work
from leptonsim.scenario import loads
from leptonsim.zoo.transformer import gpt

ROUNDING = 1e-12  # peak = per-SM rate x sms, divided back by sms, rounds either way
PER_SM = 312e12 / 108  # an A100's fp16 tensor peak per SM (datasheet / whitepaper)
dims = st.integers(1, 20_000)
gemm = st.tuples(dims, dims, dims, st.integers(1, 64), st.integers(1, 4))
sms = st.integers(1, 200)
efficiency = st.floats(0.05, 1.0)


def _unit(sm: int, eff: float = 0.8, per_sm: float = PER_SM, **kw: float) -> ComputeUnit:
    peak = per_sm * (sm or 108)
    return ComputeUnit("gpu", peak, 2e12, efficiency=eff, sms=sm, **kw)  # type: ignore[arg-type]


def _rows(*gemms: tuple[int, ...]) -> GemmRows:
    return GemmRows.of([[Gemm(*g)] for g in gemms])


@given(st.lists(st.tuples(st.floats(0, 1e15), st.floats(0, 1e12)), min_size=1, max_size=20),
       efficiency, st.floats(0.0, 1e-3))
def test_it_is_the_roofline_when_it_knows_no_more(columns, eff, overhead):
    """sms = 0, bandwidth efficiency 1, overlap "max", no GEMM shapes, one kernel per
    task: GpuCost's times are Roofline's, to the bit, by column and by graph."""
    unit = ComputeUnit("u", 1e14, 1e12, efficiency=eff, overhead_s=overhead)
    flops, nbytes = (np.array(c) for c in zip(*columns, strict=True))
    gpu, roof = GpuCost(overlap="max"), Roofline()
    assert gpu.seconds(flops, nbytes, unit).tolist() == roof.seconds(flops, nbytes, unit).tolist()
    b = GraphBuilder()
    for i, (f, n) in enumerate(columns):
        b.task(f"t{i}", flops=f, nbytes=n)
    graph, cluster = b.build(), fully_connected([unit], LinkSpec(1e-6, 1e9))
    assert gpu.task_times(graph, cluster).tolist() == roof.task_times(graph, cluster).tolist()


@given(gemm, sms, st.integers(1, 100), efficiency)
def test_more_sms_never_make_a_gemm_slower(g, sm, more, eff):
    """At a fixed peak per SM, adding SMs never lengthens a GEMM: every tile shape's
    waves can only fall, and t is the fastest shape's."""
    rows = _rows(g)
    few, many = (gemm_seconds(rows, _unit(s, eff)) for s in (sm, sm + more))
    assert many[0] <= few[0] * (1 + ROUNDING)


@given(gemm, st.integers(0, 200), efficiency)
def test_no_gemm_beats_its_flops_at_the_achievable_peak(g, sm, eff):
    """t >= FLOPs / (peak x efficiency), with or without SMs: efficiency is the fraction
    of large GEMMs; quantisation and pipeline fill only add. And quantisation never
    makes a GEMM faster than the model without it (sms = 0) at the same peak."""
    rows, unit = _rows(g), _unit(sm, eff)
    t = gemm_seconds(rows, unit)[0]
    assert t >= rows.flops()[0] / (unit.peak() * eff)
    assert gemm_efficiency(rows, unit)[0] <= eff
    unquantised = ComputeUnit("gpu", unit.peak(), 2e12, efficiency=eff)
    assert t >= gemm_seconds(rows, unquantised)[0] * (1 - 1e-12)


@given(gemm, st.sampled_from(("m", "n", "k")), st.integers(1, 5_000), st.integers(0, 200))
def test_time_is_monotone_in_each_dimension(g, dim, grow, sm):
    """Non-decreasing in m and n (a staircase: tiles and waves are whole numbers) and
    strictly increasing in k, the tile's main loop."""
    m, n, k, batch, count = g
    bigger = {"m": (m + grow, n, k), "n": (m, n + grow, k), "k": (m, n, k + grow)}[dim]
    unit = _unit(sm)
    t0, t1 = (gemm_seconds(_rows((*shape, batch, count)), unit)[0]
              for shape in ((m, n, k), bigger))
    assert t1 >= t0
    if dim == "k":
        assert t1 > t0


@given(gemm, sms, st.floats(1 / 64, 1.0), st.sampled_from(("fp32", "fp64")))
def test_a_precision_asking_less_operand_feed_is_never_less_efficient(g, sm, share, wide):
    """Tile efficiency follows the operand feed (operand_demand): a 4- or 8-byte
    precision whose peak is a small enough share of the fp16 tensor cores' asks less
    feed per FLOP, so every GEMM reaches at least fp16's fraction of its own peak; and
    TF32 at half fp16's rate (twice the bytes) asks exactly fp16's feed, so it reaches
    exactly fp16's fraction."""
    fp16 = PER_SM * sm
    peaks = (("fp16", fp16), ("tf32", fp16 / 2), (wide, fp16 * share * 2 / OPERAND_BYTES[wide]))
    unit = _unit(sm, peaks=peaks)  # type: ignore[arg-type]
    rows = _rows(g)
    ref = gemm_efficiency(rows, unit, "fp16")[0]
    assert gemm_efficiency(rows, unit, wide)[0] >= ref * (1 - ROUNDING)
    assert gemm_efficiency(rows, unit, "tf32")[0] == pytest.approx(ref, rel=1e-12)


def test_fp32_simt_runs_every_tile_at_the_largest_tiles_rate():
    """A V100 (125 fp16 / 15.7 fp32 TFLOP/s): fp32's feed demand is a quarter of
    fp16's, below every cuBLAS tile's reuse share (64x64: 0.375), so no tile is
    penalised; at fp16 the 64x64 tile runs at 0.375 of the largest's rate."""
    unit = _unit(80, per_sm=125e12 / 80, peaks=(("fp16", 125e12), ("fp32", 15.7e12)))  # type: ignore[arg-type]
    assert operand_demand(unit, "fp32") == pytest.approx(15.7 * 4 / (125 * 2))
    assert tile_efficiency(unit, "fp32").tolist() == [1.0] * len(TILE_EFFICIENCY)
    assert tile_efficiency(unit, "fp16").tolist() == TILE_EFFICIENCY.tolist()
    assert operand_demand(_unit(80), "fp32") == 1.0  # one peak only: nothing known


def test_the_last_wave_and_the_padded_tile_cost_real_time():
    """108 tiles of 256x128 fill one wave of an A100; one more row of output starts a
    second wave (of some tile shape): the GEMM slows by far more than its 1/27648 more
    work. A large square GEMM runs at the achievable peak less its last wave's idle
    SMs and its pipeline fill: 2048 tiles of 256x128 in 19 waves of 108."""
    unit = _unit(108, eff=0.8)
    full, over = gemm_seconds(_rows((256 * 108, 128, 4096), (256 * 108 + 1, 128, 4096)), unit)
    assert over > 1.2 * full
    big = gemm_efficiency(_rows((8192, 8192, 8192)), unit)[0]
    assert big == pytest.approx(0.8 * 8192 / (8192 + K_FILL) * 2048 / (19 * 108), rel=1e-12)


@given(st.floats(0, 1e13), st.floats(0, 1e10), st.floats(0, 1), st.integers(0, 50),
       st.floats(0, 1e-4), st.floats(0.1, 1.0))
def test_overlap_and_launches_are_as_stated(flops, nbytes, a, kernels, overhead, bw_eff):
    """t = max(C, M) + a min(C, M) + overhead x kernels, with C at peak x efficiency and
    M at bandwidth x bandwidth efficiency; "max" is a = 0 and "sum" a = 1."""
    unit = ComputeUnit("u", 1e14, 1e12, efficiency=0.7, overhead_s=overhead,
                       bandwidth_efficiency=bw_eff)
    c, m = flops / (1e14 * 0.7), nbytes / (1e12 * bw_eff)
    for rule, blend in (("max", 0.0), ("sum", 1.0), (a, a)):
        t = GpuCost(overlap=rule).work_seconds(np.array([flops]), np.array([nbytes]), unit,
                                               kernels=np.array([kernels]))
        assert t[0] == pytest.approx(max(c, m) + blend * min(c, m) + overhead * kernels,
                                     rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("bad", ["mix", -0.1, 1.5, True])
def test_an_overlap_rule_out_of_its_range_is_refused(bad):
    with pytest.raises(ValueError, match="overlap"):
        GpuCost(overlap=bad)


def test_a_task_prices_its_gemms_by_shape_and_the_rest_as_flat_work():
    """The GEMM rows of a task replace their FLOPs' flat time by their shaped time;
    the task's other FLOPs stay at peak x efficiency."""
    unit = _unit(108)
    g = Gemm(2048, 864, 2304)
    b = GraphBuilder()
    b.task("a", flops=g.flops + 1e9, nbytes=0.0, gemms=[g], kernels=3)
    b.task("b", flops=1e9, nbytes=0.0)
    graph = b.build()
    t = GpuCost().compute_times(graph, unit)
    rate = unit.peak() * unit.efficiency
    expected = gemm_seconds(graph.gemms, unit)[0] + 1e9 / rate
    assert t.tolist() == pytest.approx([expected + 3 * unit.overhead_s, 1e9 / rate])


def test_gemm_rows_are_checked_with_the_graph():
    b = GraphBuilder()
    b.task("a", flops=1.0, gemms=[Gemm(0, 1, 1)])
    with pytest.raises(GraphError, match="m must be >= 1"):
        b.build()


OPS = [(Dense(96), (7, 40)), (Dense(8, use_bias=False), (13,)),
       (Conv2D(16, 3, padding="same", use_bias=False), (12, 12, 5)),
       (Conv2D(8, (3, 1), stride=2), (9, 7, 3)), (LSTM(24), (6, 10)), (GRU(12), (5, 4)),
       (MultiHeadSelfAttention(4), (16, 32)), (DotInteraction(), (5, 8))]


@pytest.mark.parametrize(("op", "shape"), OPS, ids=lambda v: type(v).__name__)
@given(batch=st.integers(1, 9))
def test_an_ops_gemms_are_its_matmul_flops(op, shape, batch):
    """Every op phase's GEMMs are among its FLOPs (the rest is biases, softmax, gate
    math), all of them for a bias-free Dense or Conv2D; the batch lives in a GEMM
    dimension, so the GEMMs' FLOPs scale with it exactly; and each GEMM launches at
    least one kernel."""
    for phase in ("forward", "backward_data", "backward_weights"):
        cost = op.cost(shape, batch, phase, 2)
        gemm_flops = sum(g.flops for g in cost.gemms)
        assert gemm_flops <= cost.flops
        if getattr(op, "use_bias", True) is False:
            assert gemm_flops == cost.flops
        assert gemm_flops == batch * sum(g.flops for g in op.cost(shape, 1, phase, 2).gemms)
        assert cost.kernels >= sum(g.count for g in cost.gemms)


@pytest.mark.parametrize("tp", [2, 4])
def test_a_shards_gemms_are_one_tp_th_of_the_layers(tp):
    """Splitting divides the right dimension: each sharded layer's GEMM FLOPs on one
    rank are exactly 1/tp of the unsplit layer's, and replicated layers keep theirs."""
    model = gpt(2, 64, 96, 16, 4)
    roles = layer_roles(model)
    whole = layer_work(model, 3, 2, 1, roles)
    shard = layer_work(model, 3, 2, tp, roles)
    for i, role in enumerate(roles):
        for phase in (0, 1):
            mine = sum(g.flops for g in shard.gemms[i][phase])
            full = sum(g.flops for g in whole.gemms[i][phase])
            assert mine * (tp if role.sharded else 1) == full


def test_the_estimator_prices_layers_as_the_step_graph_does():
    """One cost model (issue 11): on one unit, the estimate's compute is the sum of the
    step graph's forward and backward task times under the same GpuCost."""
    model = gpt(2, 128, 256, 64, 4)
    unit = _unit(108)
    one = fully_connected([unit], LinkSpec(1e-6, 1e11))
    cost = GpuCost("fp16")
    cfg = ParallelConfig(batch=8, microbatches=2)
    step = build_step(model, cfg, one, cost)
    assert step.graph.gemms is not None and len(step.graph.gemms) > 0
    times = cost.task_times(step.graph, one)[0]
    compute = sum(t for t, k in zip(times, step.graph.kinds, strict=True) if k != "optimizer")
    space = Space(*(np.array([v]) for v in (0, 1, 1, 1, 2, SCHEDULES.index("1f1b"), 1, False)))
    est = Estimator(model, one, 8, cost=cost)(space)
    assert est.compute_s[0] == pytest.approx(compute, rel=1e-9)


SCENARIO = '''
[scenario]
name = "s"

[[hardware.units]]
name = "gpu"
count = 1
preset = "a100_80gb"

[workload.model]
name = "seed_cnn"
batch = 8
'''


def test_gpu_is_the_default_for_a_model_and_roofline_stays_reachable():
    (auto,) = loads(SCENARIO)
    (roof,) = loads(SCENARIO + '\n[cost]\nmodel = "roofline"\n')
    (summed,) = loads(SCENARIO + '\n[cost]\nmodel = "gpu"\noverlap = 0.5\n')
    assert auto.cost.name == "gpu" and auto.cost.overlap == "sum"  # type: ignore[attr-defined]
    assert roof.cost.name == "roofline"
    assert summed.cost.blend == 0.5  # type: ignore[attr-defined]
    chain = SCENARIO.replace('[workload.model]\nname = "seed_cnn"\nbatch = 8',
                             '[workload.generator]\nkind = "chain"\ntasks = 3\nflops = "1 GFLOP"')
    assert loads(chain)[0].cost.name == "roofline"
    assert ls.step("seed_cnn", ls.cluster("a100_80gb", 1), batch=8).cost.name == "gpu"


def test_a_bad_overlap_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO + '\n[cost]\nmodel = "gpu"\noverlap = "mix"\n')
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path}: cost.overlap: expected 'max', 'sum' or a number in "
                   "[0, 1], found 'mix' (t = max(C, M) + a min(C, M): 'max' is a = 0, "
                   "'sum' a = 1)"]


def test_shape_blind_models_ignore_the_gemm_columns():
    """The step graph's GEMM rows and kernel counts change nothing for the roofline
    (`model = "roofline"` keeps the previous figures): its times are those of the
    same FLOPs and bytes with no rows at all."""
    model = gpt(2, 64, 96, 16, 4)
    unit = _unit(108)
    cluster = fully_connected([unit, replace(unit, name="g1")], LinkSpec(1e-6, 1e11))
    step = build_step(model, ParallelConfig(tp=2, batch=4, microbatches=2), cluster, Roofline())
    g = step.graph
    assert g.gemms is not None and int(g.kernels.sum()) > g.size
    b = GraphBuilder()
    for i in range(g.size):
        b.task(g.names[i], flops=float(g.flops[i]), nbytes=float(g.nbytes[i]),
               duration_s=None if np.isnan(g.duration_s[i]) else float(g.duration_s[i]),
               pin=int(g.pin[i]), comm=bool(g.comm[i]))
    bare = b.build()
    assert bare.gemms is None
    assert Roofline().task_times(g, cluster).tolist() == Roofline().task_times(bare, cluster).tolist()
