"""Pooling, channels-last: windowed max / average and global average.

A window of k = Kh * Kw values costs k FLOPs per output (k - 1 comparisons or adds,
plus the scale for an average). Max pooling's backward re-finds each window's argmax
in the saved input (k comparisons per output) and routes dy there; average pooling's
backward spreads dy / k over the window (k FLOPs per output).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from leptonsim.ops.base import Cost, Op, Shape, check_rank, numel, pair, window_output_len
from leptonsim.ops.conv import Padding, check_padding


@dataclass(frozen=True)
class _Pool2D(Op):
    pool: int | tuple[int, int] = 2
    stride: int | tuple[int, int] | None = None  # None: the pool size, as in Keras
    padding: Padding = "valid"

    def __post_init__(self) -> None:
        pair(type(self).__name__, "pool", self.pool)
        pair(type(self).__name__, "stride", self.stride_hw)
        check_padding(type(self).__name__, self.padding)

    @property
    def pool_hw(self) -> tuple[int, int]:
        return pair(type(self).__name__, "pool", self.pool)

    @property
    def stride_hw(self) -> tuple[int, int]:
        stride = self.pool if self.stride is None else self.stride
        return pair(type(self).__name__, "stride", stride)

    def output_shape(self, input_shape: Shape) -> Shape:
        name = type(self).__name__
        check_rank(name, input_shape, 3, "(H, W, C)")
        (kh, kw), (sh, sw) = self.pool_hw, self.stride_hw
        h = window_output_len(name, input_shape[0], kh, sh, self.padding)
        w = window_output_len(name, input_shape[1], kw, sw, self.padding)
        return (h, w, input_shape[2])

    def _window_flops(self, x: Shape, batch: int) -> int:
        kh, kw = self.pool_hw
        return batch * numel(self.output_shape(x)) * kh * kw

    def _io_bytes(self, x: Shape, batch: int, dtype_bytes: int) -> float:
        return float(batch * (numel(x) + numel(self.output_shape(x))) * dtype_bytes)

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return Cost(self._window_flops(x, batch), self._io_bytes(x, batch, dtype_bytes))


@dataclass(frozen=True)
class MaxPool2D(_Pool2D):
    """MaxPool2D(pool, stride, padding); reads saved x again in backward."""

    kind: ClassVar[str] = "maxpool2d"

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        # reads x and dy, writes dx
        extra = batch * numel(x) * dtype_bytes
        return Cost(self._window_flops(x, batch), self._io_bytes(x, batch, dtype_bytes) + extra)


@dataclass(frozen=True)
class AvgPool2D(_Pool2D):
    """AvgPool2D(pool, stride, padding); backward needs only dy."""

    kind: ClassVar[str] = "avgpool2d"

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return Cost(self._window_flops(x, batch), self._io_bytes(x, batch, dtype_bytes))


@dataclass(frozen=True)
class GlobalAvgPool(Op):
    """Mean over all spatial positions: (H, W, C) -> (C,)."""

    kind: ClassVar[str] = "globalavgpool"

    def output_shape(self, input_shape: Shape) -> Shape:
        check_rank("GlobalAvgPool", input_shape, 3, "(H, W, C)")
        return (input_shape[2],)

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return Cost(batch * numel(x), float(batch * (numel(x) + x[2]) * dtype_bytes))

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return self._forward(x, batch, dtype_bytes)
