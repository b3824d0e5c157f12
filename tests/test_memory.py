"""Per-device memory: parameter accounting, tensor sharding, optimizer state, activations."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leptonsim.models import Model
from leptonsim.parallel.memory import (
    MemoryBreakdown,
    default_sharded,
    stage_memory,
    stage_params,
)
from leptonsim.parallel.pipeline import partition
from leptonsim.zoo import get_model

MODELS = ["seed_cnn", "resnet50", "bert_base", "gpt2_small", "dlrm", "lstm_lm"]


@cache
def model(name: str) -> Model:
    return get_model(name)


def _ranges(m: Model, stages: int) -> list[tuple[int, int]]:
    return partition([layer.cost(1, "forward").flops for layer in m.layers], stages)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("stages", [1, 2, 5])
def test_params_across_stages_sum_to_the_model(name: str, stages: int) -> None:
    m = model(name)
    ranges = _ranges(m, stages)
    assert sum(stage_params(m, r) for r in ranges) == m.params()
    weights = sum(stage_memory(m, r, dtype_bytes=4).weights_bytes for r in ranges)
    assert weights == 4 * m.total_params()  # BatchNorm statistics are stored too


@pytest.mark.parametrize("tp", [1, 2, 8])
def test_sharded_layers_divide_by_tp_exactly(tp: int) -> None:
    m = model("gpt2_small")
    whole = (0, len(m.layers))
    flags = default_sharded(m)
    split = sum(layer.params for layer, f in zip(m.layers, flags, strict=True) if f)
    kept = m.params() - split
    assert stage_params(m, whole, tp=tp) == split / tp + kept
    assert stage_params(m, whole, tp=tp, sharded=[False] * len(m.layers)) == m.params()
    assert stage_params(m, whole, tp=tp, sharded=[True] * len(m.layers)) == m.params() / tp
    assert {m.layers[i].kind for i, f in enumerate(flags) if not f} == {
        "add",
        "dropout",
        "layernorm",
        "gelu",
        "softmax_xent",
    }


@pytest.mark.parametrize("name", MODELS)
def test_fp16_adam_is_16_bytes_per_parameter(name: str) -> None:
    m = model(name)
    mem = stage_memory(m, (0, len(m.layers)), optimizer="adam", dtype_bytes=2)
    state = mem.weights_bytes + mem.gradients_bytes + mem.optimizer_bytes
    assert state == 16 * m.params() + 2 * m.non_trainable_params()
    assert (mem.weights_bytes, mem.gradients_bytes) == (2 * m.total_params(), 2 * m.params())


@pytest.mark.parametrize(
    ("optimizer", "dtype_bytes", "per_param"),
    [("adam", 4, 4 + 4 + 8), ("sgd", 4, 4 + 4), ("sgd", 2, 2 + 2 + 4)],
)
def test_other_optimizer_states(optimizer: str, dtype_bytes: int, per_param: int) -> None:
    m = model("gpt2_small")
    mem = stage_memory(m, (0, len(m.layers)), optimizer=optimizer, dtype_bytes=dtype_bytes)
    assert mem.weights_bytes + mem.gradients_bytes + mem.optimizer_bytes == per_param * m.params()
    assert mem.total_bytes == per_param * m.params() + mem.activations_bytes


def test_inference_keeps_weights_and_the_largest_layer_buffers() -> None:
    m = model("seed_cnn")
    mem = stage_memory(m, (0, len(m.layers)), training=False, microbatch_size=3, in_flight=7)
    largest = max(layer.output_shape[0] * layer.output_shape[1] * layer.output_shape[2]
                  for layer in m.layers if len(layer.output_shape) == 3)  # fmt: skip
    assert mem == MemoryBreakdown(4 * m.params(), 0.0, 0.0, 2 * largest * 4 * 3)


stage_cases = st.tuples(st.sampled_from(MODELS), st.integers(1, 4), st.data(), st.sampled_from([1, 2, 4]))


@given(stage_cases, st.integers(1, 64), st.integers(1, 16), st.booleans(), st.booleans())
def test_activations_scale_linearly_with_microbatch_size(
    case: tuple, mb: int, in_flight: int, recompute: bool, training: bool
) -> None:
    m, r, tp = _stage_case(case)
    kw = {"tp": tp, "in_flight": in_flight, "recompute": recompute, "training": training}
    one = stage_memory(m, r, microbatch_size=1, **kw).activations_bytes
    assert stage_memory(m, r, microbatch_size=mb, **kw).activations_bytes == pytest.approx(
        mb * one, rel=1e-12
    )


@given(stage_cases, st.integers(1, 64), st.integers(1, 16))
def test_activations_scale_linearly_with_in_flight(case: tuple, mb: int, in_flight: int) -> None:
    m, r, tp = _stage_case(case)
    one = stage_memory(m, r, tp=tp, microbatch_size=mb, in_flight=1).activations_bytes
    many = stage_memory(m, r, tp=tp, microbatch_size=mb, in_flight=in_flight).activations_bytes
    assert many == pytest.approx(in_flight * one, rel=1e-12)


@given(st.sampled_from(MODELS), st.integers(1, 64), st.integers(1, 16), st.sampled_from([1, 2, 4]))
def test_recompute_never_increases_activations(name: str, mb: int, in_flight: int, tp: int) -> None:
    """Over a whole model, whose every checkpoint segment starts at a layer that keeps
    its input: full recompute keeps the checkpoints of every in-flight microbatch and
    rebuilds one segment, never more than keeping everything; selective keeps no more."""
    m = model(name)
    whole = (0, len(m.layers))
    kw = {"tp": tp, "microbatch_size": mb, "in_flight": in_flight}
    plain = stage_memory(m, whole, **kw)
    full = stage_memory(m, whole, recompute="full", **kw)
    selective = stage_memory(m, whole, recompute="selective", **kw)
    assert full.activations_bytes <= plain.activations_bytes
    assert selective.activations_bytes <= plain.activations_bytes
    assert full.weights_bytes + full.optimizer_bytes == plain.weights_bytes + plain.optimizer_bytes
    assert stage_memory(m, whole, recompute=True, **kw) == full  # true still means full
    # dlrm's blocks (Dense, ReLU) keep only their input: the ReLU's output is the next
    # block's input, so checkpoints are all they keep and full recompute saves nothing
    if in_flight > 1 and name != "dlrm":
        assert full.activations_bytes < plain.activations_bytes
    if name == "dlrm":
        assert full.activations_bytes == plain.activations_bytes


def _stage_case(case: tuple) -> tuple[Model, tuple[int, int], int]:
    name, stages, data, tp = case
    m = model(name)
    ranges = _ranges(m, stages)
    return m, data.draw(st.sampled_from(ranges)), tp


def test_activation_counts_by_hand() -> None:
    m = model("gpt2_small")  # flash attention, dropout 0.1
    block = [i for i, layer in enumerate(m.layers) if layer.name.startswith("layer.0.")]
    names = [m.layers[i].name.removeprefix("layer.0.") for i in block]
    assert names == ["attn_norm", "attn", "attn.dropout", "attn.add", "mlp_norm", "mlp.fc",
                     "mlp.act", "mlp.proj", "mlp.dropout", "mlp.add"]
    s, h, a = 1024, 768, 12
    r = (block[0], block[-1] + 1)
    # per sample at fp16, tp 2: ln_1 input 2sh; attn input 2sh whole, Q, K, V, context
    # 8sh / 2 and a fp32 log-sum-exp per row and head / 2; masks sh each; ln_2 2sh;
    # fc input 2sh whole; GELU input 8sh / 2; proj input 8sh / 2
    per_sample = (2 * s * h + 2 * s * h + 8 * s * h / 2 + 4 * a * s / 2 + s * h + 2 * s * h
                  + 2 * s * h + 8 * s * h / 2 + 8 * s * h / 2 + s * h)
    mem = stage_memory(m, r, tp=2, microbatch_size=3, in_flight=5, dtype_bytes=2)
    assert mem.activations_bytes == 3 * 5 * per_sample
    # full recompute: one checkpoint (the block input, 2sh) per in-flight microbatch,
    # and the block rebuilt once, its input being the checkpoint itself
    rec = stage_memory(m, r, tp=2, microbatch_size=3, in_flight=5, dtype_bytes=2, recompute="full")
    assert rec.activations_bytes == 3 * (5 * 2 * s * h + per_sample - 2 * s * h)


def test_gpt3_175b_on_tp8_pp16_holds_about_22_gb_of_model_state_per_gpu() -> None:
    m = model("gpt3_175b")
    tp, pp = 8, 16  # 96 blocks, 6 a stage, the embeddings on the first
    first = {layer.name: i for i, layer in enumerate(m.layers)}
    cuts = [0] + [first[f"layer.{6 * i}.attn_norm"] for i in range(1, pp)] + [len(m.layers)]
    ranges = list(zip(cuts, cuts[1:], strict=False))
    state = []
    for r in ranges:
        mem = stage_memory(m, r, tp=tp, optimizer="adam", dtype_bytes=2)
        state.append(mem.weights_bytes + mem.gradients_bytes + mem.optimizer_bytes)
    expected = 175e9 * 16 / (tp * pp)  # about 21.9 GB
    assert sum(state) / pp == pytest.approx(expected, rel=0.01)
    assert all(x == pytest.approx(expected, rel=0.01) for x in state[1:])
    # the first stage also holds the token and position embeddings (tp-sharded)
    embeddings = (51_200 + 2048) * 12_288 / tp * 16
    assert state[0] - state[1] == pytest.approx(embeddings, rel=1e-9)
    assert state[0] == pytest.approx(expected, rel=0.06)


def test_bad_settings() -> None:
    m = model("seed_cnn")
    whole = (0, len(m.layers))
    with pytest.raises(ValueError, match=r"layer_range must satisfy 0 <= start < end <= 11, got \(3, 3\)"):
        stage_memory(m, (3, 3))
    with pytest.raises(ValueError, match="tp must be a positive integer"):
        stage_memory(m, whole, tp=0)
    with pytest.raises(ValueError, match="optimizer must be 'sgd' or 'adam', got 'lamb'"):
        stage_memory(m, whole, optimizer="lamb")
    with pytest.raises(ValueError, match="dtype_bytes must be 1, 2, 4 or 8, got 3"):
        stage_memory(m, whole, dtype_bytes=3)
    with pytest.raises(ValueError, match="in_flight must be a positive integer"):
        stage_memory(m, whole, in_flight=0)
    with pytest.raises(ValueError, match=r"one flag per model layer \(11\), got 2"):
        stage_memory(m, whole, sharded=[True, False])
