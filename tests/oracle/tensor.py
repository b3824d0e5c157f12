"""Tensor parallelism executed for real: Megatron shards of real weights, rank by rank.

`leptonsim.parallel.tensor.layer_roles` says which layers are split and where a
tensor-parallel group talks; this module follows it with real arrays. Every rank
runs the whole layer list in lockstep (SPMD, the ranks simulated in one process):
- column-parallel Dense (a region's opener): rank r holds kernel columns and bias
  entries r*u/tp .. (r+1)*u/tp and produces that slice of the output;
- elementwise layers inside a region run on the rank's slice;
- row-parallel Dense (the region's closer): rank r holds the matching kernel rows and
  produces a partial sum; the forward all-reduce sums the partials and the bias,
  replicated, is added once after it;
- attention: rank r owns heads r*a/tp .. (r+1)*a/tp: those columns of each of Q, K and
  V (and their biases) and those rows of the output projection, whose bias is added
  after the forward all-reduce;
- a region closed by an unsplittable layer all-gathers its output (backward: a slice);
- the backward all-reduce sums the opener's partial input gradients;
- everything else is replicated: each rank computes it whole.
Gradients of split weights are gathered back into full shapes; replicated ones
(norms, row-parallel biases) are the same on every rank and taken from rank 0.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import numpy as np

from leptonsim.kernels import INPUT, LABELS, Array, ModelParams, Network, Params, kernel_for
from leptonsim.models import Layer, Model
from leptonsim.ops import Dense, MultiHeadSelfAttention, Op
from leptonsim.parallel.tensor import LayerRole, layer_roles
from tests.oracle.common import AllReduce, StepResult, allreduce_sum

Mode = Literal["replicated", "column", "row", "attention", "split"]
BIAS_AFTER_REDUCE = {"row": "bias", "attention": "out_bias"}


def layer_modes(model: Model) -> list[Mode]:
    """How each layer is split, from layer_roles: replicated, column, row, attention, split."""
    modes: list[Mode] = []
    for layer, role in zip(model.layers, layer_roles(model), strict=True):
        if not role.sharded:
            modes.append("replicated")
        elif layer.kind == "attention":
            modes.append("attention")
        elif layer.kind == "dense":
            modes.append("row" if role.forward_after == "allreduce" else "column")
        else:
            modes.append("split")
    return modes


def check_tp(model: Model, tp: int) -> None:
    """ValueError unless every split dimension divides by tp."""
    if not isinstance(tp, int) or tp < 1:
        raise ValueError(f"tp must be a positive integer, got {tp!r}")
    for layer, mode in zip(model.layers, layer_modes(model), strict=True):
        op = layer.op
        if isinstance(op, Dense) and op.tied and mode != "replicated":
            raise ValueError(f"tensor parallel: layer {layer.name!r} is a tied Dense; not supported")
        size = {"column": getattr(op, "units", 0), "row": layer.input_shape[-1],
                "attention": getattr(op, "heads", 0)}.get(mode, 0)
        if size % tp:
            raise ValueError(f"tensor parallel: layer {layer.name!r} splits {size} ways "
                             f"({mode}), not divisible by tp={tp}")


def _part(n: int, tp: int, r: int) -> slice:
    return slice(r * n // tp, (r + 1) * n // tp)


def _qkv_index(h: int, tp: int, r: int) -> Array:
    """Rank r's columns of the fused (H, 3H) QKV matrix: its heads of Q, of K, of V."""
    own = np.arange(h)[_part(h, tp, r)]
    return np.concatenate([own + j * h for j in range(3)])


def shard_layer(mode: Mode, params: Params, tp: int, r: int) -> Params:
    """Rank r's parameters of one layer."""
    p = dict(params)
    if mode == "column":
        cols = _part(p["kernel"].shape[1], tp, r)
        p["kernel"] = p["kernel"][:, cols]
        if "bias" in p:
            p["bias"] = p["bias"][cols]
    elif mode == "row":
        p["kernel"] = p["kernel"][_part(p["kernel"].shape[0], tp, r)]
    elif mode == "attention":
        h = p["out_kernel"].shape[0]
        idx = _qkv_index(h, tp, r)
        p["qkv_kernel"] = p["qkv_kernel"][:, idx]
        if "qkv_bias" in p:
            p["qkv_bias"] = p["qkv_bias"][idx]
        p["out_kernel"] = p["out_kernel"][_part(h, tp, r)]
    return p


def shard_params(net: Network, params: ModelParams, tp: int) -> list[ModelParams]:
    """Each rank's parameters of every layer."""
    check_tp(net.model, tp)
    modes = dict(zip((layer.name for layer in net.model.layers), layer_modes(net.model), strict=True))
    return [{name: shard_layer(modes[name], p, tp, r) for name, p in params.items()} for r in range(tp)]


def gather_layer(mode: Mode, ranks: list[Params]) -> Params:
    """A layer's full-shape gradients from each rank's (the inverse of shard_layer)."""
    full = dict(ranks[0])  # replicated entries: identical on every rank
    if mode == "column":
        full["kernel"] = np.concatenate([g["kernel"] for g in ranks], axis=1)
        if "bias" in full:
            full["bias"] = np.concatenate([g["bias"] for g in ranks])
    elif mode == "row":
        full["kernel"] = np.concatenate([g["kernel"] for g in ranks], axis=0)
    elif mode == "attention":
        for name, axis in (("qkv_kernel", 1), ("qkv_bias", 0)):
            if name in full:
                thirds = [np.split(g[name], 3, axis=axis) for g in ranks]
                full[name] = np.concatenate([t[j] for j in range(3) for t in thirds], axis=axis)
        full["out_kernel"] = np.concatenate([g["out_kernel"] for g in ranks], axis=0)
    return full


def local_op(op: Op, mode: Mode, tp: int, hidden: int = 0) -> Op:
    """The op one rank runs: fewer units or heads (of the same size, on the same `hidden`
    input); a row-parallel Dense without its bias."""
    if mode == "column" and isinstance(op, Dense):
        return replace(op, units=op.units // tp)
    if mode == "row" and isinstance(op, Dense):
        return replace(op, use_bias=False)
    if mode == "attention" and isinstance(op, MultiHeadSelfAttention):
        return replace(op, heads=op.heads // tp, head_dim=op.head_dim or hidden // op.heads,
                       kv_heads=op.kv_heads // tp)
    return op


def _kernel_params(mode: Mode, p: Params) -> Params:
    """The rank's parameters minus a bias that is added after the all-reduce."""
    key = BIAS_AFTER_REDUCE.get(mode)
    return {k: v for k, v in p.items() if k != key}


def tensor_parallel_step(net: Network, params: ModelParams, x: Array, labels: Array | None = None,
                         dy: Array | None = None, tp: int = 2,
                         allreduce: AllReduce = allreduce_sum) -> StepResult:
    """Forward and backward split over tp simulated ranks; gradients gathered to full shapes.

    `allreduce` performs both the forward and the backward all-reduces (a broken one
    makes a negative control).
    """
    shards = shard_params(net, params, tp)
    plan = list(zip(net.model.layers, net.sources, layer_modes(net.model), layer_roles(net.model),
                    strict=True))
    tensors: list[dict[str, Any]] = [{INPUT: x, LABELS: labels} for _ in range(tp)]
    caches: list[dict[str, Any]] = [{} for _ in range(tp)]
    for layer, reads, mode, role in plan:
        outs = [_rank_forward(layer, mode, tp, shards[r].get(layer.name, {}), tensors[r], reads,
                              caches[r]) for r in range(tp)]
        for r, y in enumerate(_forward_collective(role, mode, outs, shards, layer.name, allreduce)):
            tensors[r][layer.name] = y
    last = net.model.layers[-1].name
    out = tensors[0][last]
    pending: list[dict[str, Array]] = [{last: np.ones_like(out) if dy is None else dy} for _ in range(tp)]
    grads: list[ModelParams] = [{} for _ in range(tp)]
    for layer, reads, mode, role in reversed(plan):
        if layer.name not in pending[0]:
            continue  # nothing downstream used this output
        douts = [pending[r].pop(layer.name) for r in range(tp)]
        if role.forward_after == "allgather":  # the gather's backward: each rank its slice
            douts = [np.split(d, tp, axis=-1)[r] for r, d in enumerate(douts)]
        dxs = [_rank_backward(layer, mode, tp, shards[r].get(layer.name, {}), caches[r], douts[r],
                              grads[r]) for r in range(tp)]
        if role.backward_after == "allreduce":
            dxs = _reduce_input_grads(dxs, allreduce)
        for r in range(tp):
            _accumulate(pending[r], reads, dxs[r])
    modes = dict(zip((layer.name for layer in net.model.layers), layer_modes(net.model), strict=True))
    full = {name: gather_layer(modes[name], [g[name] for g in grads]) for name in grads[0]}
    return StepResult(out, pending[0].get(INPUT), full)


def _rank_forward(layer: Layer, mode: Mode, tp: int, p: Params, tensors: dict[str, Any],
                  reads: tuple[str, ...], caches: dict[str, Any]) -> Array:
    args = tuple(tensors[s] for s in reads)
    op = local_op(layer.op, mode, tp, layer.input_shape[-1])
    y, caches[layer.name] = kernel_for(op).forward(op, _kernel_params(mode, p),
                                                   args[0] if len(args) == 1 else args)
    return y


def _forward_collective(role: LayerRole, mode: Mode, outs: list[Array], shards: list[ModelParams],
                        name: str, allreduce: AllReduce) -> list[Array]:
    if role.forward_after == "allreduce":
        key = BIAS_AFTER_REDUCE[mode]
        reduced = allreduce(outs)
        biases = [s.get(name, {}).get(key) for s in shards]  # replicated: one per rank
        return [y if b is None else y + b for y, b in zip(reduced, biases, strict=True)]
    if role.forward_after == "allgather":
        return [np.concatenate(outs, axis=-1)] * len(outs)
    return outs


def _rank_backward(layer: Layer, mode: Mode, tp: int, p: Params, caches: dict[str, Any], dout: Array,
                   grads: ModelParams) -> tuple[Array | None, ...]:
    op = local_op(layer.op, mode, tp, layer.input_shape[-1])
    dx, g = kernel_for(op).backward(op, _kernel_params(mode, p), caches[layer.name], dout)
    key = BIAS_AFTER_REDUCE.get(mode)
    if key is not None and key in p:  # the bias added after the reduce sees the whole dy
        g[key] = dout.reshape(-1, dout.shape[-1]).sum(axis=0)
    if g:
        grads[layer.name] = g
    return dx if isinstance(dx, tuple) else (dx,)


def _reduce_input_grads(dxs: list[tuple[Array | None, ...]],
                        allreduce: AllReduce) -> list[tuple[Array | None, ...]]:
    firsts = [d[0] for d in dxs]
    parts = [d for d in firsts if d is not None]
    if len(parts) != len(firsts):
        raise ValueError("a backward all-reduce needs every rank's input gradient")
    return [(d,) for d in allreduce(parts)]


def _accumulate(pending: dict[str, Array], reads: tuple[str, ...], dxs: tuple[Array | None, ...]) -> None:
    for src, d in zip(reads, dxs, strict=True):
        if d is not None:
            pending[src] = pending[src] + d if src in pending else d
