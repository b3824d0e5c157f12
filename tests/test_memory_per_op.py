"""Activation memory from each op's saved tensors (Op.saved_bytes) reproduces
Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models",
MLSys 2023, Table 2, exactly: the per-op sum over one gpt() layer equals
published_layer_bytes for every row (no parallelism, tensor parallel, tensor +
sequence parallel, selective and full recompute), over a Hypothesis range of sizes.
FlashAttention removes the 5as/h term and keeps one fp32 log-sum-exp per row instead."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.models import Model
from leptonsim.ops import Dropout, MultiHeadSelfAttention
from leptonsim.ops.attention import LSE_BYTES
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.memory import published_layer_bytes, stage_memory
from leptonsim.zoo.transformer import gpt

FP16 = 2
sizes = st.tuples(st.integers(1, 4096),            # s
                  st.integers(1, 8),               # b
                  st.sampled_from([1, 2, 4, 8, 16]),  # t: a power of two, so sums are exact
                  st.integers(1, 4),               # heads per tensor-parallel rank
                  st.integers(1, 256))             # head size
CASES = settings(max_examples=60, deadline=None, derandomize=True, database=None)


@cache
def layer_of(s: int, h: int, a: int, attention: str, dropout: float) -> tuple[Model, tuple[int, int]]:
    """A two-layer gpt() and the layer range of its second transformer layer."""
    m = gpt(2, h, 64, s, a, attention=attention, dropout=dropout)  # type: ignore[arg-type]
    block = [i for i, layer in enumerate(m.layers) if layer.name.startswith("layer.1.")]
    return m, (block[0], block[-1] + 1)


def per_layer(s: int, b: int, h: int, a: int, t: int, *, sp: bool = False, recompute: str = "none",
              attention: str = "unfused", dropout: float = 0.1, in_flight: int = 1) -> float:
    m, r = layer_of(s, h, a, attention, dropout)
    return stage_memory(m, r, tp=t, microbatch_size=b, in_flight=in_flight, dtype_bytes=FP16,
                        sp=sp, recompute=recompute).activations_bytes


@CASES
@given(sizes, st.booleans(), st.sampled_from(["none", "selective"]))
def test_per_op_sum_is_table2(size: tuple[int, ...], sp: bool, recompute: str) -> None:
    s, b, t, heads, d = size
    a = heads * t
    h = a * d
    assert per_layer(s, b, h, a, t, sp=sp, recompute=recompute) == published_layer_bytes(
        s, b, h, a, t, sp=sp, recompute=recompute)


@CASES
@given(sizes, st.booleans(), st.integers(2, 6))
def test_full_recompute_keeps_each_layers_input(size: tuple[int, ...], sp: bool, m: int) -> None:
    """Per in-flight micro-batch a layer keeps its 2sbh input (Table 2's full row; split t
    ways under sequence parallelism), whatever the micro-batches in flight."""
    s, b, t, heads, d = size
    a = heads * t
    h = a * d
    more, fewer = (per_layer(s, b, h, a, t, sp=sp, recompute="full", in_flight=k) for k in (m, m - 1))
    assert more - fewer == published_layer_bytes(s, b, h, a, t, recompute="full") / (t if sp else 1)


@CASES
@given(sizes, st.booleans(), st.sampled_from(["none", "selective"]))
def test_flash_attention_removes_the_5as_over_h_term(size: tuple[int, ...], sp: bool,
                                                     recompute: str) -> None:
    s, b, t, heads, d = size
    a = heads * t
    h = a * d
    log_sum_exp = b * a * s * LSE_BYTES / t  # one fp32 per row and head, split by head
    assert per_layer(s, b, h, a, t, sp=sp, recompute=recompute, attention="flash") == (
        published_layer_bytes(s, b, h, a, t, sp=sp, recompute="selective") + log_sum_exp)


@CASES
@given(sizes)
def test_no_dropout_drops_the_masks_and_the_dropped_probabilities(size: tuple[int, ...]) -> None:
    """Without dropout: no sbh masks after attention and the MLP, and of the 5as^2b core
    only the softmax output, 2as^2b, remains."""
    s, b, t, heads, d = size
    a = heads * t
    h = a * d
    sbh = s * b * h
    assert per_layer(s, b, h, a, 1, dropout=0.0) == 32 * sbh + 2 * a * s * s * b
    assert per_layer(s, b, h, a, 1) - per_layer(s, b, h, a, 1, dropout=0.0) == (
        2 * sbh + 3 * a * s * s * b)


def test_each_op_keeps_what_section_4_1_lists() -> None:
    """fp16, s = 8, h = 16, a = 2, b = 1 (sbh = 128): the attention block's terms."""
    s, h, a = 8, 16, 2
    attention = MultiHeadSelfAttention(a, dropout=0.1).saved_bytes((s, h), 1, FP16)
    assert attention.inputs == 2 * s * h                  # the QKV projection's input
    assert attention.made == 8 * s * h                    # Q, K, V, the context
    assert attention.core == 5 * a * s * s                # softmax 2, mask 1, dropped 2
    assert Dropout(0.1).saved_bytes((s, h), 1, FP16).total == s * h  # a 1-byte mask
    flash = MultiHeadSelfAttention(a, implementation="flash").saved_bytes((s, h), 3, FP16)
    assert (flash.core, flash.made) == (0.0, 3 * (8 * s * h + LSE_BYTES * a * s))


def test_recompute_booleans_and_bad_values() -> None:
    assert ParallelConfig(recompute=True).recompute == "full"
    assert ParallelConfig(recompute=False).recompute == "none"
    assert ParallelConfig(recompute="selective").recompute == "selective"
    with pytest.raises(ValueError, match="recompute must be none, selective or full, got 'some'"):
        ParallelConfig(recompute="some")
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \(0, 1\), got 1"):
        Dropout(1)


def test_a_tensor_two_ops_keep_is_counted_once() -> None:
    """A ReLU keeps its output, which the next Dense keeps as its input: one tensor.
    Followed by an Add (which keeps nothing), the ReLU's output is its own to count."""
    from leptonsim.models import LayerStack
    from leptonsim.ops import Add, Dense, ReLU

    s = LayerStack("mlp", (8,))
    s.add("fc1", Dense(16))
    s.add("relu", ReLU())
    s.add("fc2", Dense(8))
    s.add("relu2", ReLU())
    s.add("add", Add())
    m = s.build()
    mem = stage_memory(m, (0, 5), dtype_bytes=FP16, microbatch_size=3)
    assert mem.activations_bytes == 3 * FP16 * (8 + 16 + 8)  # fc1 in, fc2 in, relu2 out


def test_a_layer_list_checkpoints_each_transformer_layer() -> None:
    """A scenario's layer list has no numbered names: full recompute opens a checkpoint
    segment at the norm before each attention, one 2sbh input per layer and micro-batch."""
    from leptonsim.models import LayerStack
    from leptonsim.ops import GELU, Dense, LayerNorm

    s, h, layers = 16, 32, 3
    stack = LayerStack("list", (s, h))
    for i in range(layers):
        for j, op in enumerate((LayerNorm(), MultiHeadSelfAttention(4), LayerNorm(), Dense(4 * h),
                                GELU(), Dense(h))):
            stack.add(f"{type(op).__name__.lower()}{6 * i + j}", op)
    m = stack.build()
    whole = (0, len(m.layers))
    one, two = (stage_memory(m, whole, dtype_bytes=FP16, in_flight=k, recompute="full")
                for k in (1, 2))
    assert two.activations_bytes - one.activations_bytes == layers * 2 * s * h
