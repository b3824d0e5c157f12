"""Running a Model with the kernels: forward, backward and one training step.

A Network is a Model plus its wiring: the tensors each layer reads, by name. A
tensor is "input" (the batch), "labels", or a layer's name (its output). By default
a layer reads the previous layer's output, the first layer reads "input", and a loss
also reads "labels"; a layer reading anything else (a residual Add, a shortcut
branch) names its sources. Wiring and shapes are checked once, in `network`; the
runner then trusts them. Backward walks the layers in reverse, summing gradients
where a tensor feeds several layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from leptonsim.errors import did_you_mean
from leptonsim.kernels.base import Array, Cache
from leptonsim.kernels.optim import ModelParams, Optimizer, update
from leptonsim.kernels.registry import LOSSES, init_params, kernel_for
from leptonsim.models import Layer, Model
from leptonsim.ops import Add
from leptonsim.ops.base import Shape

INPUT, LABELS = "input", "labels"


@dataclass(frozen=True)
class Network:
    """A model and, per layer in order, the names of the tensors it reads."""

    model: Model
    sources: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Tape:
    """What a forward pass leaves for the backward: the output and each layer's cache."""

    output: Array
    caches: dict[str, Cache]


def network(model: Model, sources: Mapping[str, Sequence[str]] | None = None) -> Network:
    """Wire `model`; `sources` maps a layer name to the tensors it reads (labels implied)."""
    sources = dict(sources or {})
    names = [layer.name for layer in model.layers]
    for name in sources:
        if name not in names:
            hint = did_you_mean(name, names)
            hint = f"; {hint}" if hint else ""
            raise ValueError(f"network {model.name!r}: sources name unknown layer {name!r}{hint}")
    shapes: dict[str, Shape] = {INPUT: model.input_shape}
    wiring = []
    previous = INPUT
    for layer in model.layers:
        reads = tuple(sources.get(layer.name, (previous,)))
        _check_sources(model.name, layer, reads, shapes)
        kernel_for(layer.op)  # an op without a kernel fails here, not mid-run
        wiring.append((*reads, LABELS) if isinstance(layer.op, LOSSES) else reads)
        shapes[layer.name] = layer.output_shape
        previous = layer.name
    return Network(model, tuple(wiring))


def _check_sources(model: str, layer: Layer, reads: tuple[str, ...], shapes: dict[str, Shape]) -> None:
    where = f"network {model!r}, layer {layer.name!r}"
    arity = layer.op.arity if isinstance(layer.op, Add) else 1
    if len(reads) != arity:
        raise ValueError(f"{where}: expected {arity} source(s), got {list(reads)}")
    for src in reads:
        if src not in shapes:
            raise ValueError(f"{where}: source {src!r} is not 'input' or an earlier layer")
        if shapes[src] != layer.input_shape:
            raise ValueError(
                f"{where}: expects input {layer.input_shape}, but {src!r} is {shapes[src]}"
            )


def _as_network(net: Network | Model) -> Network:
    return net if isinstance(net, Network) else network(net)


def init_model_params(
    model: Model, rng: np.random.Generator, dtype: DTypeLike = np.float32
) -> ModelParams:
    """Parameters of every layer that has some, by layer name."""
    params = {layer.name: init_params(layer.op, layer.input_shape, rng, dtype) for layer in model.layers}
    return {name: p for name, p in params.items() if p}


def run_forward(
    net: Network | Model, params: ModelParams, x: Array, labels: Array | None = None
) -> Tape:
    net = _as_network(net)
    tensors: dict[str, Any] = {INPUT: x, LABELS: labels}
    caches: dict[str, Cache] = {}
    for layer, reads in zip(net.model.layers, net.sources, strict=True):
        if LABELS in reads and labels is None:
            raise ValueError(f"layer {layer.name!r} is a loss: pass labels to run_forward")
        args = tuple(tensors[s] for s in reads)
        x_in = args[0] if len(args) == 1 else args
        y, caches[layer.name] = kernel_for(layer.op).forward(layer.op, params.get(layer.name, {}), x_in)
        tensors[layer.name] = y
    return Tape(tensors[net.model.layers[-1].name], caches)


def run_backward(
    net: Network | Model, params: ModelParams, tape: Tape, dy: Array | None = None
) -> tuple[Array | None, ModelParams]:
    """(gradient w.r.t. the input, parameter gradients); dy defaults to 1 (a loss)."""
    net = _as_network(net)
    last = net.model.layers[-1].name
    pending: dict[str, Array] = {last: np.ones_like(tape.output) if dy is None else dy}
    grads: ModelParams = {}
    for layer, reads in zip(reversed(net.model.layers), reversed(net.sources), strict=True):
        dout = pending.pop(layer.name, None)
        if dout is None:
            continue  # nothing downstream used this output
        kernel = kernel_for(layer.op)
        dx, layer_grads = kernel.backward(
            layer.op, params.get(layer.name, {}), tape.caches[layer.name], dout
        )
        if layer_grads:
            grads[layer.name] = layer_grads
        for src, d in zip(reads, dx if isinstance(dx, tuple) else (dx,), strict=True):
            if d is not None:
                pending[src] = pending[src] + d if src in pending else d
    return pending.get(INPUT), grads


def train_step(
    net: Network | Model,
    params: ModelParams,
    opt_state: dict[str, Any],
    x: Array,
    y: Array,
    optimizer: Optimizer,
    lr: float,
) -> float:
    """Forward, backward and one update of `params` (in place); returns the loss before it."""
    net = _as_network(net)
    tape = run_forward(net, params, x, y)
    _, grads = run_backward(net, params, tape)
    update(params, grads, opt_state, optimizer, lr)
    return float(tape.output)
