"""Embedding lookup: a memory-bound gather of table rows.

Input is a vector of L integer indices, (L,); output (L, dim), or (dim,) when the L
rows are pooled (an EmbeddingBag, as DLRM's multi-hot features use). Forward does no
arithmetic unless pooling (L - 1 adds per dim, + 1 scale for a mean); it reads the
indices (index_bytes each) and L rows and writes the output. Indices have no
gradient, so backward_data is free; backward_weights scatter-adds dy into the L rows
(one add per value, reading and writing each row).

The optimizer updates the whole table by default (dense gradients, as a plain
framework does); with sparse_update=True only the rows a batch touches: Adam at most
batch * L unique rows; SGD, as NVIDIA's DLRM runs it, one row per lookup, duplicates
included, from an uncoalesced gradient (ops/sparse_update.py).

A row gather is random access: DRAM serves it in whole 32-byte sectors (NVIDIA, "CUDA
C++ Best Practices Guide", section 9.2.1 "Coalesced Access to Global Memory": a warp's
accesses are served by 32-byte transactions, and what a sector holds beyond the request
is read anyway). A table's rows are contiguous, w = dim x element bytes apart, so row r
starts at offset r w mod 32, a multiple of g = gcd(w, 32): a random row reads
ceil((o + w) / 32) sectors, o uniform over 0, g, ..., 32 - g (exactly w / 32 when w is
a multiple of 32: a 128-float fp32 row is 16 sectors, nothing wasted; a 13-float one
reads 2.5 sectors on average, 80 bytes for 52). The forward gathers, the backward
scatter-add reads and writes, whole sectors. `table_bytes` is the element size the
table is stored in (0: the step's dtype; NVIDIA's DLRM keeps fp32 tables under AMP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from leptonsim.ops import sparse_update
from leptonsim.ops.base import ZERO, Cost, Op, Phase, Shape, check_positive, check_rank, numel

Pooling = Literal["sum", "mean"]
SECTOR_BYTES = 32  # the DRAM access granularity of NVIDIA GPUs (module docstring)


def gathered_row_bytes(row_bytes: int) -> float:
    """Bytes DRAM moves for one randomly chosen row of `row_bytes` (module docstring)."""
    step = math.gcd(row_bytes, SECTOR_BYTES)
    offsets = range(0, SECTOR_BYTES, step)
    sectors = sum(-(-(o + row_bytes) // SECTOR_BYTES) for o in offsets) / len(offsets)
    return sectors * SECTOR_BYTES


@dataclass(frozen=True)
class Embedding(Op):
    """Embedding(vocab, dim, pooling=None|'sum'|'mean', sparse_update, index_bytes,
    table_bytes)."""

    vocab: int
    dim: int
    pooling: Pooling | None = None
    sparse_update: bool = False
    index_bytes: int = 4
    table_bytes: int = 0  # element size of the stored table; 0: the step's dtype

    kind: ClassVar[str] = "embedding"

    def __post_init__(self) -> None:
        check_positive("Embedding", vocab=self.vocab, dim=self.dim, index_bytes=self.index_bytes)
        if self.table_bytes:
            check_positive("Embedding", table_bytes=self.table_bytes)
        if self.pooling not in (None, "sum", "mean"):
            raise ValueError(
                f"Embedding: pooling must be None, 'sum' or 'mean', got {self.pooling!r}"
            )

    def output_shape(self, input_shape: Shape) -> Shape:
        check_rank("Embedding", input_shape, 1, "(indices,)")
        return (self.dim,) if self.pooling else (input_shape[0], self.dim)

    def params(self, input_shape: Shape) -> int:
        self.output_shape(input_shape)
        return self.vocab * self.dim

    def updated_params(self, input_shape: Shape, batch: int) -> int:
        if not self.sparse_update:
            return self.params(input_shape)
        return min(self.vocab, batch * input_shape[0]) * self.dim

    def _gathered(self, x: Shape, batch: int) -> int:
        """Table values read (or scattered into) per pass."""
        return batch * x[0] * self.dim

    def _gathered_bytes(self, x: Shape, batch: int, dtype_bytes: int) -> float:
        """DRAM bytes of the rows a pass reads (or writes): whole sectors per row."""
        row = self.dim * (self.table_bytes or dtype_bytes)
        return batch * x[0] * gathered_row_bytes(row)

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        out = batch * numel(self.output_shape(x))
        flops = 0
        if self.pooling:
            flops = batch * (x[0] - 1) * self.dim + (out if self.pooling == "mean" else 0)
        return Cost(flops, self._gathered_bytes(x, batch, dtype_bytes) + out * dtype_bytes
                    + batch * x[0] * self.index_bytes)

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return ZERO

    def cost(self, input_shape: Shape, batch: int, phase: Phase, dtype_bytes: int = 4) -> Cost:
        """As every op's, but a sparse SGD step is NVIDIA DLRM's uncoalesced one
        (ops/sparse_update.py): a row per lookup, duplicates and all."""
        if phase != "update_sgd" or not self.sparse_update:
            return super().cost(input_shape, batch, phase, dtype_bytes)
        self.output_shape(input_shape)
        check_positive("Embedding", batch=batch, dtype_bytes=dtype_bytes)
        row = gathered_row_bytes(self.dim * (self.table_bytes or dtype_bytes))
        return sparse_update.sgd_cost(batch * input_shape[0], self.dim, row,
                                      mixed_precision=dtype_bytes < sparse_update.VALUE_BYTES)

    def _backward_weights(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        # reads dy and the indices; reads and writes each touched row
        dy = batch * numel(self.output_shape(x))
        rows = 2 * self._gathered_bytes(x, batch, dtype_bytes)
        return Cost(self._gathered(x, batch), dy * dtype_bytes + rows
                    + batch * x[0] * self.index_bytes)
