"""Memory one device needs for its pipeline stage of a model, under tensor parallelism.

Model state, per parameter the device holds (the ZeRO paper's accounting:
Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter
Models", SC'20, section 3.1: mixed-precision Adam needs 2 + 2 + 12 = 16 bytes/param):
- weights: dtype_bytes (non-trainable parameters such as BatchNorm statistics too);
- gradients: dtype_bytes, training only;
- optimizer: Adam keeps m and v in fp32 (8 bytes); plain SGD (no momentum, as
  leptonsim.ops.base models it) keeps nothing; with dtype_bytes < 4 (mixed precision)
  either also keeps an fp32 master copy (4 bytes). fp16 Adam: 2 + 2 + 12 = 16 bytes.
Parameters are counted as the model owns them: a tied layer (GPT's LM head) owns none,
so the copy of the word embedding Megatron keeps on the last stage is not counted.

ZeRO (the same paper, section 5 and Figure 1) shards that model state over the dp
data-parallel replicas: stage 1 the optimizer state (with the fp32 master copy),
stage 2 the gradients too, stage 3 the trainable weights too (FSDP's FULL_SHARD:
Zhao et al., "PyTorch FSDP", VLDB 2023); non-trainable buffers stay replicated, as
FSDP keeps them. Figure 1's 7.5B-parameter model at dp 64 needs 120, 31.4, 16.6 and
1.9 GB at stages 0 to 3. ASSUMPTION: the transient buffers are not counted (stage 3's
gathered layers, at most two buckets as FSDP limits them, and a bucket of full
gradients before its reduce-scatter): a few bucket sizes, 25 MB each by default,
against gigabytes of state.

Tensor parallelism (Megatron-LM: Shoeybi et al. 2019, section 3) splits the attention
and MLP matrices and the vocabulary embedding across tp devices and replicates
LayerNorms, adds and the like. A layer flagged sharded has its parameters and its
output activation divided by tp; by default (default_sharded) layers of kind
attention, dense and embedding are sharded, everything else replicated.

Activations kept for the backward pass, per microbatch sample: the stage's input (the
first layer's input, replicated across tp) plus every layer's output, numel(shape) *
dtype_bytes each. This counts one tensor per op; Korthikanti et al. 2022 ("Reducing
Activation Recomputation in Large Transformer Models") count more per transformer
layer (34 sbh + 5 as^2 b bytes, fp16, masks and softmax inputs included), so ours is a
lower bound for transformers. A stage holds `in_flight` microbatches of them (GPipe:
all m; 1F1B: at most stages - s on stage s; Narayanan et al. SC'21).
- recompute (full activation checkpointing, Chen et al. 2016; Megatron's "full"
  recompute): each in-flight microbatch keeps only its stage input, plus one
  microbatch's layer outputs rebuilt for its backward. Never more than without
  recompute; equal when in_flight == 1 (that microbatch is rebuilt in full anyway).
- inference: only the largest layer output, twice (its input and output buffers live
  at once), for one microbatch; in_flight is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from math import prod

from leptonsim.models import Layer, Model

SHARDED_KINDS = frozenset({"attention", "dense", "embedding"})
OPTIMIZER_STATE_BYTES = {"sgd": 0, "adam": 8}  # per trainable parameter
MASTER_COPY_BYTES = 4  # fp32 weights kept beside fp16 ones in mixed precision
SHARDED_FROM = (3, 2, 1)  # the ZeRO stage that shards weights, gradients, optimizer state


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes one device needs, by kind; total_bytes is their sum."""

    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    total_bytes: float = field(init=False)

    def __post_init__(self) -> None:
        total = self.weights_bytes + self.gradients_bytes + self.optimizer_bytes
        object.__setattr__(self, "total_bytes", total + self.activations_bytes)


def optimizer_state_bytes(optimizer: str, dtype_bytes: int) -> int:
    """Optimizer state per trainable parameter, plus the fp32 master copy that mixed
    precision keeps beside fp16/bf16/fp8 weights (Micikevicius et al. 2018 and 2022)."""
    return OPTIMIZER_STATE_BYTES[optimizer] + (MASTER_COPY_BYTES if dtype_bytes < 4 else 0)


def model_state_bytes(trainable: float, frozen: float, *, optimizer: str, dtype_bytes: int,
                      dp: int = 1, zero: int = 0) -> tuple[float, float, float]:
    """(weights, gradients, optimizer state) bytes of one device holding `trainable` and
    `frozen` parameters, with ZeRO stage `zero` sharding them over `dp` replicas."""
    if zero not in (0, 1, 2, 3):
        raise ValueError(f"zero must be 0, 1, 2 or 3, got {zero!r}")
    if not isinstance(dp, int) or isinstance(dp, bool) or dp < 1:
        raise ValueError(f"dp must be a positive integer, got {dp!r}")

    w, g, o = (dp if zero >= stage else 1 for stage in SHARDED_FROM)
    weights = trainable * dtype_bytes / w + frozen * dtype_bytes
    return weights, trainable * dtype_bytes / g, trainable * optimizer_state_bytes(
        optimizer, dtype_bytes) / o


def default_sharded(model: Model) -> tuple[bool, ...]:
    """Per layer of the model: does Megatron-style tensor parallelism split it?"""
    return tuple(layer.kind in SHARDED_KINDS for layer in model.layers)


def stage_params(
    model: Model,
    layer_range: tuple[int, int],
    *,
    tp: int = 1,
    sharded: Sequence[bool] | None = None,
    trainable: bool = True,
) -> float:
    """Parameters one device of the stage holds (trainable, or else non-trainable)."""
    layers, flags = _stage(model, layer_range, tp, sharded)
    count = (lambda layer: layer.params) if trainable else (lambda layer: layer.non_trainable_params)
    return sum(count(layer) / (tp if flag else 1) for layer, flag in zip(layers, flags, strict=True))


def stage_memory(
    model: Model,
    layer_range: tuple[int, int],
    *,
    tp: int = 1,
    microbatch_size: int = 1,
    in_flight: int = 1,
    optimizer: str = "adam",
    dtype_bytes: int = 4,
    recompute: bool = False,
    training: bool = True,
    sharded: Sequence[bool] | None = None,
    dp: int = 1,
    zero: int = 0,
) -> MemoryBreakdown:
    """Memory of one device holding model.layers[start:end], split tp ways, its model
    state sharded over dp replicas by ZeRO stage `zero`.

    `sharded` flags every layer of the model (not just this stage's); None means
    default_sharded(model). Conventions and sources are in the module docstring.
    """
    _check_settings(microbatch_size, in_flight, optimizer, dtype_bytes)
    layers, flags = _stage(model, layer_range, tp, sharded)
    trainable = stage_params(model, layer_range, tp=tp, sharded=sharded)
    frozen = stage_params(model, layer_range, tp=tp, sharded=sharded, trainable=False)
    outputs = [
        _numel(layer.output_shape) * dtype_bytes / (tp if f else 1)
        for layer, f in zip(layers, flags, strict=True)
    ]
    if not training:
        return MemoryBreakdown(
            (trainable + frozen) * dtype_bytes, 0.0, 0.0, 2 * max(outputs) * microbatch_size
        )
    weights, gradients, state = model_state_bytes(trainable, frozen, optimizer=optimizer,
                                                  dtype_bytes=dtype_bytes, dp=dp, zero=zero)
    stage_input = _numel(layers[0].input_shape) * dtype_bytes
    if recompute:
        per_sample = in_flight * stage_input + sum(outputs)
    else:
        per_sample = in_flight * (stage_input + sum(outputs))
    return MemoryBreakdown(
        weights_bytes=weights,
        gradients_bytes=gradients,
        optimizer_bytes=state,
        activations_bytes=per_sample * microbatch_size,
    )


def _stage(
    model: Model, layer_range: tuple[int, int], tp: int, sharded: Sequence[bool] | None
) -> tuple[tuple[Layer, ...], tuple[bool, ...]]:
    """The stage's layers and their sharding flags, after validating the arguments."""
    n = len(model.layers)
    start, end = layer_range
    if not 0 <= start < end <= n:
        raise ValueError(f"layer_range must satisfy 0 <= start < end <= {n}, got {layer_range}")
    if not isinstance(tp, int) or isinstance(tp, bool) or tp < 1:
        raise ValueError(f"tp must be a positive integer, got {tp!r}")
    flags = default_sharded(model) if sharded is None else tuple(sharded)
    if len(flags) != n:
        raise ValueError(f"sharded needs one flag per model layer ({n}), got {len(flags)}")
    return model.layers[start:end], flags[start:end]


def _check_settings(microbatch_size: int, in_flight: int, optimizer: str, dtype_bytes: int) -> None:
    for name, value in (("microbatch_size", microbatch_size), ("in_flight", in_flight)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if optimizer not in OPTIMIZER_STATE_BYTES:
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    if dtype_bytes not in (1, 2, 4, 8):  # fp8/int8, fp16/bf16, fp32/tf32, fp64
        raise ValueError(f"dtype_bytes must be 1, 2, 4 or 8, got {dtype_bytes!r}")


def _numel(shape: tuple[int, ...]) -> int:
    return prod(shape)  # a scalar output (a loss) has shape () and one element


def published_layer_bytes(s: int, b: int, h: int, a: int, t: int = 1, *, sp: bool = False,
                          recompute: str = "none") -> float:
    """Activation bytes one transformer layer keeps per device, as Korthikanti et al.,
    "Reducing Activation Recomputation in Large Transformer Models", MLSys 2023, Table 2
    states them (fp16 activations, 1-byte dropout masks): sbh (10 + 24/t + 5as/(ht))
    with tensor parallelism t, sbh/t (34 + 5as/h) with sequence parallelism too;
    "selective" drops the 5as/h term (the attention core is rebuilt), "full" keeps the
    layer's input alone, 2sbh. t = 1 gives the unsplit sbh (34 + 5as/h).
    The reference the per-op memory model is to be checked against."""
    if recompute == "full":
        return 2.0 * s * b * h
    if recompute not in ("none", "selective"):
        raise ValueError(f"recompute must be none, selective or full, got {recompute!r}")
    core = 0 if recompute == "selective" else 5 * a * s * s * b  # scores, probabilities, masks
    sbh = s * b * h
    replicated = 0 if sp else 10 * sbh  # LayerNorm and dropout regions, unless sp splits them
    return replicated + ((34 * sbh if sp else 24 * sbh) + core) / t
