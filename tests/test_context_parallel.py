"""Context parallelism `cp` (ring attention, parallel.context): each replica's sequence
over cp ranks, K and V (backward: and dK, dV) around a ring in every attention layer."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.hardware import LinkSpec, fully_connected, replicate
from leptonsim.models import LayerStack, Model
from leptonsim.ops import MultiHeadSelfAttention
from leptonsim.optimize import Estimator, enumerate_space
from leptonsim.optimize.space import LONG_SEQUENCE
from leptonsim.parallel.config import LAYOUTS, ParallelConfig
from leptonsim.parallel.context import ContextSplitError
from leptonsim.parallel.step import build_step
from leptonsim.sim import simulate
from tests.helpers.scenarios import refused
from tests.helpers.steps import UNIT, run, transformer_block


def attention_only(seq: int, hidden: int = 64, heads: int = 4, kv_heads: int = 0,
                   causal: bool = False) -> Model:
    s = LayerStack("attn", (seq, hidden))
    s.add("attn", MultiHeadSelfAttention(heads, kv_heads=kv_heads, causal=causal,
                                         implementation="flash"))
    return s.build()


def _blocks(step, trace, kind: str) -> dict[str, list[tuple[float, float]]]:
    """Each ring layer's blocks of one pass, by replica, micro-batch and tp rank: their
    (start, end) in block order."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for pos, t in enumerate(trace.task.tolist()):
        match = re.fullmatch(rf"{kind}\.(d\d+\.attn\.k\d+\.t\d+)\.b(\d+)", step.graph.names[t])
        if match:
            out[match[1]].append((int(match[2]), float(trace.task_start[pos]),
                                  float(trace.task_end[pos])))
    return {key: [(a, z) for _, a, z in sorted(rows)] for key, rows in out.items()}


def _ring_spans(cp: int, tp: int, mode: str, dp: int, m: int, training: bool, link: LinkSpec,
                peak: float = UNIT.peak_flops) -> list[tuple[float, float, float]]:
    """Per attention layer and pass: (block seconds c, transfer seconds x, layer span),
    x = alpha + n / B for one K, V block of n = 2 b (s / cp) kv_heads d bytes per tp
    rank (the backward's 2 n, with dK and dV)."""
    seq, hidden = 16 * cp, 64
    cfg = ParallelConfig(dp=dp, tp=tp, cp=cp, tp_mode=mode, batch=2 * dp * m, microbatches=m,
                         training=training, optimizer="sgd")
    unit = replace(UNIT, peak_flops=peak)
    cluster = fully_connected(replicate(unit, cfg.units, "gpu"), link)
    step = build_step(attention_only(seq, hidden), cfg, cluster)
    trace = simulate(step.graph, cluster, "static")
    n = 2 * cfg.microbatch_size * (seq // cp) * hidden * cfg.dtype_bytes / tp
    out = []
    for kind, nbytes in (("F", n), ("B", 2 * n)) if training else (("F", n),):
        spans = _blocks(step, trace, kind)
        assert len(spans) == cfg.replicas * m * len(cfg.simulated_tp_ranks())
        for blocks in spans.values():
            durations = [z - a for a, z in blocks]
            assert durations == pytest.approx([durations[0]] * cp, rel=1e-12)
            out.append((durations[0], link.latency_s + nbytes / link.bandwidth,
                         blocks[-1][1] - blocks[0][0]))
    return out


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 4), st.sampled_from([(1, "full"), (2, "full"), (2, "symmetric")]),
       st.integers(1, 2), st.integers(1, 2), st.booleans(), st.floats(0, 1e-4),
       st.floats(1e8, 1e13), st.sampled_from([1e9, 1e11, 1e14]))
def test_uncontended_ring_takes_its_closed_form(cp, tp_mode, dp, m, training, alpha, bw, peak):
    """Fully connected duplex links, every rank's blocks of c seconds: an attention layer
    lasts c + (cp - 1) max(c, x), x one K, V block's transfer. Transfers slower than a
    block expose (cp - 1)(x - c); faster ones are hidden completely."""
    tp, mode = tp_mode
    for c, x, span in _ring_spans(cp, tp, mode, dp, m, training, LinkSpec(alpha, bw), peak):
        assert span == pytest.approx(c + (cp - 1) * max(c, x), rel=1e-9)


def test_both_regimes():
    """Slow compute: the ring is hidden, the layer is cp blocks back to back. Slow links:
    the layer is one block and cp - 1 transfers, (cp - 1)(x - c) of them exposed."""
    hidden = _ring_spans(4, 1, "full", 1, 1, True, LinkSpec(1e-9, 1e12), peak=1e9)
    assert all(c > x and span == pytest.approx(4 * c, rel=1e-12) for c, x, span in hidden)
    exposed = _ring_spans(4, 1, "full", 1, 1, True, LinkSpec(1e-5, 1e9))
    assert all(x > c and span - 4 * c == pytest.approx(3 * (x - c), rel=1e-9)
               for c, x, span in exposed)


@settings(max_examples=10, deadline=None)
@given(st.integers(2, 4), st.integers(1, 2), st.booleans(), st.floats(1e-7, 1e-5),
       st.floats(1e9, 1e12))
def test_symmetric_equals_full(cp, m, causal, alpha, bw):
    """Each tp rank has its own ring on its own links, so simulating rank 0 of each tp
    group gives the step every rank runs (training = false: no gradient buckets)."""
    model = transformer_block(seq=16 * cp)
    link = LinkSpec(alpha, bw)
    time = {mode: run(model, ParallelConfig(tp=2, cp=cp, batch=m, microbatches=m,
                                            tp_mode=mode, training=False), link)[2].makespan_s
            for mode in ("full", "symmetric")}
    assert time["symmetric"] == pytest.approx(time["full"], rel=1e-9)


@pytest.mark.parametrize("cp, causal", [(2, False), (4, True), (8, True)])
def test_the_work_is_split_not_added(cp, causal):
    """All cp ranks' forward and backward FLOPs are the unsplit replica's (every layer on
    s/cp tokens; attention's s/cp queries against s keys, causal work balanced), and
    their bytes too but the weights', which each rank reads: cp - 1 more copies of the
    bytes' intercept in the micro-batch. The ring adds zero-duration tasks only, cp - 1
    per rank and pass."""
    model = attention_only(64, causal=causal)
    layer = model.layers[0]
    weights = sum(2 * layer.cost(1, p, 2).bytes - layer.cost(2, p, 2).bytes
                  for p in ("forward", "backward_data", "backward_weights"))
    work = {}
    for c in (1, cp):
        cfg = ParallelConfig(cp=c, optimizer="sgd")
        step = build_step(model, cfg, fully_connected(replicate(UNIT, c, "gpu"), LinkSpec(0, 1e9)))
        g = step.graph
        passes = np.array([name[0] in "FB" and ".attn." in name for name in g.names])
        work[c] = (g.flops[passes].sum(), g.nbytes[passes].sum())
        ring = np.array([g.kinds[i] == "cp_ring" for i in range(g.size)])
        assert ring.sum() == 2 * c * (c - 1)
        assert not g.flops[ring].any() and not g.duration_s[ring].any()
    assert weights > 0
    assert work[cp][0] == pytest.approx(work[1][0], rel=1e-12)
    assert work[cp][1] == pytest.approx(work[1][1] + (cp - 1) * weights, rel=1e-12)


def test_gradients_reduce_over_dp_x_cp():
    """Megatron-Core reduces weight gradients over the data-parallel group with its
    context-parallel ranks: here one ring all-reduce over all dp x cp units."""
    cfg = ParallelConfig(dp=2, cp=2, batch=2, optimizer="sgd")
    step, _, _ = run(transformer_block(seq=32), cfg)
    g = step.graph
    reduce_units = {int(g.pin[i]) for i, name in enumerate(g.names) if name.startswith("dp.")}
    assert reduce_units == set(range(cfg.units))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cp_ranks_sit_just_outside_tp(layout):
    """Every (d, p, t, c) has its own unit; the layout's tp dimension holds c tp + t, so
    a tp group's cp copies follow it (with tp innermost, consecutive blocks of tp
    units); and cp = 1 numbers units as before (c = 0)."""
    cfg = ParallelConfig(dp=2, pp=2, tp=2, cp=3, batch=2, layout=layout)
    units = {cfg.rank(d, p, t, c) for d in range(2) for p in range(2) for t in range(2)
             for c in range(3)}
    assert units == set(range(cfg.units))
    stride = cfg.rank(1, 1, 1, 0) - cfg.rank(1, 1, 0, 0)
    assert (stride == 1) == layout.endswith("tp")
    for c in range(3):
        for t in range(2):
            assert cfg.rank(1, 1, t, c) - cfg.rank(1, 1, 0, 0) == (c * 2 + t) * stride
    plain = ParallelConfig(dp=2, pp=2, tp=2, batch=2, layout=layout)
    assert [plain.rank(1, 1, t) for t in range(2)] == [
        plain.replica_rank(1, 1, t) for t in range(2)]


def test_activations_divide_by_cp_and_weights_do_not():
    """Korthikanti et al.'s per-layer activations with s/cp tokens; the weights are the
    replica's; ZeRO-1 shards the optimizer state over dp x cp ranks."""
    model = transformer_block(seq=64)
    mem = {}
    for cp in (1, 4):
        cfg = ParallelConfig(dp=2, cp=cp, batch=2, zero=1)
        step = build_step(model, cfg, fully_connected(replicate(UNIT, cfg.units, "gpu"),
                                                     LinkSpec(0, 1e9)))
        mem[cp] = step.memory[0][1]
    assert mem[4].activations_bytes == pytest.approx(mem[1].activations_bytes / 4, rel=1e-12)
    assert mem[4].weights_bytes == mem[1].weights_bytes
    assert mem[4].optimizer_bytes == pytest.approx(mem[1].optimizer_bytes / 4, rel=1e-12)


def test_a_model_without_attention_or_an_uneven_split_is_refused():
    s = LayerStack("mlp", (16, 8))
    from leptonsim.ops import Dense
    s.add("fc", Dense(8))
    cluster = fully_connected(replicate(UNIT, 2, "gpu"), LinkSpec(0, 1e9))
    with pytest.raises(ContextSplitError, match="cp = 1 for a model without attention layers"):
        build_step(s.build(), ParallelConfig(cp=2), cluster)
    with pytest.raises(ContextSplitError, match=r"2 x cp chunks divide the causal sequence"):
        build_step(attention_only(18, causal=True), ParallelConfig(cp=2), cluster)
    with pytest.raises(ValueError, match="context and expert parallelism"):
        ParallelConfig(dp=2, ep=2, cp=2, batch=2)


SCENARIO = """\
[scenario]
name = "Llama, context parallel"
[hardware]
topology = "full"
units = [{{ name = "gpu", count = {units}, preset = "h100_sxm" }}]
link = {{ preset = "nvlink4" }}
[workload.model]
transformer = {transformer}
batch = 2
microbatches = 2
precision = "bf16"
[parallel]
{parallel}
"""


@pytest.mark.parametrize("units, transformer, parallel, key, words", [
    (3, '{ base = "llama2_7b", layers = 1, seq = 4096 }', "cp = 3", "parallel.cp",
     r"expected a divisor of the sequence length \(4096\), found 3$"),
    (2, '{ base = "llama2_7b", layers = 1, seq = 18 }', "cp = 2", "parallel.cp",
     r"expected a cp whose 2 x cp chunks divide the causal sequence length \(18\), found 2"),
    (4, '{ base = "llama2_7b", layers = 1, seq = 64 }', "cp = 3", "parallel",
     r"expected dp x pp x tp x cp equal to the 4 units of the hardware, found 1 x 1 x 1 x 3 = 3$"),
    (2, '{ base = "llama2_7b", layers = 1, seq = 64 }', "cp = 0", "parallel.cp",
     r"found 0"),
])
def test_bad_cp_is_one_line_exit_2(tmp_path, capsys, units, transformer, parallel, key, words):
    refused(tmp_path, capsys, SCENARIO.format(units=units, transformer=transformer,
                                              parallel=parallel), key, words)


def test_a_non_transformer_with_cp_is_one_line_exit_2(tmp_path, capsys):
    f = tmp_path / "bad.toml"
    f.write_text(SCENARIO.format(units=2, transformer='{ layers = 1, hidden = 64, heads = 4, '
                                 'vocab = 100, seq = 16 }', parallel="cp = 2")
                 .replace("transformer = { layers = 1, hidden = 64, heads = 4, vocab = 100, "
                          "seq = 16 }", 'input_shape = [16]\nlayers = [{ op = "dense", units = 8 }]'))
    assert main(["run", str(f), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "parallel.cp: expected cp = 1" in err[0], err


def test_a_llama_scenario_with_cp_2_runs_from_the_cli(tmp_path: Path, capsys):
    """Two Llama-2-7B blocks at 4,096 tokens on 4 H100s, tp 2 x cp 2: the run writes its
    files, its ring moves K, V around and the step is shorter than on tp 2 alone."""
    transformer = '{ base = "llama2_7b", layers = 2, seq = 4096 }'
    times = {}
    for cp in (1, 2):
        f = tmp_path / f"cp{cp}.toml"
        f.write_text(SCENARIO.format(units=2 * cp, transformer=transformer,
                                     parallel=f"tp = 2\ncp = {cp}\nsp = true"))
        out = tmp_path / f"out{cp}"
        assert main(["run", str(f), "--out", str(out)]) == 0, capsys.readouterr().err
        doc = json.loads((out / "summary.json").read_text())
        times[cp] = doc["makespan_s"]
    assert times[2] < times[1]


def test_the_optimizer_tries_cp_only_for_long_sequences():
    """cp > 1 joins the space from LONG_SEQUENCE tokens, where 2 cp chunks split them;
    dp x pp x tp x cp is the unit count, and sp needs tp to divide a rank's tokens."""
    short = enumerate_space(8, 8, 4, tokens=LONG_SEQUENCE // 2, split=8)
    assert set(short.cp.tolist()) == {1}
    long = enumerate_space(8, 8, 4, tokens=LONG_SEQUENCE, split=8)
    assert set(long.cp.tolist()) == {1, 2, 4, 8}
    assert np.all(long.dp * long.pp * long.tp * long.cp == 8)
    assert np.all(~long.sp.astype(bool) | ((LONG_SEQUENCE // long.cp) % long.tp == 0))
    assert len(long) > len(short)
    i = int(np.flatnonzero(long.cp == 4)[0])
    assert long.config(i, 8).cp == 4 and "cp4" in long.describe(i)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([2, 4]), st.sampled_from([1, 2]), st.floats(0, 1e-5),
       st.floats(1e9, 1e13), st.sampled_from([1e9, 1e14]))
def test_the_estimated_ring_exposure_is_the_simulated_one(cp, m, alpha, bw, peak):
    """Inference, one attention layer, fully connected links: the estimator's exposed
    ring (its closed form over the cp pair's route) is the simulated step less the
    blocks' compute, hidden (0) or exposed."""
    seq = 16 * cp
    model = attention_only(seq)
    unit = replace(UNIT, peak_flops=peak)
    cluster = fully_connected(replicate(unit, cp, "gpu"), LinkSpec(alpha, bw))
    space = enumerate_space(cp, m, 1, training=False, tokens=seq)
    space = replace(space, cp=np.full(len(space), cp), tp=np.ones(len(space), np.int64))
    pick = np.flatnonzero((space.dp == 1) & (space.microbatches == m))[:1]
    est = Estimator(model, cluster, m, training=False)(space.take(pick))
    step = build_step(model, space.config(int(pick[0]), m, training=False), cluster)
    trace = simulate(step.graph, cluster, "static")
    on0 = trace.task_unit == 0
    busy = trace.task_end[on0] - trace.task_start[on0]
    exposed = trace.makespan_s - float(busy.sum())
    assert est.cp_comm_s[0] == pytest.approx(exposed, rel=1e-9, abs=1e-15)
