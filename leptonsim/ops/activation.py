"""Elementwise activations: ReLU, GELU, Tanh, Sigmoid, SiLU; and the gated SwiGLU.

Each reads one tensor and writes one of the same shape. Backward reads dy and the
tensor the derivative needs (x for ReLU and GELU, the saved output for Tanh and
Sigmoid) and writes dx. Per-element FLOPs, with T = TRANSCENDENTAL_FLOPS:
    ReLU    max(x, 0): 1                    backward: mask dy: 1
    Sigmoid 1 / (1 + exp(-x)): T + 2        backward: dy * s * (1 - s): 3
    Tanh    tanh(x): T                      backward: dy * (1 - t^2): 3
    GELU    tanh approximation
            0.5x(1 + tanh(c(x + 0.044715x^3))): T + 8
                                            backward: recompute tanh, chain: T + 12
    SiLU    x * sigmoid(x): T + 3           backward: recompute s, dy * s(1 + x(1 - s)): T + 6
            (Elfwing et al., "Sigmoid-Weighted Linear Units", Neural Networks 2018; the
            gate of SwiGLU, Shazeer 2020)
    SwiGLU  silu(a) * b over the two halves [a | b] of its input (Shazeer, "GLU
            Variants Improve Transformer", 2020; Llama's MLP, whose gate and up
            projections are one GEMM, as Megatron-LM fuses them): per output element
            T + 4, reading 2 and writing 1; backward recomputes silu(a) and writes
            da = dy b silu'(a), db = dy silu(a): T + 9, reading 3 and writing 2.

`fused = True`: the activation runs in the epilogue of the GEMM that produced its
input (bias + GeLU after a Dense: cuBLASLt's GELU_AUX_BIAS epilogue, which
Transformer Engine's fused MLP uses): no kernel of its own, and its input is never
read back from memory (the GEMM still writes it, for the backward); only the output
is written. The backward is unchanged: it reads dy and the saved input, writes dx.

`grad_fused = True`: the backward runs inside the backward kernels of the op before
it (a BatchNorm with `relu_grad`, which reads this op's output for the mask): no kernel
and no bytes of its own; its FLOPs stay.

For the backward (Op.saved_bytes) GELU and SiLU keep their input; ReLU, Tanh and
Sigmoid their output, from which the derivative follows (PyTorch's threshold_backward
reads a ReLU's result, which lets torchvision's ReLU(inplace=True) overwrite its
input): a tensor the next op (a convolution, a Dense) keeps as its input anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from leptonsim.ops.base import (
    TRANSCENDENTAL_FLOPS,
    Cost,
    Op,
    Saved,
    Shape,
    ShapeError,
    check_min_rank,
    elementwise,
    numel,
)

T = TRANSCENDENTAL_FLOPS
SIGMOID_FLOPS = T + 2
TANH_FLOPS = T


@dataclass(frozen=True)
class _Activation(Op):
    fused: bool = False
    grad_fused: bool = False

    forward_flops: ClassVar[int]
    backward_flops: ClassVar[int]

    def output_shape(self, input_shape: Shape) -> Shape:
        check_min_rank(type(self).__name__, input_shape, 1, "(...)")
        return input_shape

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        if self.fused:  # the producer's epilogue: the output written, nothing read back
            return replace(elementwise(batch * numel(x), self.forward_flops, 1, dtype_bytes),
                           kernels=0)
        return elementwise(batch * numel(x), self.forward_flops, 2, dtype_bytes)

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        if self.grad_fused:  # in the producer's backward kernels, which read what it needs
            return Cost(float(batch * numel(x) * self.backward_flops), kernels=0)
        return elementwise(batch * numel(x), self.backward_flops, 3, dtype_bytes)


@dataclass(frozen=True)
class _KeepsOutput(_Activation):
    def saved_bytes(self, input_shape: Shape, batch: int, dtype_bytes: int) -> Saved:
        self.output_shape(input_shape)
        return Saved(output=float(batch * numel(input_shape) * dtype_bytes))


@dataclass(frozen=True)
class ReLU(_KeepsOutput):
    kind: ClassVar[str] = "relu"
    forward_flops: ClassVar[int] = 1
    backward_flops: ClassVar[int] = 1


@dataclass(frozen=True)
class Sigmoid(_KeepsOutput):
    kind: ClassVar[str] = "sigmoid"
    forward_flops: ClassVar[int] = SIGMOID_FLOPS
    backward_flops: ClassVar[int] = 3


@dataclass(frozen=True)
class Tanh(_KeepsOutput):
    kind: ClassVar[str] = "tanh"
    forward_flops: ClassVar[int] = TANH_FLOPS
    backward_flops: ClassVar[int] = 3


@dataclass(frozen=True)
class GELU(_Activation):
    kind: ClassVar[str] = "gelu"
    forward_flops: ClassVar[int] = T + 8
    backward_flops: ClassVar[int] = T + 12


@dataclass(frozen=True)
class SiLU(_Activation):
    kind: ClassVar[str] = "silu"
    forward_flops: ClassVar[int] = SIGMOID_FLOPS + 1
    backward_flops: ClassVar[int] = SIGMOID_FLOPS + 4


@dataclass(frozen=True)
class SwiGLU(Op):
    """SwiGLU: (..., 2F) -> (..., F), silu of the first half times the second."""

    kind: ClassVar[str] = "swiglu"

    def output_shape(self, input_shape: Shape) -> Shape:
        check_min_rank("SwiGLU", input_shape, 1, "(..., 2 x width)")
        if input_shape[-1] % 2:
            raise ShapeError(f"SwiGLU: last axis {input_shape[-1]} is odd; it must hold the "
                             "gate and the up projection, halves of one width")
        return (*input_shape[:-1], input_shape[-1] // 2)

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return elementwise(batch * numel(self.output_shape(x)), SIGMOID_FLOPS + 2, 3, dtype_bytes)

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return elementwise(batch * numel(self.output_shape(x)), SIGMOID_FLOPS + 7, 5, dtype_bytes)
