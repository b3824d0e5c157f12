"""ZeRO-1/2/3 and FSDP (issue 13, item 5): the model state each stage keeps, the
collectives it adds to the step graph, and its bad input."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim import formulas
from leptonsim.api import cluster
from leptonsim.cost import Roofline
from leptonsim.errors import DoesNotFit
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate
from leptonsim.models import Model
from leptonsim.optimize.estimate import Estimator
from leptonsim.optimize.search import search
from leptonsim.optimize.space import enumerate_space
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.memory import model_state_bytes
from leptonsim.parallel.step import build_step
from leptonsim.parallel.sync import optimizer_cost
from leptonsim.parallel.tensor import LayerRole
from leptonsim.sim import simulate
from leptonsim.zoo.transformer import gpt
from tests.helpers.steps import dense_stack

ROOT = Path(__file__).resolve().parents[1]
FREE = LinkSpec(latency_s=0.0, bandwidth=1e30)


@pytest.mark.parametrize("zero, gb", [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_figure_1(zero: int, gb: float) -> None:
    """Rajbhandari et al., SC'20, Figure 1: 7.5B parameters, fp16 Adam (K = 12), dp 64:
    120 GB baseline, 31.4 GB (P_os), 16.6 GB (P_os+g), 1.9 GB (P_os+g+p), as printed
    (one decimal)."""
    state = model_state_bytes(7.5e9, 0.0, optimizer="adam", dtype_bytes=2, dp=64, zero=zero)
    assert round(sum(state) / 1e9, 1) == gb


counts = st.floats(0.0, 1e12)
dtypes = st.sampled_from([1, 2, 4, 8])
optimizers = st.sampled_from(["sgd", "adam"])


@given(counts, counts, optimizers, dtypes, st.integers(1, 4096))
def test_model_state_never_grows_with_the_stage(trainable: float, frozen: float,
                                                optimizer: str, dtype: int, dp: int) -> None:
    """Theorem: every term is non-increasing in the stage, and at dp = 1 every stage
    keeps exactly what zero = 0 keeps."""
    terms = [model_state_bytes(trainable, frozen, optimizer=optimizer, dtype_bytes=dtype,
                               dp=dp, zero=z) for z in range(4)]
    for lower, higher in zip(terms, terms[1:], strict=False):
        assert all(h <= lo for h, lo in zip(higher, lower, strict=True))
    ones = [model_state_bytes(trainable, frozen, optimizer=optimizer, dtype_bytes=dtype,
                              dp=1, zero=z) for z in range(4)]
    assert ones == [ones[0]] * 4


@given(counts, optimizers, dtypes, st.integers(1, 4096))
def test_stage_3_divides_the_whole_trainable_state_by_dp(trainable: float, optimizer: str,
                                                         dtype: int, dp: int) -> None:
    full = sum(model_state_bytes(trainable, 0.0, optimizer=optimizer, dtype_bytes=dtype))
    sharded = sum(model_state_bytes(trainable, 0.0, optimizer=optimizer, dtype_bytes=dtype,
                                    dp=dp, zero=3))
    assert sharded == pytest.approx(full / dp, rel=1e-12)


def _bert(extra: str, model_extra: str = "") -> str:
    text = (ROOT / "scenarios" / "bert_tensor_parallel.toml").read_text()
    text = text.replace('precision = "fp16"\n', f'precision = "fp16"\n{model_extra}', 1)
    return text.replace("[parallel]\ntp = 8\n", f"[parallel]\ntp = 8\n{extra}", 1)


@pytest.mark.parametrize("extra, model_extra, words", [
    ("zero = 4\n", "", "parallel.zero: expected an integer in [0, 3], found 4"),
    ("zero = -1\n", "", "parallel.zero: expected an integer in [0, 3], found -1"),
    ('zero = "3"\n', "", "parallel.zero: expected an integer in [0, 3], found '3'"),
    ("zero = 2\n", "training = false\n", "zero 2 shards training state"),
    ("overlap_param_gather = true\n", "", "overlap_param_gather needs zero 1 or 2"),
    ("", "", "parallel.zero: expected 0 with embeddings = 'sharded'"),
])
def test_bad_zero_is_one_line_exit_2(extra: str, model_extra: str, words: str,
                                     tmp_path: Path) -> None:
    dlrm = (ROOT / "scenarios" / "dlrm_hybrid.toml").read_text().split("[variants")[0]
    text = _bert(extra, model_extra) if extra else dlrm.replace("dp = 8\n", "dp = 8\nzero = 1\n")
    scenario = tmp_path / "zero.toml"
    scenario.write_text(text)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "leptonsim", "run", str(scenario), "--out",
                           str(out)], capture_output=True, text=True, cwd=ROOT)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and proc.stdout == "" and not out.exists()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith(f"error: {scenario}: ") and words in lines[0]


# -- the step graph: ZeRO's collectives ------------------------------------------------

UNIT = ComputeUnit("gpu", peak_flops=100e12, memory_bandwidth=2e12, memory_bytes=80e9,
                   efficiency=0.5)


def simulated(model: Model, cfg: ParallelConfig, link: LinkSpec):
    cluster = fully_connected(replicate(UNIT, cfg.units, "gpu"), link)
    step = build_step(model, cfg, cluster)
    return step, simulate(step.graph, cluster, "static")


def dp_bytes(step) -> float:
    """Bytes the data-parallel collectives send between units (every rank's)."""
    g = step.graph
    dp = np.array([g.names[t].startswith(("dp.", "fsdp.")) for t in g.edge_dst.tolist()])
    cross = g.pin[g.edge_src] != g.pin[g.edge_dst]
    return float(g.edge_bytes[dp & cross].sum())


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 6), st.integers(1, 4), st.sampled_from(["full", "symmetric"]))
def test_communication_volume_by_stage(dp: int, layers: int, mode: str) -> None:
    """ZeRO section 7 and FSDP section 3.3, one micro-batch: stages 1 and 2 move
    exactly what the all-reduce moves (a reduce-scatter and an all-gather); stage 3
    moves 1.5 times it (two all-gathers and a reduce-scatter)."""
    model = dense_stack(layers, width=64)
    volume = [dp_bytes(simulated(model, ParallelConfig(dp=dp, batch=dp, zero=z, tp_mode=mode,
                                                       bucket_bytes=1e4), FREE)[0])
              for z in range(4)]
    n = model.params() * 2
    assert volume[0] == pytest.approx(2 * (dp - 1) * n, rel=1e-12)  # p ranks x 2(p-1)/p n
    assert volume[1] == pytest.approx(volume[0], rel=1e-12)
    assert volume[2] == pytest.approx(volume[0], rel=1e-12)
    assert volume[3] == pytest.approx(1.5 * volume[0], rel=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.integers(2, 4))
def test_stage_2_and_3_reduce_every_microbatch(m: int, dp: int) -> None:
    """A rank keeps only its gradient shard from stage 2 on, so each micro-batch's
    gradients are reduce-scattered (DeepSpeed issue 2252); stage 3 also gathers the
    parameters before each micro-batch's forward and backward."""
    model = dense_stack(2, width=64)
    volume = [dp_bytes(simulated(model, ParallelConfig(dp=dp, batch=dp * m, microbatches=m,
                                                       zero=z, bucket_bytes=1e15), FREE)[0])
              for z in range(4)]
    pass_bytes = (dp - 1) * model.params() * 2  # one ring pass over every rank
    assert volume == pytest.approx([2 * pass_bytes, 2 * pass_bytes, (m + 1) * pass_bytes,
                                    3 * m * pass_bytes], rel=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 5), st.integers(1, 4), st.floats(1e-7, 1e-4), st.floats(1e9, 1e12),
       st.sampled_from([1, 2]))
def test_uncontended_zero_sync_is_reduce_scatter_update_allgather(dp, layers, alpha, bw,
                                                                  stage):
    """Theorem, one bucket, nothing contending: the update starts one ring reduce-scatter
    after the last backward, costs 1/dp of the replicated update, and the step ends one
    ring all-gather after it (the closed forms of formulas.py, exactly)."""
    model = dense_stack(layers, width=64)
    n = model.params() * 2
    cfg = ParallelConfig(dp=dp, batch=dp, zero=stage, bucket_bytes=1e15)
    step, trace = simulated(model, cfg, LinkSpec(alpha, bw))
    kinds = np.array([step.graph.kinds[t] for t in trace.task.tolist()])
    backward_end = float(trace.task_end[kinds == "dense.bwd"].max())
    update = kinds == "optimizer"
    assert trace.task_start[update].max() == pytest.approx(
        backward_end + formulas.ring_reduce_scatter_time(dp, n, alpha, bw), rel=1e-9)
    opt = optimizer_cost(model, cfg, [LayerRole(False, "", "")] * layers,
                         tuple(range(layers)))
    sharded = Roofline().seconds(np.array([opt.flops / dp]), np.array([opt.bytes / dp]), UNIT)[0]
    spent = trace.task_end[update] - trace.task_start[update]
    assert spent == pytest.approx(np.full(dp, sharded), rel=1e-9)
    assert trace.makespan_s == pytest.approx(
        trace.task_end[update].max() + formulas.ring_allgather_time(dp, n, alpha, bw), rel=1e-9)


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 4), st.integers(2, 6), st.integers(1, 3), st.floats(1e-7, 1e-5),
       st.floats(1e8, 1e11))
def test_fsdp_gathers_each_bucket_before_it_runs_prefetching_one(dp, layers, m, alpha, bw):
    """Stage 3, each layer its own bucket: a layer's forward or backward starts only
    after its parameters' all-gather ended, and bucket j's all-gather never starts
    before bucket j-2's compute ended (one bucket ahead) nor before bucket j-1's
    all-gather ended (one stream)."""
    model = dense_stack(layers, width=64)
    cfg = ParallelConfig(dp=dp, batch=dp * m, microbatches=m, zero=3,
                         bucket_bytes=model.layers[0].params * 2)
    step, trace = simulated(model, cfg, LinkSpec(alpha, bw))
    names = step.graph.names
    start = dict(zip(trace.task.tolist(), trace.task_start.tolist(), strict=True))
    end = dict(zip(trace.task.tolist(), trace.task_end.tolist(), strict=True))
    on0 = sorted((t for t in start if step.graph.pin[t] == 0
                  and step.graph.kinds[t] in ("dense", "dense.bwd")), key=start.get)
    assert len(on0) == 2 * m * layers
    gathers: dict[int, list[float]] = {}
    for t in start:
        if names[t].startswith("fsdp.s0.t0.b") and ".wait" not in names[t]:
            span = gathers.setdefault(int(names[t].split(".")[3][1:]), [np.inf, -np.inf])
            span[0], span[1] = min(span[0], start[t]), max(span[1], end[t])
    assert sorted(gathers) == list(range(len(on0)))
    for j, task in enumerate(on0):
        assert start[task] >= gathers[j][1]
        if j >= 1:
            assert gathers[j][0] >= gathers[j - 1][1]
        if j >= 2:
            assert gathers[j][0] >= end[on0[j - 2]]


def test_a_7b_gpt_fits_80_gb_only_with_zero() -> None:
    """GPT-3 6.7B (Brown et al. 2020, Table 2.1: 32 layers, d_model 4096, 32 heads,
    2048 tokens) on 8 A100 80 GB, plain data parallelism, fp16 Adam: 16 bytes/param
    replicated is 107 GB and does not fit; each ZeRO stage needs less. Stage 1's
    all-gather after the update is exposed, so moving it under the next forward
    (overlap_param_gather) shortens the step; stage 3, whose gathers overlap the same
    way but move 1.5 times the volume, is no faster than that."""
    model = gpt(32, 4096, 51200, 2048, 32, name="gpt3_6.7b")
    hw = cluster("a100_80gb", 8, link="nvlink3", topology="switch").cluster
    with pytest.raises(DoesNotFit, match="a zero stage above 0"):
        build_step(model, ParallelConfig(dp=8, batch=8), hw)
    steps = {z: build_step(model, ParallelConfig(dp=8, batch=8, zero=z), hw) for z in (1, 2, 3)}
    need = [steps[z].memory[0][1].total_bytes for z in (1, 2, 3)]
    assert need[0] > need[1] > need[2] and need[0] < hw.units[0].memory_bytes
    steps[0] = build_step(model, ParallelConfig(dp=8, batch=8, zero=1, overlap_param_gather=True),
                          hw)
    times = {z: simulate(steps[z].graph, hw, "static").makespan_s for z in (0, 1, 3)}
    assert times[1] > times[3] >= times[0]


@settings(max_examples=12, deadline=None)
@given(st.integers(2, 4), st.sampled_from([1, 2]), st.floats(1e-7, 1e-5), st.floats(1e9, 1e12),
       st.sampled_from([1, 2]))
def test_estimate_equals_simulation_for_zero_in_one_bucket(dp, m, alpha, bw, stage):
    """One bucket, stage 1 (one micro-batch at stage 2): the reduce-scatter, the
    sharded update and the all-gather are exposed whole, in both."""
    m = m if stage == 1 else 1
    model = dense_stack(3, width=64)
    link = LinkSpec(alpha, bw)
    cl = fully_connected(replicate(UNIT, dp, "gpu"), link)
    batch = 4 * dp * m
    sp = enumerate_space(dp, batch, len(model.layers))
    pick = np.flatnonzero((sp.dp == dp) & (sp.microbatches == m) & ~sp.recompute
                          & (sp.zero == stage))
    assert len(pick) == 1
    est = Estimator(model, cl, batch, bucket_bytes=1e15)(sp.take(pick))
    cfg = sp.config(int(pick[0]), batch, bucket_bytes=1e15)
    assert cfg.zero == stage
    step = build_step(model, cfg, cl)
    assert est.step_s[0] == pytest.approx(simulate(step.graph, cl, "static").makespan_s,
                                          rel=1e-9)


def test_optimize_finds_a_7b_gpt_split_only_zero_fits() -> None:
    """Plain data parallelism of GPT-3 6.7B on 8 A100 80 GB does not fit: in the
    search space its data-parallel configurations fit only with ZeRO (every stage
    does at dp 8), so the plain-DP baseline is absent, and the ones the search
    simulates were built and ran."""
    model = gpt(32, 4096, 51200, 2048, 32, name="gpt3_6.7b")
    hw = cluster("a100_80gb", 8, link="nvlink3", topology="switch").cluster
    result = search(model, hw, 8, max_tp=1, top=2)
    sp, fits = result.space, result.estimate.fits
    plain_dp = sp.dp == 8
    assert not fits[plain_dp & (sp.zero == 0)].any()
    assert set(sp.zero[plain_dp & fits].tolist()) == {1, 2, 3}
    assert result.baseline is None
    assert all(np.isfinite(c.simulated) for c in result.candidates)


@settings(max_examples=10, deadline=None)
@given(st.integers(2, 3), st.sampled_from([1, 2, 3]), st.integers(1, 2))
def test_symmetric_mode_moves_the_groups_bytes_from_rank_0(dp: int, stage: int, m: int) -> None:
    """tp = 2 over split Dense layers only: in full mode each tp rank runs its own ZeRO
    collectives over 1/tp of the parameters; in symmetric mode rank 0 moves the whole
    group's, so the data-parallel bytes agree, stage by stage, and both steps run."""
    model = dense_stack(2, width=64)
    volume = {}
    for mode in ("full", "symmetric"):
        cfg = ParallelConfig(dp=dp, tp=2, batch=dp * m, microbatches=m, zero=stage,
                             tp_mode=mode, bucket_bytes=1e3)
        step, trace = simulated(model, cfg, LinkSpec(1e-6, 1e10))
        assert np.isfinite(trace.makespan_s) and trace.makespan_s > 0
        volume[mode] = dp_bytes(step)
    assert volume["symmetric"] == pytest.approx(volume["full"], rel=1e-12) and volume["full"] > 0


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 4), st.integers(2, 6), st.integers(1, 3), st.floats(1e-7, 1e-5),
       st.floats(1e8, 1e11), st.sampled_from([1, 2]))
def test_overlapped_parameter_gathers_run_under_the_forward(dp, layers, m, alpha, bw, stage):
    """overlap_param_gather (Megatron's --overlap-param-gather), each layer its own
    bucket: the all-gathers start at the step's start in forward order, one after
    another, each layer's first forward waits for its own; the same bytes cross the
    network as with the gather after the update, and the step is never longer."""
    model = dense_stack(layers, width=64)
    cfg = ParallelConfig(dp=dp, batch=dp * m, microbatches=m, zero=stage,
                         bucket_bytes=model.layers[0].params * 2)
    step, trace = simulated(model, replace(cfg, overlap_param_gather=True), LinkSpec(alpha, bw))
    after, trace_after = simulated(model, cfg, LinkSpec(alpha, bw))
    names = step.graph.names
    start = dict(zip(trace.task.tolist(), trace.task_start.tolist(), strict=True))
    end = dict(zip(trace.task.tolist(), trace.task_end.tolist(), strict=True))
    gathers: dict[int, list[float]] = {}
    for t in start:
        if names[t].startswith("dp.s0.t0.gather.b"):
            span = gathers.setdefault(int(names[t].split(".")[4][1:]), [np.inf, -np.inf])
            span[0], span[1] = min(span[0], start[t]), max(span[1], end[t])
    assert sorted(gathers) == list(range(layers)) and gathers[0][0] == 0.0
    for j in range(1, layers):
        assert gathers[j][0] >= gathers[j - 1][1]
    for j in range(layers):
        first = names.index(f"F.d0.fc{j}.k0.t0")
        assert start[first] >= gathers[j][1]
    assert dp_bytes(step) == pytest.approx(dp_bytes(after), rel=1e-12)
    assert trace.makespan_s <= trace_after.makespan_s * (1 + 1e-12)

