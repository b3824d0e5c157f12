"""2-D convolution, channels-last: (H, W, C_in) -> (H_out, W_out, filters).

Forward FLOPs are 2 * H_out * W_out * Kh * Kw * C_in * C_out (+ H_out * W_out * C_out
for the bias). 'same' padding counts multiply-adds against the zero border too, as
im2col / implicit-GEMM kernels do. backward_data (a transposed convolution) and
backward_weights (a correlation of input and output gradient) each repeat the
forward multiply-adds; the bias gradient adds one reduction over the output.

As implicit GEMMs (im2col, NHWC; Chetlur et al., "cuDNN: Efficient Primitives for Deep
Learning", arXiv:1410.0759, 2014, Section 3), with P = N * H_out * W_out output
positions and K = Kh * Kw * C_in: forward (P, filters, K); backward_data
dcol = dy W^T, (P, K, filters), then col2im; backward_weights dW = col^T dy,
(K, filters, P). Convolutions are replicated under tensor parallelism (no split).

Layout (`transposes`): tensor cores run convolutions on NHWC data; given NCHW data,
cuDNN transposes the input to NHWC before a tensor-core convolution and the output back
to NCHW after it (NVIDIA, "Convolutional Layers User's Guide", DU-09798-001, "Tensor
Layouts In Memory: NCHW vs NHWC"; cuDNN Developer Guide, "Tensor Transformations": the
library "may use padding, folding, and NCHW-to-NHWC transformations to call the Tensor
Core operations"). Each transpose is its own memory-bound kernel that reads and writes
its tensor once, so every phase of a transposing convolution moves 2 x (its activation
bytes in + out) more and launches 2 more kernels: forward x and y, backward_data dy and
dx, backward_weights x and dy (each cuDNN call transposes its own operands).
ASSUMPTION: the filter's KCRS -> KRSC transpose is not priced (a filter is at most
2.4 M values in ResNet-50, beside tens of M activations per phase at training batches).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from leptonsim.ops.base import (
    Cost,
    Gemm,
    Op,
    Shape,
    check_positive,
    check_rank,
    pair,
    window_output_len,
)

Padding = Literal["valid", "same"]
PADDINGS: tuple[Padding, ...] = ("valid", "same")


def check_padding(op: str, padding: str) -> None:
    if padding not in PADDINGS:
        raise ValueError(f"{op}: padding must be 'valid' or 'same', got {padding!r}")


@dataclass(frozen=True)
class Conv2D(Op):
    """Conv2D(filters, kernel, stride, padding, use_bias), as in Keras."""

    filters: int
    kernel: int | tuple[int, int]
    stride: int | tuple[int, int] = 1
    padding: Padding = "valid"
    use_bias: bool = True
    transposes: bool = False  # NCHW data on tensor cores: cuDNN's transposes (module doc)

    kind: ClassVar[str] = "conv2d"

    def __post_init__(self) -> None:
        check_positive("Conv2D", filters=self.filters)
        pair("Conv2D", "kernel", self.kernel)
        pair("Conv2D", "stride", self.stride)
        check_padding("Conv2D", self.padding)

    def output_shape(self, input_shape: Shape) -> Shape:
        check_rank("Conv2D", input_shape, 3, "(H, W, C)")
        (kh, kw), (sh, sw) = self.kernel_hw, self.stride_hw
        h = window_output_len("Conv2D", input_shape[0], kh, sh, self.padding)
        w = window_output_len("Conv2D", input_shape[1], kw, sw, self.padding)
        return (h, w, self.filters)

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return pair("Conv2D", "kernel", self.kernel)

    @property
    def stride_hw(self) -> tuple[int, int]:
        return pair("Conv2D", "stride", self.stride)

    def _weights(self, x: Shape) -> int:
        kh, kw = self.kernel_hw
        return kh * kw * x[2] * self.filters

    def param_tensors(self, input_shape: Shape) -> int:
        return 2 if self.use_bias else 1

    def params(self, input_shape: Shape) -> int:
        self.output_shape(input_shape)
        return self._weights(input_shape) + (self.filters if self.use_bias else 0)

    def _macs(self, x: Shape) -> int:
        """Multiply-adds per sample."""
        h, w, _ = self.output_shape(x)
        return h * w * self._weights(x)

    def _bias_flops(self, x: Shape) -> int:
        h, w, f = self.output_shape(x)
        return h * w * f if self.use_bias else 0

    def _act_bytes(self, x: Shape, batch: int, dtype_bytes: int) -> float:
        """Input plus output activations for the batch."""
        h, w, f = self.output_shape(x)
        return float(batch * (x[0] * x[1] * x[2] + h * w * f) * dtype_bytes)

    def _gemm_sizes(self, x: Shape, batch: int) -> tuple[int, int]:
        """(output positions P, reduction length K) of the implicit GEMM."""
        h, w, _ = self.output_shape(x)
        return batch * h * w, self._weights(x) // self.filters

    def _transposed(self, cost: Cost, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        """A phase's cost with cuDNN's two transposes (in, out) if the op has them: each
        reads and writes its activation once, one kernel each."""
        if not self.transposes:
            return cost
        return cost + Cost(0.0, 2 * self._act_bytes(x, batch, dtype_bytes), kernels=2)

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        flops = batch * (2 * self._macs(x) + self._bias_flops(x))
        p, k = self._gemm_sizes(x, batch)
        return self._transposed(Cost(
            flops, self._act_bytes(x, batch, dtype_bytes) + self.params(x) * dtype_bytes,
            gemms=(Gemm(p, self.filters, k),)), x, batch, dtype_bytes)

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        # reads dy and the kernel (not the bias), writes dx. cuDNN's dgrad is an implicit
        # GEMM of M = N H W, N = C, K = K R S (NVIDIA, "Convolutional Layers User's
        # Guide", DU-09798, Table 1), a convolution of dy with the rotated filters; at
        # stride s > 1 only 1/s^2 of its taps are non-zero, priced here as the stride-1
        # shape over the output positions (M = N P Q), which keeps the FLOPs exact.
        flops = batch * 2 * self._macs(x)
        p, k = self._gemm_sizes(x, batch)
        return self._transposed(Cost(
            flops, self._act_bytes(x, batch, dtype_bytes) + self._weights(x) * dtype_bytes,
            gemms=(Gemm(p, x[2], self.filters * (k // x[2])),)), x, batch, dtype_bytes)

    def _backward_weights(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        # reads saved x and dy, writes dW and db (a second kernel, the bias reduction)
        flops = batch * (2 * self._macs(x) + self._bias_flops(x))
        p, k = self._gemm_sizes(x, batch)
        return self._transposed(Cost(
            flops, self._act_bytes(x, batch, dtype_bytes) + self.params(x) * dtype_bytes,
            gemms=(Gemm(k, self.filters, p),), kernels=1 + self.use_bias), x, batch, dtype_bytes)
