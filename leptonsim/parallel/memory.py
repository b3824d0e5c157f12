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

Activations kept for the backward pass, per microbatch sample, as Korthikanti et al.,
"Reducing Activation Recomputation in Large Transformer Models", MLSys 2023, section 4
count them: every op keeps what its backward reads (ops.base `Op.saved_bytes`: a
Dense, GELU or LayerNorm its input, attention its projections and S x S core, a
Dropout its 1-byte mask, an Add nothing, a ReLU its output, counted once when the next
op keeps it as its input), so a GPT layer keeps sbh (34 + 5as/h) bytes
at fp16 (unfused attention, dropout 0.1), and FlashAttention drops the 5as/h term.
A stage holds `in_flight` microbatches of them (GPipe: all m; 1F1B: at most
stages - s on stage s; Narayanan et al. SC'21); an interleaved stage's chunks peak
together (plan_memory.peak_in_flight: p (1 + (p-1)/(pm)) chunk-microbatches on the
first stage, Korthikanti et al. section 4.3).
- tensor parallelism (their section 4.2.1, Table 2: sbh (10 + 24/t + 5as/(ht))):
  the tensors a split layer makes divide by t; its input does too unless the layer
  opens a split region (attention, a column-parallel Dense), whose input every rank
  holds whole, as it holds the LayerNorms', dropouts' and adds' tensors.
- sequence parallelism (`sp`, section 4.2.2): those replicated regions are split
  along the sequence, so every tensor divides by t: sbh/t (34 + 5as/h).
- recompute "selective" (section 5): the attention core (`Saved.core`: scores,
  softmax, dropout mask and output) is rebuilt in the backward, not kept: 34 sbh.
- recompute "full" (Chen et al. 2016, "Training Deep Nets with Sublinear Memory
  Cost"; Megatron's uniform checkpointing of every transformer layer): each
  in-flight microbatch keeps only each layer's input (2 sbh; / t with sp), plus one
  microbatch's largest layer rebuilt for its backward. A layer is a run of ops
  sharing a block name (`block_of`: "h.3.attn" is block "h.3"); ops outside blocks
  (no numbered name: embeddings, the final norm, the head and loss) are not
  checkpointed and keep what they keep, as Megatron-LM checkpoints its transformer
  layers alone (its embedding dropout mask, sbh per in-flight microbatch, Korthikanti
  et al. section 4.3, stays). A model without numbered names (a
  scenario's layer list) opens a segment at the layer before each attention layer
  (a pre-LN block's norm), and one with neither checkpoints its stage input alone.
  `True`/`False` mean "full"/"none".
- inference: only the largest layer output, twice (its input and output buffers live
  at once), for one microbatch; in_flight is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from math import prod

from leptonsim.models import Layer, Model
from leptonsim.ops.base import Saved

from .tensor import layer_roles

SHARDED_KINDS = frozenset({"attention", "dense", "embedding"})
OPTIMIZER_STATE_BYTES = {"sgd": 0, "adam": 8}  # per trainable parameter
MASTER_COPY_BYTES = 4  # fp32 weights kept beside fp16 ones in mixed precision
RECOMPUTE = ("none", "selective", "full")
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
    recompute: str | bool = "none",
    training: bool = True,
    sharded: Sequence[bool] | None = None,
    sp: bool = False,
    dp: int = 1,
    zero: int = 0,
) -> MemoryBreakdown:
    """Memory of one device holding model.layers[start:end], split tp ways, its model
    state sharded over dp replicas by ZeRO stage `zero`.

    `sharded` flags every layer of the model (not just this stage's); None means
    default_sharded(model) for the parameters and tensor.layer_roles' split for the
    activations. Conventions and sources are in the module docstring.
    """
    _check_settings(microbatch_size, in_flight, optimizer, dtype_bytes)
    layers, flags = _stage(model, layer_range, tp, sharded)
    trainable = stage_params(model, layer_range, tp=tp, sharded=sharded)
    frozen = stage_params(model, layer_range, tp=tp, sharded=sharded, trainable=False)
    if not training:
        outputs = [_numel(layer.output_shape) * dtype_bytes / (tp if f else 1)
                   for layer, f in zip(layers, flags, strict=True)]
        return MemoryBreakdown(
            (trainable + frozen) * dtype_bytes, 0.0, 0.0, 2 * max(outputs) * microbatch_size
        )
    weights, gradients, state = model_state_bytes(trainable, frozen, optimizer=optimizer,
                                                  dtype_bytes=dtype_bytes, dp=dp, zero=zero)
    per_sample = kept_activations(model, layer_range, tp=tp, in_flight=in_flight,
                                  dtype_bytes=dtype_bytes, recompute=recompute,
                                  sharded=sharded, sp=sp)
    return MemoryBreakdown(
        weights_bytes=weights,
        gradients_bytes=gradients,
        optimizer_bytes=state,
        activations_bytes=per_sample * microbatch_size,
    )


def recompute_mode(recompute: str | bool) -> str:
    """"none", "selective" or "full"; the booleans of old mean "full" and "none"."""
    if isinstance(recompute, bool):
        return "full" if recompute else "none"
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute must be none, selective or full, got {recompute!r}")
    return recompute


def layer_saved(model: Model, layer_range: tuple[int, int], *, tp: int = 1, dtype_bytes: int = 2,
                selective: bool = False, sharded: Sequence[bool] | None = None,
                sp: bool = False) -> list[float]:
    """Per layer of the stage, the bytes one device keeps for its backward per sample
    (module docstring: tensor and sequence parallel shares; `selective` drops the
    attention core)."""
    shares = _shares(model, layer_range, tp, dtype_bytes, selective, sharded, sp)
    return [i + m for i, m, _ in shares]


def _shares(model: Model, layer_range: tuple[int, int], tp: int, dtype_bytes: int,
            selective: bool, sharded: Sequence[bool] | None, sp: bool
            ) -> list[tuple[float, float, int]]:
    """Per layer of the stage: (its kept input, the tensors it keeps that it made, the
    share of its input one device holds, 1/n), per sample on one device."""
    _, flags = _stage(model, layer_range, tp, _activation_flags(model, sharded))
    start, end = layer_range
    split_input = _splits_its_input(model)[start:end]
    saved: list[Saved] = [layer.op.saved_bytes(layer.input_shape, 1, dtype_bytes)
                          for layer in model.layers[start:end]]
    out = []
    for i, (flag, split_in) in enumerate(zip(flags, split_input, strict=True)):
        kept = saved[i]
        shared = i + 1 < len(saved) and saved[i + 1].inputs > 0  # the next op keeps it
        made = kept.made + (0.0 if selective else kept.core) + (0.0 if shared else kept.output)
        share = tp if flag or sp else 1
        input_share = share if split_in or sp else 1
        out.append((kept.inputs / input_share, made / share, input_share))
    return out


def kept_activations(model: Model, layer_range: tuple[int, int], *, tp: int = 1,
                     in_flight: int = 1, dtype_bytes: int = 2, recompute: str | bool = "none",
                     sharded: Sequence[bool] | None = None, sp: bool = False) -> float:
    """Activation bytes per sample one device of the stage holds at its peak, for
    `in_flight` microbatches (module docstring)."""
    each, rebuilt = kept_parts(model, layer_range, tp=tp, dtype_bytes=dtype_bytes,
                               recompute=recompute, sharded=sharded, sp=sp)
    return in_flight * each + rebuilt


def kept_parts(model: Model, layer_range: tuple[int, int], *, tp: int = 1, dtype_bytes: int = 2,
               recompute: str | bool = "none", sharded: Sequence[bool] | None = None,
               sp: bool = False) -> tuple[float, float]:
    """(bytes per sample each in-flight microbatch keeps, bytes per sample of the one
    microbatch whose layer full recompute rebuilds for its backward): the stage's peak
    is in_flight x the first + the second. With full recompute the layers of numbered
    blocks keep their checkpoints alone; layers outside blocks in a model with blocks
    (embeddings, the final norm, the LM head and loss) are not checkpointed, as
    Megatron-LM checkpoints its transformer layers only, and keep what they keep."""
    mode = recompute_mode(recompute)
    shares = _shares(model, layer_range, tp, dtype_bytes, mode == "selective", sharded, sp)
    if mode != "full":
        return sum(i + m for i, m, _ in shares), 0.0
    start = layer_range[0]
    blocks = any(block_of(layer.name) for layer in model.layers)
    kept, rebuilt = 0.0, 0.0
    for first, end in _segments(model, layer_range):
        segment = shares[first - start:end - start]
        whole = sum(i + m for i, m, _ in segment)
        if blocks and not block_of(model.layers[first].name):
            kept += whole  # outside the checkpointed transformer layers
            continue
        checkpoint = _numel(model.layers[first].input_shape) * dtype_bytes / segment[0][2]
        # the rebuilt first layer's kept input is the checkpoint itself, not a copy
        kept, rebuilt = kept + checkpoint, max(rebuilt, whole - min(segment[0][0], checkpoint))
    return kept, rebuilt


def block_of(name: str) -> str:
    """The block a layer belongs to: its name up to its first numbered part ("h.3.attn"
    -> "h.3", "layer.0.ffn.fc" -> "layer.0"); "" for a layer outside blocks."""
    parts = name.split(".")
    numbered = next((i for i, p in enumerate(parts) if p.isdigit()), None)
    return "" if numbered is None else ".".join(parts[:numbered + 1])


def block_starts(model: Model) -> list[int]:
    """Where each numbered block after the first begins: the layers before the first
    block (embeddings) go with it, those after the last (final norm, head, loss) with
    the last, as Megatron-LM places them."""
    starts, last = [], ""
    for i, layer in enumerate(model.layers):
        block = block_of(layer.name)
        if block and block != last:
            if last:
                starts.append(i)
            last = block
    return starts


def _segments(model: Model, layer_range: tuple[int, int]) -> list[tuple[int, int]]:
    """The stage's full-recompute segments, [first, end): runs of layers of one block,
    or in a model without numbered blocks (a scenario's layer list) one transformer
    layer each: a segment opens at the layer before each attention (its pre-LN norm)."""
    start, end = layer_range
    layers = model.layers
    if any(block_of(layer.name) for layer in layers):
        cuts = [i for i in range(start + 1, end)
                if block_of(layers[i].name) != block_of(layers[i - 1].name)]
    else:
        cuts = [i - 1 for i in range(start + 2, end) if layers[i].kind in ("attention", "moe")]
    bounds = [start, *cuts, end]
    return list(zip(bounds, bounds[1:], strict=False))


def _activation_flags(model: Model, sharded: Sequence[bool] | None) -> tuple[bool, ...]:
    """Which layers' activations tensor parallelism splits: as given, or Megatron's."""
    return tuple(sharded) if sharded is not None else tuple(r.sharded for r in layer_roles(model))


def _splits_its_input(model: Model) -> list[bool]:
    """Per layer: is its input split too when the layer is? Not for the openers of a
    split region (attention, MoE, a column-parallel Dense), whose input is whole."""
    roles = layer_roles(model)
    return [not (layer.kind in ("attention", "moe")
                 or (layer.kind == "dense" and role.forward_after != "allreduce"))
            for layer, role in zip(model.layers, roles, strict=True)]


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
    if recompute_mode(recompute) == "full":
        return 2.0 * s * b * h
    core = 0 if recompute == "selective" else 5 * a * s * s * b  # scores, probabilities, masks
    sbh = s * b * h
    replicated = 0 if sp else 10 * sbh  # LayerNorm and dropout regions, unless sp splits them
    return replicated + ((34 * sbh if sp else 24 * sbh) + core) / t
