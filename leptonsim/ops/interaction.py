"""DLRM's pairwise dot-product feature interaction.

Input (n, d): the bottom-MLP output and n - 1 embedding vectors, stacked. Output
(d + pairs,), zero-padded up to a multiple of `pad_to`: the dense vector concatenated
with the strictly-lower triangle of Z Z^T (pairs = n(n - 1)/2, Naumov et al. 2019,
section 2.1.3; NVIDIA's dlrm/nn/interactions.py "THE MAIN DIAGONAL IS NOT INCLUDED"),
or with `self_interaction` the lower triangle and the diagonal (n(n + 1)/2). NVIDIA pads
to a multiple of 8 (`padding_size`), so the top MLP's first GEMM has an aligned k.
Like DLRM's reference code we count the full batched matmul Z Z^T (2 n^2 d FLOPs) and
then gather the triangle. Backward: dZ = (dS + dS^T) Z, 2 n^2 d + n^2 FLOPs, plus d
adds to merge the dense vector's pass-through gradient. As GEMMs: a batched (n, n, d)
per sample forward, (n, d, n) backward; the gather (forward) and the dS + dS^T pass
(backward) are a second kernel each.

`fused` is NVIDIA's cuda_dot kernel (DeepLearningExamples, PyTorch/Recommendation/DLRM,
dlrm/cuda_src/dot_based_interact/*.cu, commit 4154bda6): one kernel per phase, a warp
(fp16, tf32) or a thread block (fp32) per sample, which stages the sample's Z in shared
memory and multiplies it there (WMMA on 16 x 16 fragments, the n rows padded to a
multiple of 16), so no Z Z^T goes through memory: it reads Z and writes the output
(backward: reads dy and Z, writes dZ). Its products are not a cuBLAS GEMM, whose tiles
and waves the GPU model prices, but one small product per sample: their FLOPs (the
padded square, 2 ceil16(n)^2 d per sample; ASSUMPTION: the fp32 kernel, which computes
only the triangle, counted the same) run at the flat rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from leptonsim.ops.base import Cost, Gemm, Op, Shape, check_positive, check_rank

FRAGMENT = 16  # the WMMA fragment's side the fused kernel pads the rows to


@dataclass(frozen=True)
class DotInteraction(Op):
    """Pairwise dot products of n feature vectors, concatenated with the first."""

    self_interaction: bool = False
    pad_to: int = 1
    fused: bool = False

    kind: ClassVar[str] = "interaction"

    def __post_init__(self) -> None:
        check_positive("DotInteraction", pad_to=self.pad_to)

    def output_shape(self, input_shape: Shape) -> Shape:
        check_rank("DotInteraction", input_shape, 2, "(features, dim)")
        n, d = input_shape
        pairs = n * (n + 1) // 2 if self.self_interaction else n * (n - 1) // 2
        return (-(-(d + pairs) // self.pad_to) * self.pad_to,)

    def _fused_flops(self, x: Shape, batch: int) -> int:
        n, d = x
        rows = -(-n // FRAGMENT) * FRAGMENT
        return batch * 2 * rows * rows * d

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        n, d = x
        (out,) = self.output_shape(x)
        if self.fused:  # reads Z, writes the output
            return Cost(self._fused_flops(x, batch), float(batch * (n * d + out) * dtype_bytes))
        # reads Z, writes and re-reads Z Z^T, writes the output
        words = batch * (n * d + 2 * n * n + out)
        return Cost(batch * 2 * n * n * d, float(words * dtype_bytes),
                    gemms=(Gemm(n, n, d, batch),), kernels=2)

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        n, d = x
        (out,) = self.output_shape(x)
        if self.fused:  # reads dy and Z, writes dZ
            return Cost(self._fused_flops(x, batch) + batch * (n * n + d),
                        float(batch * (out + 2 * n * d) * dtype_bytes))
        flops = batch * (2 * n * n * d + n * n + d)
        # reads dy, writes and re-reads dS, reads Z, writes dZ
        words = batch * (out + 2 * n * n + 2 * n * d)
        return Cost(flops, float(words * dtype_bytes), gemms=(Gemm(n, d, n, batch),), kernels=2)
