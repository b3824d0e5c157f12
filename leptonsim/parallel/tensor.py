"""Megatron-style tensor parallelism: which layers are split, where groups talk.

Walking the layers in order: a Dense layer opens a column-parallel region, the next
Dense closes it as row-parallel, and elementwise layers in between are split too
(MLP: fc → activation → proj). Attention is a whole region by itself (QKV column-
parallel, output projection row-parallel). Closing a region needs an all-reduce of
its output in the forward pass, and the region's opener needs one on its input
gradient in the backward pass (Shoeybi et al., 2019, Fig. 3: operators g and f). A
region left open at a layer that cannot be split ends with an all-gather of its
output (whose backward is a free slice) and the same all-reduce at its opener.
Norms, residual adds, convolutions, pooling, embeddings and losses are replicated:
every rank of the group computes them whole. A split must be even: tp divides every
attention layer's heads and every split Dense width (Megatron asserts the same, and
pads a vocabulary-parallel head's vocabulary to a multiple of tp), or it is refused.

With sequence parallelism (Korthikanti et al., "Reducing Activation Recomputation in
Large Transformer Models", MLSys 2023, section 4.2.2, Figure 5) the per-token layers
between a region's closer and the next region's opener (norms, residual adds,
dropouts, activations) run on s/tp of the tokens each: the closer's all-reduce becomes
a reduce-scatter along the sequence, the next opener's input is all-gathered first
(g), and in the backward the two swap (the all-gather's gradient is a reduce-scatter,
the reduce-scatter's an all-gather). A ring all-reduce is exactly a reduce-scatter and
an all-gather, so the bytes on the wire do not change. A gap holding any other layer
(an embedding, a loss, a convolution) keeps its all-reduce: the replicated layer
needs every token. The first norm, before any region has closed, stays replicated
(Megatron scatters the embedding's output; here it is whole on every rank).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..models import Model

ELEMENTWISE = {"relu", "gelu", "tanh", "sigmoid", "silu", "swiglu", "activation"}
PER_TOKEN = ELEMENTWISE | {"layernorm", "rmsnorm", "add", "dropout"}
"""Layers that treat each token alone, so sequence parallelism can split them."""


@dataclass(frozen=True, slots=True)
class LayerRole:
    sharded: bool            # its FLOPs, bytes and parameters divide by tp
    forward_after: str       # collective after its forward: "", "allreduce", "allgather"
    backward_after: str      # collective after its backward: "", "allreduce", "reducescatter"
    forward_before: str = ""   # collective before its forward (sequence parallel: "allgather")
    backward_before: str = ""  # collective before its backward (sequence parallel: "allgather")
    sequence: bool = False     # sequence parallel: it runs on 1/tp of the tokens


def layer_roles(model: Model, sp: bool = False) -> list[LayerRole]:
    """Each layer's role under tensor parallelism; with `sp`, Megatron's sequence
    parallelism in every gap of per-token layers between two regions."""
    roles = _tensor_roles(model)
    return _sequence_parallel(model, roles) if sp else roles


def _tensor_roles(model: Model) -> list[LayerRole]:
    kinds = [layer.kind for layer in model.layers]
    sharded = [False] * len(kinds)
    fwd = [""] * len(kinds)
    bwd = [""] * len(kinds)
    opener = -1  # index of the Dense that opened the current column-parallel region
    for i, kind in enumerate(kinds):
        if kind in ("attention", "moe"):  # a region by itself; moe splits each expert's ffn
            _close_open(opener, i - 1, sharded, fwd, bwd)
            opener = -1
            sharded[i], fwd[i], bwd[i] = True, "allreduce", "allreduce"
        elif kind == "dense" and opener < 0:
            opener, sharded[i] = i, True
        elif kind == "dense":
            sharded[i], fwd[i], bwd[opener] = True, "allreduce", "allreduce"
            opener = -1
        elif opener >= 0 and kind in ELEMENTWISE:
            sharded[i] = True
        elif opener >= 0:
            _close_open(opener, i - 1, sharded, fwd, bwd)
            opener = -1
    _close_open(opener, len(kinds) - 1, sharded, fwd, bwd)
    return [LayerRole(*r) for r in zip(sharded, fwd, bwd, strict=True)]


def _sequence_parallel(model: Model, roles: list[LayerRole]) -> list[LayerRole]:
    """Replace each closer's all-reduce by a reduce-scatter and the next opener's by an
    all-gather before it, where every layer between them is per-token."""
    out = list(roles)
    closer = -1  # the last layer whose forward all-reduce closed a region
    for i, (layer, role) in enumerate(zip(model.layers, roles, strict=True)):
        opens = role.sharded and role.backward_after == "allreduce"  # attention, moe, column
        if closer >= 0 and opens:
            out[closer] = replace(out[closer], forward_after="reducescatter",
                                  backward_before="allgather")
            out[i] = replace(out[i], forward_before="allgather", backward_after="reducescatter")
            for j in range(closer + 1, i):
                out[j] = replace(out[j], sequence=True)
        if role.forward_after == "allreduce":
            closer = i
        elif closer >= 0 and (role.sharded or layer.kind not in PER_TOKEN):
            closer = -1  # a whole-sequence layer or an unclosed region: no gap
    return out


def _close_open(opener: int, last: int, sharded: list[bool], fwd: list[str], bwd: list[str]) -> None:
    """An open column-parallel region ends: gather its output; reduce the opener's
    input gradient."""
    if opener >= 0:
        fwd[last] = "allgather"
        bwd[opener] = "allreduce"


@dataclass(frozen=True, slots=True)
class Split:
    """What tensor parallelism divides in one layer: `count` `what` (heads of an
    attention layer, a column-parallel Dense's output units, a row-parallel Dense's
    input features)."""

    layer: str
    what: str
    count: int


def splits(model: Model) -> list[Split]:
    """Every count a tensor-parallel degree must divide, in layer order. Elementwise
    layers of a region have the width of the Dense that opened it, so they add none."""
    out = []
    for layer, role in zip(model.layers, layer_roles(model), strict=True):
        if not role.sharded:
            continue
        if layer.kind == "attention":
            op = layer.op
            out.append(Split(layer.name, "heads", op.heads))  # type: ignore[attr-defined]
            if op.groups != op.heads:  # type: ignore[attr-defined]
                out.append(Split(layer.name, "key/value heads", op.groups))  # type: ignore[attr-defined]
        elif layer.kind == "moe":
            out.append(Split(layer.name, "expert_ffn", layer.op.expert_ffn))  # type: ignore[attr-defined]
        elif layer.kind == "dense" and role.forward_after == "allreduce":  # row-parallel
            out.append(Split(layer.name, "input features", layer.input_shape[-1]))
        elif layer.kind == "dense":                                          # column-parallel
            out.append(Split(layer.name, "units", layer.output_shape[-1]))
    return out


def split_gcd(model: Model) -> int:
    """The greatest common divisor of every split count: a tp is possible exactly when
    it divides this (0 when nothing is split, which every tp divides)."""
    return math.gcd(*(s.count for s in splits(model)))


class TensorSplitError(ValueError):
    """A tp that splits some layer into unequal parts (1.5 heads per rank)."""

    def __init__(self, model: Model, tp: int) -> None:
        found = splits(model)
        heads = sorted({s.count for s in found if s.what.endswith("heads")})
        widths = sorted({s.count for s in found if not s.what.endswith("heads")})
        parts = ([f"the attention heads ({', '.join(map(str, heads))})"] if heads else []) + (
            [f"every split dense width ({', '.join(map(str, widths))})"] if widths else [])
        self.tp = tp
        self.expected = f"a tp that divides {' and '.join(parts)}"
        bad = next(s for s in found if s.count % tp)
        self.hint = f"layer {bad.layer}: {bad.count} {bad.what} do not split into {tp} equal parts"
        super().__init__(f"tp {tp}: expected {self.expected} ({self.hint})")


def check_split(model: Model, tp: int) -> None:
    """Raise TensorSplitError unless tp divides every count tensor parallelism splits."""
    if split_gcd(model) % tp:
        raise TensorSplitError(model, tp)


class SequenceSplitError(ValueError):
    """Sequence parallelism with a tp that splits the tokens unevenly."""

    def __init__(self, layer: str, tokens: int, tp: int) -> None:
        self.tp = tp
        self.expected = f"a tp that divides the sequence ({tokens} tokens) with sp = true"
        self.hint = f"layer {layer}: {tokens} tokens do not split into {tp} equal parts"
        super().__init__(f"tp {tp}: expected {self.expected} ({self.hint})")


def check_sequence(model: Model, roles: list[LayerRole], tp: int) -> None:
    """Raise SequenceSplitError unless tp divides the tokens of every layer sequence
    parallelism splits (Megatron-LM asserts seq_length % tp == 0 likewise)."""
    for layer, role in zip(model.layers, roles, strict=True):
        tokens = layer.input_shape[0]
        if role.sequence and tokens % tp:
            raise SequenceSplitError(layer.name, tokens, tp)
