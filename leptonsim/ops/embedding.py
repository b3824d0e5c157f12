"""Embedding lookup: a memory-bound gather of table rows.

Input is a vector of L integer indices, (L,); output (L, dim), or (dim,) when the L
rows are pooled (an EmbeddingBag, as DLRM's multi-hot features use). Forward does no
arithmetic unless pooling (L - 1 adds per dim, + 1 scale for a mean); it reads the
indices (index_bytes each) and L rows and writes the output. Indices have no
gradient, so backward_data is free; backward_weights scatter-adds dy into the L rows
(one add per value, reading and writing each row).

The optimizer updates the whole table by default (dense gradients, as a plain
framework does); with sparse_update=True only the rows a batch touches, at most
batch * L of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from leptonsim.ops.base import ZERO, Cost, Op, Shape, check_positive, check_rank, numel

Pooling = Literal["sum", "mean"]


@dataclass(frozen=True)
class Embedding(Op):
    """Embedding(vocab, dim, pooling=None|'sum'|'mean', sparse_update, index_bytes)."""

    vocab: int
    dim: int
    pooling: Pooling | None = None
    sparse_update: bool = False
    index_bytes: int = 4

    kind: ClassVar[str] = "embedding"

    def __post_init__(self) -> None:
        check_positive("Embedding", vocab=self.vocab, dim=self.dim, index_bytes=self.index_bytes)
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

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        out = batch * numel(self.output_shape(x))
        flops = 0
        if self.pooling:
            flops = batch * (x[0] - 1) * self.dim + (out if self.pooling == "mean" else 0)
        words = self._gathered(x, batch) + out
        return Cost(flops, float(words * dtype_bytes + batch * x[0] * self.index_bytes))

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return ZERO

    def _backward_weights(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        # reads dy and the indices; reads and writes each touched row
        rows = self._gathered(x, batch)
        dy = batch * numel(self.output_shape(x))
        return Cost(rows, float((dy + 2 * rows) * dtype_bytes + batch * x[0] * self.index_bytes))
