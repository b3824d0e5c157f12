"""Eager attention (ops/attention.py, implementation "eager"): the unfused form with the
scale and the mask's addition as passes of their own, as PyTorch runs BERT's
modeling.py unscripted; and the BERT rows' rules in benchmarks/published.toml."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leptonsim as ls
from leptonsim.ops.attention import MultiHeadSelfAttention
from tests.helpers.scripts import benchmark

shapes = st.tuples(st.integers(1, 16), st.integers(1, 64), st.integers(1, 1024),
                   st.integers(1, 4), st.sampled_from([1, 2, 4]), st.sampled_from([0.0, 0.1]))


@settings(max_examples=60, deadline=None)
@given(shapes)
def test_eager_is_unfused_plus_exactly_the_scale_and_mask_passes(shape) -> None:
    """Forward: 2 kernels more, each reading and writing the heads S^2 scores (and the
    mask's S read), one FLOP per score (the addition); backward_data: the scale's
    gradient, 1 kernel reading and writing the scores; backward_weights and what the
    backward keeps unchanged."""
    heads, d, s, batch, dtype, dropout = shape
    x, scores = (s, heads * d), batch * heads * s * s
    eager = MultiHeadSelfAttention(heads, implementation="eager", dropout=dropout)
    unfused = MultiHeadSelfAttention(heads, implementation="unfused", dropout=dropout)
    e, u = eager.cost(x, batch, "forward", dtype), unfused.cost(x, batch, "forward", dtype)
    assert (e.kernels - u.kernels, e.flops - u.flops) == (2, scores)
    assert e.bytes - u.bytes == (4 * scores + batch * s) * dtype
    assert e.gemms == u.gemms
    e, u = (op.cost(x, batch, "backward_data", dtype) for op in (eager, unfused))
    assert (e.kernels - u.kernels, e.flops, e.bytes - u.bytes) == (1, u.flops, 2 * scores * dtype)
    assert eager.cost(x, batch, "backward_weights", dtype) == unfused.cost(
        x, batch, "backward_weights", dtype)
    assert eager.saved_bytes(x, batch, dtype) == unfused.saved_bytes(x, batch, dtype)
    rec_e, rec_u = eager.recompute_cost(x, batch, dtype), unfused.recompute_cost(x, batch, dtype)
    assert rec_e.kernels - rec_u.kernels == 2


def test_an_eager_bert_step_is_slower_than_an_unfused_one() -> None:
    """The scenario key takes "eager"; the extra passes cost time."""
    def step(attention: str) -> float:
        spec = {"transformer": {"name": "bert", "layers": 2, "hidden": 256, "heads": 4,
                                "seq": 128, "vocab": 1000, "causal": False},
                "attention": attention}
        return ls.run(ls.step(spec, ls.cluster("a100_80gb", 1), batch=8)).metrics.makespan_s
    assert step("eager") > step("unfused")


bench = benchmark("published")
ROWS, _, _ = bench.load()
BERT = [r for r in ROWS if r["family"] == "bert"]


def test_run_squad_rows_run_eagerly_and_pretraining_rows_scripted() -> None:
    """The per-script rule of the BERT source ([software] scripts): by the script, not
    by the row."""
    assert len(BERT) == 24
    for row in BERT:
        assert row["attention"] == ("eager" if row["script"] == "run_squad.py" else "unfused")
        assert (row["script"] == "run_squad.py") == (row["head"] == "squad")


@pytest.mark.parametrize("seq", [128, 384, 512])
def test_only_phase_2_reads_binned_lengths(seq: int) -> None:
    """LDDL's bins of 64 for phase 2 (seq 512) only: eight bins of Wikipedia, each
    micro-batch padded to its longest sequence, the last bin at 512."""
    rows = [r for r in BERT if r["seq"] == seq]
    assert rows and all(("lengths" in r) == (seq == 512) for r in rows)
    for row in rows:
        if seq == 512:
            bins = bench.length_bins(row)
            assert len(bins) == 8 and math.ceil(bins[-1].padded) == 512
