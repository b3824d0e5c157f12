"""The `[workload.model]` table: a DNN from the zoo, by its sizes or declared layer by
layer (how it is split over the cluster, the seed's model partition, task assignment and
data synchronisation, is scenario/parallel.py's)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import ops
from ..cost import CostModel
from ..errors import ScenarioError, did_you_mean, found
from ..graph import GemmRows
from ..hardware import PRECISIONS, Cluster
from ..limits import check_size
from ..models import LayerStack, Model
from ..ops.attention import IMPLEMENTATIONS
from ..ops.base import Cost
from ..parallel.config import (
    OPTIMIZERS,
    ParallelConfig,
)
from ..zoo import ZOO, get_model
from ..zoo.cnn import CONV_ALGORITHMS, CONV_LAYOUTS, with_fastest_convs, with_layout
from ..zoo.recsys import dlrm
from ..zoo.transformer import FUSIONS, transformer, with_kernels
from .dlrm import build_dlrm_spec, dlrm_schema
from .transformer import build_spec, transformer_schema

Doc = dict[str, Any]
Schema = dict[str, Any]

OPS = ops.LAYER_OPS  # the ops a layer list can chain (one input each)
RESIDUAL = "add"     # and the residual add, which names the earlier layer it adds back
REPEAT_MAX = 65_536  # copies of a repeated block (the tasks bound stops a big model later)
MODEL_WIDE = {"implementation": "attention", "fused": "fused",  # layer args set model-wide
              "transposes": "conv_layout", "algorithms": "conv_algorithm",
              "feeds": "fused", "relu_grad": "fused", "grad_fused": "fused"}
# Bytes per stored value: tf32 is stored as fp32 and multiplied on tensor cores at the tf32
# peak; fp8 (Micikevicius et al., "FP8 Formats for Deep Learning", arXiv:2209.05433, 2022)
# and int8 store one byte, and training keeps an fp32 master copy (parallel/memory.py).
PRECISION_BYTES = dict(zip(PRECISIONS, (8, 4, 4, 2, 2, 1, 1), strict=True))


def model_schema(table: Any, integer: Any, quantity: Any) -> Schema:
    layer = table("One layer: `op` names the op kind; the other keys are its arguments "
                  "(e.g. filters, kernel, stride, padding, units, heads, vocab, dim); or a "
                  "block of layers repeated: `repeat` copies of `layers`", {
                      "name": {"type": "string", "description": "Layer name, unique"},
                      "op": {"enum": sorted([*OPS, RESIDUAL]), "description": "The op kind"},
                      "residual": {"type": "string",
                                   "description": "With op = 'add': the earlier layer whose "
                                                  "output is added back: a layer name, "
                                                  "'input' (the model's), or 'block' (the "
                                                  "input of this copy of a repeated block)"},
                      "repeat": {"type": "integer", "minimum": 1, "maximum": REPEAT_MAX,
                                 "description": "Copies of the block `layers` (layer names "
                                                "get the suffix .0, .1, ...)"},
                  }, (), additionalProperties=True,
                  oneOf=[{"required": ["op"]}, {"required": ["repeat"]}])
    return table("A DNN whose training step or inference pass becomes the task graph", {
        "name": {"enum": sorted(ZOO), "x-any-case": True,
                 "description": "A model of the zoo, in any case (leptonsim model NAME "
                                "prints its layers)"},
        "input_shape": {"type": "array", "items": {"type": "integer", "minimum": 1},
                        "minItems": 1, "description": "Per-sample input shape, needed with layers"},
        "layers": {"type": "array", "minItems": 1, "items": layer,
                   "description": "The model declared layer by layer, in execution order"},
        "transformer": transformer_schema(table),
        "dlrm": dlrm_schema(table),
        "batch": integer("Global batch: samples per step, over all replicas", 1),
        "microbatches": integer("Micro-batches per replica per step", 1, 1),
        "training": {"type": "boolean", "default": True,
                     "description": "A training step (forward, backward, gradient sync, "
                                    "optimizer) or, if false, an inference pass"},
        "recompute": {"anyOf": [{"enum": ["none", "selective", "full"]}, {"type": "boolean"}],
                      "default": "none",
                      "description": "Activations rebuilt in the backward pass instead of "
                                     "kept: none, selective (the attention core: scores, "
                                     "softmax, dropout) or full (every layer from its input "
                                     "checkpoint); true means full, false none"},
        "optimizer": {"enum": list(OPTIMIZERS), "default": "adam",
                      "description": "The optimizer update: sgd or adam"},
        "precision": {"enum": list(PRECISION_BYTES), "default": "fp16",
                      "description": "Numeric format of weights, activations and gradients; "
                                     "GEMMs run at the units' peak for it"},
        "attention": {"enum": list(IMPLEMENTATIONS), "default": "flash",
                      "description": "Attention kernel of every attention layer: flash "
                                     "(FlashAttention-2's IO-aware cost, no S x S scores in "
                                     "memory), unfused (scores and probabilities through "
                                     "memory) or eager (unfused, with the scale and the mask "
                                     "as their own passes over the scores: PyTorch unscripted)"},
        "fused": {"type": "array", "items": {"enum": [*FUSIONS, "optimizer"]}, "uniqueItems": True,
                  "default": [],
                  "description": "Fused kernels: bias_gelu (a GELU in its Dense's GEMM "
                                 "epilogue), add_norm (a residual add and the LayerNorm after "
                                 "it in one kernel), bn_add_relu (each ReLU after a "
                                 "BatchNorm or Add and each Add after a BatchNorm in that "
                                 "op's kernel, and a ReLU's gradient in its BatchNorm's "
                                 "backward: XLA), optimizer (the update one kernel per "
                                 "parameter group, as apex FusedAdam, not one per tensor)"},
        "conv_layout": {"enum": list(CONV_LAYOUTS), "default": CONV_LAYOUTS[0],
                        "description": "Data layout of every convolution: nhwc (channels-"
                                       "last) or nchw (PyTorch's default); on nchw a "
                                       "tensor-core precision (tf32, fp16, bf16) pays "
                                       "cuDNN's transposes to NHWC and back around each "
                                       "convolution, fp32 and fp64 nothing"},
        "conv_algorithm": {"enum": list(CONV_ALGORITHMS), "default": CONV_ALGORITHMS[0],
                           "description": "Algorithm of every convolution phase: "
                                          "implicit_gemm, or fastest (the cost model's "
                                          "fastest of those that apply: implicit GEMM, and "
                                          "for 3x3 stride-1 convolutions cuDNN's Winograd "
                                          "fused or nonfused, as cuDNN's autotuner picks: "
                                          "PyTorch's cudnn.benchmark, TensorFlow's autotune)"},
        "update_kernels": integer("Elementwise kernels per parameter tensor of the optimizer "
                                  "step, unfused (an eager optimizer's chain of passes, each "
                                  "writing an intermediate the next reads back: NVIDIA's "
                                  "BertAdam is 12); 1: one kernel per tensor", 1, 1),
        "host_dispatch": quantity("time", "Host time to dispatch one kernel (an eager "
                                  "framework's per-op Python and dispatcher overhead), "
                                  "overlapped with the device: a task lasts at least its "
                                  "kernels x this; 0: none (CUDA graphs, XLA, scripted)",
                                  0.0, minimum=0),
        "input_pipeline": quantity("time", "Host time per sample of the input pipeline (data "
                                   "loading, decoding, augmentation), overlapped with the step: "
                                   "a node's units share its host, so a step lasts at least "
                                   "the node's samples per step x this; 0: none", 0.0,
                                   minimum=0),
    }, ("batch",), oneOf=[{"required": [k]} for k in ("name", "layers", "transformer", "dlrm")])


def build_model(table: Doc, file: str = "<string>") -> Model:
    """The Model of a [workload.model] table, from the zoo by name, by its transformer
    sizes or layer by layer, with the table's attention implementation, fused kernels
    and convolution layout. `file` is the scenario's, which a config.json path is
    relative to."""
    fused = [f for f in table.get("fused", ()) if f in FUSIONS]
    model = with_kernels(_model(table, file), table.get("attention"), fused)
    return with_layout(model, table.get("conv_layout", CONV_LAYOUTS[0]), table.get("precision"))


def with_conv_algorithm(model: Model, table: Doc, cfg: ParallelConfig, cluster: Cluster,
                        cost: CostModel) -> Model:
    """`model` with its convolutions on the table's `conv_algorithm`: "fastest" times each
    phase's candidates with `cost` on the cluster's first unit type at the step's
    micro-batch (ASSUMPTION: one choice for every unit, as on a cluster of one GPU type)."""
    if table.get("conv_algorithm", CONV_ALGORITHMS[0]) != "fastest" or not cluster.unit_types:
        return model
    unit = cluster.unit_types[0]

    def seconds(c: Cost) -> float:
        return float(cost.work_seconds(np.array([c.flops]), np.array([c.bytes]), unit, ["conv2d"],
                                       GemmRows.of([c.gemms]), np.array([c.kernels]))[0])
    return with_fastest_convs(model, table.get("precision"), cfg.microbatch_size,
                              cfg.dtype_bytes, seconds)


def _model(table: Doc, file: str) -> Model:
    if "transformer" in table:
        return transformer(build_spec(table["transformer"], file))
    if "dlrm" in table:
        return dlrm(build_dlrm_spec(table["dlrm"]))
    if "name" in table:
        if "input_shape" in table:  # a zoo model has its own; this one would be ignored
            raise ScenarioError("workload.model.input_shape", "no input_shape for a zoo model "
                                f"({table['name']!r} has its own)", found(table["input_shape"]),
                                hint="remove it, or declare the model with layers")
        return get_model(table["name"])
    if "input_shape" not in table:
        raise ScenarioError("workload.model.input_shape", "the per-sample input shape, e.g. "
                            "[28, 28, 1], for a model declared with layers", "<nothing>")
    check_size("model_layers", _count(table["layers"]), "workload.model.layers",
               hint="repeated blocks counted in full")
    stack = LayerStack("declared", tuple(table["input_shape"]))
    shapes = {"input": stack.shape}  # each layer's output, for residual adds
    for path, suffix, spec in _expand(table["layers"], "workload.model.layers"):
        if spec is None:  # a copy of a block starts: its input is the residual "block"
            shapes["block" + suffix] = stack.shape
            continue
        name = spec["name"] + suffix if "name" in spec else f"{spec['op']}{len(stack.layers)}"
        op = (_residual(spec, path, shapes, stack.shape, suffix) if spec["op"] == RESIDUAL
              else _op(spec, path))
        try:
            shapes[name] = stack.add(name, op)
        except ValueError as err:
            raise ScenarioError(path, "a layer that fits the previous layer's output",
                                f"<{err}>") from None
    return stack.build()


def _expand(layers: list[Doc], path: str,
            suffix: str = "") -> Iterator[tuple[str, str, Doc | None]]:
    """(key path, name suffix, layer table) of each layer in order, blocks repeated: a
    named layer of copy c of a block is named name.c. Each copy starts with a None
    layer table, marking where its input is."""
    for i, spec in enumerate(layers):
        here = f"{path}[{i}]"
        if "repeat" not in spec:
            _check_kind(spec, here)
            yield here, suffix, spec
            continue
        if not isinstance(spec["repeat"], int) or isinstance(spec["repeat"], bool) or not (
                1 <= spec["repeat"] <= REPEAT_MAX):
            raise ScenarioError(f"{here}.repeat", f"an integer in 1..{REPEAT_MAX:,}",
                                found(spec["repeat"]))
        block = spec.get("layers")
        if not isinstance(block, list) or not block or not all(isinstance(b, dict) for b in block):
            raise ScenarioError(f"{here}.layers", "an array of layer tables to repeat",
                                found(block) if block is not None else "<nothing>")
        extra = set(spec) - {"repeat", "layers"}
        if extra:
            raise ScenarioError(f"{here}.{sorted(extra)[0]}", "repeat and layers alone in a "
                                "repeated block", "<unknown key>")
        for copy in range(spec["repeat"]):
            yield here, f"{suffix}.{copy}", None
            yield from _expand(block, f"{here}.layers", f"{suffix}.{copy}")


def _count(layers: object) -> int:
    """Layers after repeats (what _expand would yield; malformed blocks count 0 here and
    are refused there)."""
    if not isinstance(layers, list):
        return 0
    total = 0
    for spec in layers:
        if isinstance(spec, dict) and isinstance(spec.get("repeat"), int):
            total += spec["repeat"] * _count(spec.get("layers"))
        else:
            total += 1
    return total


def _check_kind(spec: Doc, path: str) -> None:
    """A layer inside a repeated block, which the schema does not reach, names its op."""
    kinds = sorted([*OPS, RESIDUAL])
    if "op" not in spec:
        raise ScenarioError(f"{path}.op", "the op kind of the layer", "<nothing>")
    if spec["op"] not in kinds:
        raise ScenarioError(f"{path}.op", f"one of {', '.join(kinds)}", found(spec["op"]),
                            hint=did_you_mean(spec["op"], kinds))


def _residual(spec: Doc, path: str, shapes: dict[str, tuple[int, ...]],
              shape: tuple[int, ...], suffix: str) -> ops.Op:
    """A residual add: the current output plus an earlier layer's, of the same shape (in
    a repeated block, a name of the block means its layer of the same copy)."""
    source = spec.get("residual")
    if isinstance(source, str) and source + suffix in shapes:
        source += suffix
    extra = set(spec) - {"op", "name", "residual"}
    if extra:
        key = sorted(extra)[0]
        raise ScenarioError(f"{path}.{key}", "an argument of add (residual)",
                            f"<unknown key {key!r}>")
    if not isinstance(source, str) or source not in shapes:
        raise ScenarioError(f"{path}.residual", "the name of an earlier layer or 'input'",
                            found(source) if source is not None else "<nothing>",
                            hint=did_you_mean(source, shapes) if source else "")
    if shapes[source] != shape:
        raise ScenarioError(f"{path}.residual", f"a layer whose output is {shape}, as the "
                            "previous layer's", f"<{source!r} outputs {shapes[source]}>")
    return ops.Add(2)


def _op(spec: Doc, path: str) -> ops.Op:
    cls = OPS[spec["op"]]
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    args = {k: v for k, v in spec.items() if k not in ("op", "name")}
    for key in args:
        if key in MODEL_WIDE:
            raise ScenarioError(f"{path}.{key}", "no per-layer kernel choice",
                                f"<{key} = {args[key]!r}>",
                                hint=f"set [workload.model] {MODEL_WIDE[key]} for every layer")
        if key not in fields:
            raise ScenarioError(f"{path}.{key}", f"an argument of {spec['op']} "
                                f"({', '.join(sorted(fields)) or 'none'})", f"<unknown key {key!r}>",
                                hint=did_you_mean(key, fields))
    hints = typing.get_type_hints(cls)
    for key, value in args.items():
        if not _is(value, hints[key]):
            raise ScenarioError(f"{path}.{key}", _describe(hints[key]), value)
    try:
        return cls(**args)
    except (TypeError, ValueError) as err:
        raise ScenarioError(path, f"valid arguments for {spec['op']}", f"<{err}>") from None


def _is(value: Any, hint: Any) -> bool:
    """Whether a TOML value has an op argument's annotated type. TOML booleans are not
    integers here (Python's bool is), and arrays stand for tuples."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return any(type(value) is type(a) and value == a for a in args)
    if origin in (typing.Union, types.UnionType):
        return any(_is(value, a) for a in args)
    if origin is tuple:
        return (isinstance(value, (list, tuple)) and len(value) == len(args)
                and all(_is(v, a) for v, a in zip(value, args, strict=True)))
    raise TypeError(f"no TOML form for an op argument of type {hint!r}")


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if origin is typing.Literal:
        return f"one of {', '.join(repr(a) for a in args)}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if origin is tuple:
        return f"an array of {len(args)} {'integers' if set(args) == {int} else 'values'}"
    return str(hint)
