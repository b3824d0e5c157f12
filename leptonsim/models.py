"""Models as ordered layer lists, and a Keras-summary-like table of them.

A Model is a name, an input shape and its layers in execution order. Each Layer is a
named op with the input shape it sees, recorded explicitly, so non-sequential
networks fit too: a residual branch's layers follow one another, and the merge is an
"add" layer. Shapes exclude the batch dimension. Builders live in leptonsim.zoo.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from leptonsim.ops.base import ZERO, Cost, Op, Phase, Shape


@dataclass(frozen=True)
class Layer:
    """A named op applied to an input of a given per-sample shape. `input_grad`: its
    backward computes the gradient of its input (False for the layer that reads the
    model's input, data that needs no gradient: autograd skips that dgrad)."""

    name: str
    op: Op
    input_shape: Shape
    input_grad: bool = True

    def __post_init__(self) -> None:
        self.op.output_shape(self.input_shape)  # an impossible shape fails here

    @property
    def kind(self) -> str:
        return self.op.kind

    @property
    def output_shape(self) -> Shape:
        return self.op.output_shape(self.input_shape)

    @property
    def params(self) -> int:
        return self.op.params(self.input_shape)

    @property
    def non_trainable_params(self) -> int:
        return self.op.non_trainable_params(self.input_shape)

    def cost(self, batch: int, phase: Phase, dtype_bytes: int = 4) -> Cost:
        if phase == "backward_data" and not self.input_grad:
            return ZERO
        return self.op.cost(self.input_shape, batch, phase, dtype_bytes)


@dataclass(frozen=True)
class LayerRow:
    """One row of a layer table: what a Keras summary shows, plus forward FLOPs."""

    name: str
    kind: str
    output_shape: Shape
    params: int
    forward_flops: float  # per sample


@dataclass(frozen=True)
class Model:
    """A network: its name, per-sample input shape and layers in execution order."""

    name: str
    input_shape: Shape
    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError(f"model {self.name!r} has no layers")
        seen: set[str] = set()
        for layer in self.layers:
            if layer.name in seen:
                raise ValueError(f"model {self.name!r}: duplicate layer name {layer.name!r}")
            seen.add(layer.name)
        first = self.layers[0]
        if first.input_grad:  # the model's input is data: no gradient flows into it
            object.__setattr__(self, "layers", (replace(first, input_grad=False), *self.layers[1:]))

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].output_shape

    def params(self) -> int:
        """Trainable parameters."""
        return sum(layer.params for layer in self.layers)

    def non_trainable_params(self) -> int:
        return sum(layer.non_trainable_params for layer in self.layers)

    def total_params(self) -> int:
        """Trainable plus non-trainable, as Keras' "Total params"."""
        return self.params() + self.non_trainable_params()

    def layer_table(self) -> tuple[LayerRow, ...]:
        return tuple(
            LayerRow(
                layer.name,
                layer.kind,
                layer.output_shape,
                layer.params,
                layer.cost(1, "forward").flops,
            )
            for layer in self.layers
        )

    def total_cost(self, batch: int, phase: Phase, dtype_bytes: int = 4) -> Cost:
        """Sum over layers of one phase's cost for a batch."""
        return _sum(layer.cost(batch, phase, dtype_bytes) for layer in self.layers)

    def cost_by_kind(self, batch: int, phase: Phase, dtype_bytes: int = 4) -> dict[str, Cost]:
        """One phase's cost grouped by op kind, in order of first appearance."""
        totals: dict[str, Cost] = {}
        for layer in self.layers:
            totals[layer.kind] = totals.get(layer.kind, ZERO) + layer.cost(
                batch, phase, dtype_bytes
            )
        return totals

    def step_cost(self, batch: int, optimizer: Phase = "update_adam", dtype_bytes: int = 4) -> Cost:
        """A whole training step: forward, both backward passes and one update."""
        if optimizer not in ("update_sgd", "update_adam"):
            raise ValueError(f"optimizer must be 'update_sgd' or 'update_adam', got {optimizer!r}")
        phases: tuple[Phase, ...] = ("forward", "backward_data", "backward_weights", optimizer)
        return _sum(self.total_cost(batch, p, dtype_bytes) for p in phases)


def _sum(costs: Iterable[Cost]) -> Cost:
    total = ZERO
    for cost in costs:
        total = total + cost
    return total


@dataclass
class LayerStack:
    """Builder for a Model: appends layers, tracking the current shape.

    Pass input_shape to add() for a layer that does not consume the previous output
    (a residual shortcut, one of several embedding lookups).
    """

    name: str
    input_shape: Shape
    layers: list[Layer] = field(default_factory=list)
    shape: Shape = ()

    def __post_init__(self) -> None:
        self.shape = self.input_shape

    def add(self, name: str, op: Op, input_shape: Shape | None = None) -> Shape:
        layer = Layer(name, op, self.shape if input_shape is None else input_shape)
        self.layers.append(layer)
        self.shape = layer.output_shape
        return self.shape

    def build(self) -> Model:
        return Model(self.name, self.input_shape, tuple(self.layers))


def _shape(shape: Shape) -> str:
    return str(tuple(shape))


def format_layer_table(model: Model) -> str:
    """A Keras-summary-like table: layer, kind, output shape, params, GFLOPs/sample."""
    header = ("Layer", "Kind", "Output shape", "Params", "Fwd GFLOPs/sample")
    rows = [
        (r.name, r.kind, _shape(r.output_shape), f"{r.params:,}", f"{r.forward_flops / 1e9:.6f}")
        for r in model.layer_table()
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    right = (False, False, False, True, True)

    def line(cells: tuple[str, ...]) -> str:
        parts = (
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        )
        return "  ".join(parts).rstrip()

    rule = "-" * len(line(header))
    title, *totals = format_totals(model).splitlines()
    return "\n".join([title, rule, line(header), rule, *(line(row) for row in rows), rule,
                      *totals])


def format_totals(model: Model) -> str:
    """The table's title and closing lines: parameters and forward FLOPs per sample."""
    forward = model.total_cost(1, "forward").flops
    return "\n".join([
        f'Model: "{model.name}"  input {_shape(model.input_shape)}',
        f"Total params: {model.total_params():,}",
        f"Trainable params: {model.params():,}",
        f"Non-trainable params: {model.non_trainable_params():,}",
        f"Forward GFLOPs/sample: {forward / 1e9:.6f}",
    ])
