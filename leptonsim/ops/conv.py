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

Algorithm (`algorithms`, one per phase: forward, backward_data, backward_weights): the
implicit GEMM above, or for a 3 x 3 stride-1 convolution (`winograd_applies`) cuDNN's
Winograd F(2 x 2, 3 x 3) (ops/winograd.py): a batch of 16 GEMMs over the T = N
ceil(H_out / 2) ceil(W_out / 2) output tiles, forward (T, filters, C), backward_data
(T, C, filters), backward_weights (C, filters, T), plus the transforms' FLOPs
(B^T on the operand read, A^T on the result, G per channel pair). "winograd" (cuDNN's
fused WINOGRAD, forward and backward_data only: cudnnConvolutionBwdFilterAlgo_t lists
BWD_FILTER_ALGO_WINOGRAD as not implemented) transforms in its kernel and moves the
implicit GEMM's bytes; "winograd_nonfused" runs four kernels (filter, input and output
transforms, the GEMMs), so it also writes and reads back the transformed operands and
result: 2 x 16 (T (C + filters) + C filters) values more. The bias is as above. For
backward_weights the dy tiles' transform is priced as G's per channel pair and x's as
B^T's (ASSUMPTION: F(3 x 3, 2 x 2)'s transforms, of the same order, not counted apart).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

from leptonsim.ops import winograd as wg
from leptonsim.ops.base import (
    Cost,
    Gemm,
    Op,
    Phase,
    Shape,
    check_positive,
    check_rank,
    pair,
    window_output_len,
)

Padding = Literal["valid", "same"]
PADDINGS: tuple[Padding, ...] = ("valid", "same")
Algorithm = Literal["implicit_gemm", "winograd", "winograd_nonfused"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
IMPLICIT: tuple[Algorithm, ...] = ("implicit_gemm",) * 3
PHASE_INDEX: dict[Phase, int] = {"forward": 0, "backward_data": 1, "backward_weights": 2}


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
    algorithms: tuple[Algorithm, ...] = IMPLICIT  # one per phase (module doc)

    kind: ClassVar[str] = "conv2d"

    def __post_init__(self) -> None:
        check_positive("Conv2D", filters=self.filters)
        pair("Conv2D", "kernel", self.kernel)
        pair("Conv2D", "stride", self.stride)
        check_padding("Conv2D", self.padding)
        for phase, algorithm in zip(PHASE_INDEX, self.algorithms, strict=True):
            if algorithm not in self.algorithms_for(phase):
                raise ValueError(f"Conv2D: {algorithm!r} does not run {phase} of a "
                                 f"{self.kernel_hw} stride {self.stride_hw} convolution")

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

    def winograd_applies(self) -> bool:
        """F(2 x 2, 3 x 3) computes a 3 x 3 filter at stride 1 (cuDNN's WINOGRAD and
        WINOGRAD_NONFUSED: 3 x 3 filters, unit stride)."""
        return self.kernel_hw == (wg.R, wg.R) and self.stride_hw == (1, 1)

    def algorithms_for(self, phase: Phase) -> tuple[Algorithm, ...]:
        """The algorithms that can run `phase` of this convolution (module doc)."""
        if not self.winograd_applies():
            return IMPLICIT[:1]
        return ALGORITHMS if phase != "backward_weights" else ("implicit_gemm", "winograd_nonfused")

    def _winograd(self, x: Shape, batch: int, dtype_bytes: int, phase: Phase, implicit: Cost) -> Cost:
        """`phase` as Winograd F(2 x 2, 3 x 3) (module doc); `implicit` is the phase's
        implicit-GEMM cost, whose bytes and bias FLOPs it keeps."""
        h, w, f = self.output_shape(x)
        c, t = x[2], batch * wg.tiles(h, w)
        alpha2 = wg.ALPHA * wg.ALPHA
        gemm = {"forward": Gemm(t, f, c, batch=alpha2), "backward_data": Gemm(t, c, f, batch=alpha2),
                "backward_weights": Gemm(c, f, t, batch=alpha2)}[phase]
        read, out = (f, c) if phase == "backward_data" else (c, f)
        transforms = t * (read * wg.INPUT_FLOPS + out * wg.OUTPUT_FLOPS) + c * f * wg.FILTER_FLOPS
        bias = batch * self._bias_flops(x) if phase != "backward_data" else 0
        extra, kernels = 0.0, implicit.kernels
        if self.algorithms[PHASE_INDEX[phase]] == "winograd_nonfused":
            extra = 2.0 * alpha2 * (t * (c + f) + c * f) * dtype_bytes
            kernels += 3
        return Cost(gemm.flops + transforms + bias, implicit.bytes + extra, gemms=(gemm,),
                    kernels=kernels)

    def _algorithm(self, cost: Cost, x: Shape, batch: int, dtype_bytes: int, phase: Phase) -> Cost:
        """The phase's implicit-GEMM `cost`, or its Winograd cost, with the transposes."""
        if self.algorithms[PHASE_INDEX[phase]] != "implicit_gemm":
            cost = self._winograd(x, batch, dtype_bytes, phase, cost)
        return self._transposed(cost, x, batch, dtype_bytes)

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        flops = batch * (2 * self._macs(x) + self._bias_flops(x))
        p, k = self._gemm_sizes(x, batch)
        return self._algorithm(Cost(
            flops, self._act_bytes(x, batch, dtype_bytes) + self.params(x) * dtype_bytes,
            gemms=(Gemm(p, self.filters, k),)), x, batch, dtype_bytes, "forward")

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        # reads dy and the kernel (not the bias), writes dx. cuDNN's dgrad is an implicit
        # GEMM of M = N H W, N = C, K = K R S (NVIDIA, "Convolutional Layers User's
        # Guide", DU-09798, Table 1), a convolution of dy with the rotated filters; at
        # stride s > 1 only 1/s^2 of its taps are non-zero, priced here as the stride-1
        # shape over the output positions (M = N P Q), which keeps the FLOPs exact.
        flops = batch * 2 * self._macs(x)
        p, k = self._gemm_sizes(x, batch)
        return self._algorithm(Cost(
            flops, self._act_bytes(x, batch, dtype_bytes) + self._weights(x) * dtype_bytes,
            gemms=(Gemm(p, x[2], self.filters * (k // x[2])),)), x, batch, dtype_bytes,
            "backward_data")

    def _backward_weights(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        # reads saved x and dy, writes dW and db (a second kernel, the bias reduction)
        flops = batch * (2 * self._macs(x) + self._bias_flops(x))
        p, k = self._gemm_sizes(x, batch)
        return self._algorithm(Cost(
            flops, self._act_bytes(x, batch, dtype_bytes) + self.params(x) * dtype_bytes,
            gemms=(Gemm(k, self.filters, p),), kernels=1 + self.use_bias), x, batch, dtype_bytes,
            "backward_weights")
