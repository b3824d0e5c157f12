"""Step metrics (leptonsim/step_metrics.py; docs/model.md, "Step metrics"): theorems on
simulated steps of a small transformer, not recorded figures.

- the breakdown's four parts add up to the makespan, none negative;
- MFU <= HFU, and they are equal when nothing is recomputed or replicated;
- exposed communication is 0 on one unit and never exceeds the makespan;
- tokens/s = samples/s x sequence; the one-unit MFU is model FLOPs / (makespan x peak);
- a bias-free transformer's GEMM FLOPs are PaLM's 6 N + 12 L s h per token exactly.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.report import summary
from leptonsim.result import RunResult, run
from leptonsim.scenario import load, loads
from leptonsim.step_metrics import model_flops, palm_flops_per_token
from leptonsim.study.row import metrics_row

ROOT = Path(__file__).resolve().parents[1]
SEQ, HIDDEN, HEADS, VOCAB = 64, 128, 4, 512
PEAK = 10e12


def block(bias: bool, causal: bool) -> str:
    b = str(bias).lower()
    one = ['op = "layernorm"', f'op = "attention"\nheads = {HEADS}\nuse_bias = {b}\n'
           f'causal = {str(causal).lower()}', 'op = "layernorm"',
           f'op = "dense"\nunits = {4 * HIDDEN}\nuse_bias = {b}', 'op = "gelu"',
           f'op = "dense"\nunits = {HIDDEN}\nuse_bias = {b}']
    return "".join(f"[[workload.model.layers]]\n{x}\n" for x in one)


def gpt(*, dp: int = 1, pp: int = 1, tp: int = 1, m: int = 1, layers: int = 2,
        recompute: bool = False, training: bool = True, attention: str = "unfused",
        causal: bool = False, bias: bool = True, bandwidth: str = "100 GB/s") -> RunResult:
    """A GPT of `layers` blocks on dp x pp x tp units of 10 TFLOP/s."""
    return run(loads(f'''
[scenario]
name = "gpt"
[hardware]
topology = "full"
[[hardware.units]]
name = "gpu"
count = {dp * pp * tp}
peak = "{PEAK} FLOP/s"
memory_bandwidth = "1 TB/s"
memory = "80 GB"
[hardware.link]
latency = "1 us"
bandwidth = "{bandwidth}"
[workload.model]
input_shape = [{SEQ}]
batch = {2 * m * dp}
microbatches = {m}
training = {str(training).lower()}
recompute = {str(recompute).lower()}
attention = "{attention}"
[[workload.model.layers]]
op = "embedding"
vocab = {VOCAB}
dim = {HIDDEN}
{block(bias, causal) * layers}
[[workload.model.layers]]
op = "dense"
units = {VOCAB}
use_bias = false
[[workload.model.layers]]
op = "softmax_xent"
[parallel]
dp = {dp}
pp = {pp}
tp = {tp}
''')[0])


configs = st.fixed_dictionaries({
    "dp": st.integers(1, 2), "pp": st.integers(1, 2), "tp": st.sampled_from([1, 2]),
    "m": st.integers(1, 3), "recompute": st.booleans(), "training": st.booleans(),
    "attention": st.sampled_from(["unfused", "flash"])})


@settings(max_examples=20, deadline=None)
@given(cfg=configs)
def test_the_parts_add_up_to_the_makespan_and_mfu_never_exceeds_hfu(cfg: dict) -> None:
    r = gpt(**cfg)
    b, sm, makespan = r.breakdown, r.step_metrics, r.metrics.makespan_s
    assert sm is not None
    parts = (b.compute_s, b.exposed_comm_s, b.bubble_s, b.other_s)
    assert min(parts) >= 0
    assert math.isclose(sum(parts), makespan, rel_tol=1e-12)
    assert 0 < sm.mfu <= sm.hfu * (1 + 1e-12) and sm.hfu <= 1
    assert 0 <= b.exposed_comm_s <= sm.exposed_comm_max_s <= makespan
    assert sm.tokens_per_s == pytest.approx(sm.samples_per_s * SEQ, rel=1e-15)
    assert (b.bubble_s > 0) == (cfg["pp"] > 1)


def test_recompute_adds_one_forward_to_the_hardware_flops_only() -> None:
    """Full recompute runs each forward twice: HFU counts it (Korthikanti et al. 2023,
    section 6), MFU does not; model FLOPs are the same with and without it."""
    plain, again = gpt(recompute=False), gpt(recompute=True)
    p, a = plain.step_metrics, again.step_metrics
    assert p is not None and a is not None
    assert a.model_flops == p.model_flops == p.hardware_flops
    forward = model_flops(plain.scenario.step.model, 2, training=False)  # type: ignore[union-attr]
    assert a.hardware_flops == pytest.approx(p.model_flops + forward, rel=1e-12)
    assert a.hfu > a.mfu


def test_one_unit_mfu_is_model_flops_over_makespan_times_peak_and_nothing_is_exposed() -> None:
    r = gpt()
    sm = r.step_metrics
    assert sm is not None
    assert sm.mfu == sm.model_flops / (r.metrics.makespan_s * PEAK)
    assert sm.exposed_comm_max_s == r.breakdown.exposed_comm_s == 0.0
    assert sm.samples_per_s == 2 / r.metrics.makespan_s


def test_exposed_communication_vanishes_as_the_network_becomes_infinitely_fast() -> None:
    """On dp = 2 the gradient all-reduce overlaps the backward; what is left exposed is
    bounded by the transfers' own time, so it falls with the bandwidth toward 0."""
    exposed = [gpt(dp=2, bandwidth=bw).step_metrics.exposed_comm_max_s  # type: ignore[union-attr]
               for bw in ("1 GB/s", "100 GB/s", "1e16 B/s")]
    assert exposed[0] > exposed[1] > exposed[2] >= 0
    fastest = gpt(dp=2, bandwidth="1e16 B/s")
    t = fastest.trace
    assert exposed[2] <= float((t.xfer_end - t.xfer_start).sum())


def test_model_flops_count_every_score_whatever_the_kernel() -> None:
    """Flash attention recomputes the scores in its backward and a causal one skips the
    masked tiles: the executed FLOPs differ, the model's do not (PaLM's count)."""
    unfused, flash = gpt(attention="unfused", causal=True), gpt(attention="flash", causal=True)
    u, f = unfused.step_metrics, flash.step_metrics
    assert u is not None and f is not None
    assert u.model_flops == f.model_flops
    assert f.hardware_flops != u.hardware_flops


def test_a_bias_free_transformers_gemms_are_palms_count() -> None:
    """Chowdhery et al. 2023, appendix B: 6 N + 12 L s h training FLOPs per token, N the
    matmul parameters (here every parameter but the embedding table and the norms)."""
    layers = 3
    model = gpt(layers=layers, bias=False).scenario.step.model  # type: ignore[union-attr]
    unfused = [replace(x, op=replace(x.op, implementation="unfused")) if x.kind == "attention"
               else x for x in model.layers]
    gemm = sum(sum(2.0 * g.m * g.n * g.k * g.batch * g.count for g in x.cost(1, phase, 2).gemms)
               for x in unfused for phase in ("forward", "backward_data", "backward_weights"))
    matmul_params = sum(x.params for x in model.layers if x.kind in ("attention", "dense"))
    assert gemm == palm_flops_per_token(matmul_params, layers, SEQ, HIDDEN) * SEQ
    assert model_flops(model, 1, training=True) > gemm  # plus norms, activations, softmax


def test_the_metrics_reach_summary_json_and_the_sweep_row() -> None:
    r = gpt(dp=2, pp=2, m=2)
    sm, s, row = r.step_metrics, summary(r), metrics_row(r, None)
    assert sm is not None
    assert s["step"]["mfu"] == row["mfu"] == sm.mfu
    assert s["breakdown"]["bubble_s"] * 4 == pytest.approx(sm.bubble_s, rel=1e-12)
    assert row["tokens_per_s"] == sm.tokens_per_s and row["bubble_s"] == sm.bubble_s
    assert row["exposed_comm_s"] == r.breakdown.exposed_comm_s * 4
    assert "MFU" in r.report() and "tokens/s" in r.report()


def test_a_graph_that_is_not_a_dnn_step_has_a_breakdown_and_no_step_metrics() -> None:
    r = run(load(ROOT / "scenarios" / "comm_bound_fork_join.toml")[0])
    assert r.step_metrics is None and summary(r)["step"] is None
    assert metrics_row(r, None)["mfu"] == ""
    b = r.breakdown
    assert b.bubble_s == 0 and b.exposed_comm_s > 0
    assert math.isclose(b.compute_s + b.exposed_comm_s + b.other_s, r.metrics.makespan_s,
                        rel_tol=1e-12)


def test_a_cnn_has_samples_but_no_tokens() -> None:
    r = run(load(ROOT / "scenarios" / "seed_cnn_data_parallel.toml")[0])
    assert r.step_metrics is not None and r.step_metrics.tokens_per_s is None
    assert r.step_metrics.samples_per_s > 0
