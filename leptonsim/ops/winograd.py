"""Winograd's minimal filtering for 3 x 3 convolutions, F(2 x 2, 3 x 3), as cuDNN runs it.

Lavin and Gray ("Fast Algorithms for Convolutional Neural Networks", CVPR 2016,
Section 4) compute a 2 x 2 output tile Y of an r x r = 3 x 3 filter g from a 4 x 4
input tile d as

    Y = A^T [ (G g G^T) . (B^T d B) ] A          (. elementwise)

with the matrices below (their equation (7) nested for 2-D). Summed over the input
channels, the elementwise products of one tile position are one GEMM per each of
the alpha^2 = 16 positions: a batch of 16 GEMMs of (tiles, C_out, C_in), 16 multiplies
per tile and channel pair where the direct (implicit-GEMM) form has 2 x 2 x 3 x 3 = 36:
2.25x fewer (the paper's Section 4.1). The transforms are additions (and the filter's
halvings), `transform_flops`; cuDNN's fused Winograd does them inside its kernel,
WINOGRAD_NONFUSED writes the transformed operands to memory and runs the 16 GEMMs
separately (cuDNN Developer Guide, cudnnConvolutionFwdAlgo_t: "a reasonably sized
workspace" for WINOGRAD, "significant workspace" for WINOGRAD_NONFUSED).
"""

from __future__ import annotations

import math

import numpy as np

M, R = 2, 3
"""Output tile side m and filter side r of F(m x m, r x r)."""
ALPHA = M + R - 1
"""The input tile side alpha = m + r - 1: alpha^2 GEMMs, one per tile position."""

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=float)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)
"""F(2, 3)'s data (B^T), filter (G) and output (A^T) transforms (Lavin & Gray, eq. 7)."""


def tiles(h_out: int, w_out: int) -> int:
    """Output tiles of one image: an m x m tile per block, partial tiles padded whole."""
    return math.ceil(h_out / M) * math.ceil(w_out / M)


def products(h_out: int, w_out: int, c_in: int, c_out: int) -> int:
    """Multiplies of one image's Winograd convolution: alpha^2 per tile and channel pair."""
    return ALPHA * ALPHA * tiles(h_out, w_out) * c_in * c_out


def _row_flops(matrix: np.ndarray) -> float:
    """FLOPs of one entry of L X per row of L: nnz - 1 additions, plus a multiply for
    every entry that is not +-1 (multiplying by +-1 or 0 is free)."""
    nz = matrix != 0
    scaled = nz & (np.abs(matrix) != 1)
    return float((nz.sum(axis=1) - 1).clip(min=0).sum() + scaled.sum())


def transform_flops(matrix: np.ndarray) -> float:
    """FLOPs of the 2-D transform L X L^T of one q x q tile, L of shape (p, q), as two
    plain matrix products: L X is p x q entries, (L X) L^T p x p, each entry its row's
    `_row_flops`. B^T: 32 additions, A^T: 24, G: 70 (an upper bound: shared
    subexpressions need fewer; a filter's transform is amortised over the batch)."""
    p, q = matrix.shape
    return (q + p) * _row_flops(matrix)


INPUT_FLOPS = transform_flops(BT)
"""Per tile and channel of the operand read (x forward, dy backward)."""
OUTPUT_FLOPS = transform_flops(AT)
"""Per tile and channel of the result."""
FILTER_FLOPS = transform_flops(G)
"""Per filter (channel pair)."""
