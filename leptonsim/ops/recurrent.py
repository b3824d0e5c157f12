"""Recurrent layers over a sequence: LSTM and GRU, input (T, features).

Parameter counts follow Keras: LSTM 4 * (h * (i + h) + h) - one bias per gate (PyTorch
keeps two, b_ih and b_hh, adding 4h); GRU with reset_after=True (the Keras 2+ default
and cuDNN's form) 3 * (h * (i + h) + 2h) - input and recurrent bias per gate.

Per time step and sample, each gate matmul costs 2 * h * (i + h) FLOPs in forward, in
backward_data (dx and dh_prev together) and in backward_weights; biases add one FLOP
per gate unit in forward and backward_weights. Pointwise gate math per hidden unit,
with sigmoid = 6 and tanh = 4 FLOPs (see activation.py):
    LSTM forward 3 sigmoid + 2 tanh + c = f*c + i*g (3) + h = o*tanh(c) (1) = 30,
         backward about 20 (the chain rule through four gates and the cell)
    GRU  forward 2 sigmoid + tanh + r*(Uh + b) (1) + h = z*h + (1 - z)*n (3) = 20,
         backward about 14
Forward saves what backward needs: the hidden sequence, gate activations and (LSTM)
cells; backward_data writes the gate gradients that backward_weights then reads.

As GEMMs (the cuDNN scheme: Appleyard, Kocisky & Blunsom, "Optimizing Performance of
Recurrent Neural Networks on GPUs", arXiv:1604.01946, 2016, Section 3), with b samples,
T steps and G gates: forward projects every step's input at once, (bT, Gh, i), then
runs T dependent (b, Gh, h) products, one launch per step followed by its pointwise
gate kernel; backward_data runs T (b, h, Gh) products for dh (with their pointwise
kernels) and one (bT, i, Gh) for dx; backward_weights is one (i + h, Gh, bT) product.
Recurrent layers are replicated under tensor parallelism (no split).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from leptonsim.ops.activation import SIGMOID_FLOPS, TANH_FLOPS
from leptonsim.ops.base import Cost, Gemm, Op, Shape, check_positive, check_rank


@dataclass(frozen=True)
class _Recurrent(Op):
    units: int
    return_sequences: bool = True

    gates: ClassVar[int]
    biases_per_gate: ClassVar[int]
    forward_pointwise: ClassVar[int]
    backward_pointwise: ClassVar[int]
    saved_per_unit: ClassVar[int]  # values saved per hidden unit and step, beyond h

    def __post_init__(self) -> None:
        check_positive(type(self).__name__, units=self.units)

    def output_shape(self, input_shape: Shape) -> Shape:
        check_rank(type(self).__name__, input_shape, 2, "(time, features)")
        return (input_shape[0], self.units) if self.return_sequences else (self.units,)

    def _matrices(self, x: Shape) -> int:
        return self.gates * self.units * (x[1] + self.units)

    def params(self, input_shape: Shape) -> int:
        self.output_shape(input_shape)
        return self._matrices(input_shape) + self.gates * self.biases_per_gate * self.units

    def _steps(self, x: Shape, batch: int) -> int:
        return batch * x[0]

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        steps, h = self._steps(x, batch), self.units
        bias = self.gates * self.biases_per_gate * h
        flops = steps * (2 * self._matrices(x) + bias + h * self.forward_pointwise)
        # reads x; writes the hidden sequence and the saved gate state
        words = steps * (x[1] + h + h * self.saved_per_unit) + self.params(x)
        gates, t = self.gates * h, x[0]
        gemms = (Gemm(steps, gates, x[1]), Gemm(batch, gates, h, count=t))
        return Cost(flops, float(words * dtype_bytes), gemms=gemms, kernels=1 + 2 * t)

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        steps, h = self._steps(x, batch), self.units
        flops = steps * (2 * self._matrices(x) + h * self.backward_pointwise)
        # reads dy and saved state; writes dx and the gate gradients
        words = steps * (h + h * self.saved_per_unit + x[1] + self.gates * h)
        gates, t = self.gates * h, x[0]
        gemms = (Gemm(batch, h, gates, count=t), Gemm(steps, x[1], gates))
        return Cost(flops, float((words + self._matrices(x)) * dtype_bytes), gemms=gemms, kernels=1 + 2 * t)

    def _backward_weights(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        steps, h = self._steps(x, batch), self.units
        flops = steps * (2 * self._matrices(x) + self.gates * h)
        # reads x, the hidden sequence and the gate gradients; writes dW
        words = steps * (x[1] + h + self.gates * h) + self.params(x)
        gemm = Gemm(x[1] + h, self.gates * h, steps)
        return Cost(flops, float(words * dtype_bytes), gemms=(gemm,), kernels=2)


@dataclass(frozen=True)
class LSTM(_Recurrent):
    """LSTM(units, return_sequences); Keras parameter convention (one bias)."""

    kind: ClassVar[str] = "lstm"
    gates: ClassVar[int] = 4
    biases_per_gate: ClassVar[int] = 1
    forward_pointwise: ClassVar[int] = 3 * SIGMOID_FLOPS + 2 * TANH_FLOPS + 4
    backward_pointwise: ClassVar[int] = 20
    saved_per_unit: ClassVar[int] = 5  # four gates and the cell


@dataclass(frozen=True)
class GRU(_Recurrent):
    """GRU(units, return_sequences); Keras reset_after=True convention (two biases)."""

    kind: ClassVar[str] = "gru"
    gates: ClassVar[int] = 3
    biases_per_gate: ClassVar[int] = 2
    forward_pointwise: ClassVar[int] = 2 * SIGMOID_FLOPS + TANH_FLOPS + 4
    backward_pointwise: ClassVar[int] = 14
    saved_per_unit: ClassVar[int] = 4  # three gates and U_h h
