"""The interface every op shares, and the conventions behind its numbers.

Shapes exclude the batch dimension and are channels-last (Keras layout): an image is
(H, W, C), a token sequence (S, H). Costs take the batch size separately, because
weights are read once per batch while activations scale with it.

Counting conventions (a roofline model needs totals, not cycle accuracy):
- a multiply-add is 2 FLOPs; a comparison, add or multiply is 1;
- a transcendental (exp, tanh, erf, rsqrt) is TRANSCENDENTAL_FLOPS;
- bytes are what an unfused kernel moves to and from memory: inputs and weights read,
  outputs written, plus state an op saves for its backward pass (each op says which);
- backward_data produces the gradient w.r.t. the input, backward_weights the gradients
  w.r.t. the op's own weights; the split mirrors dense/conv so graphs stay uniform;
- update_sgd is plain SGD, w -= lr * g: 2 FLOPs/param, reads w and g, writes w
  (momentum would add 1 FLOP and 2 words per param; we model the plain rule);
- update_adam: m and v moving averages (3 + 4 FLOPs), w -= lr * m / (sqrt(v) + eps)
  with bias corrections folded into lr (5 FLOPs): 12 FLOPs/param; reads w, g, m, v,
  writes w, m, v.
- the optimizer is a memory-bound pass over its state, kept at MASTER_BYTES or more:
  in mixed precision (2-byte dtype) it reads the low-precision gradient, reads and
  writes the fp32 master weights (and Adam's fp32 m and v), and writes the
  low-precision copy of the weights (Micikevicius et al., "Mixed Precision Training",
  ICLR 2018, section 3.1; apex FusedAdam): Adam 2 + 24 + 2 = 28 bytes/param, as in
  fp32 (4 + 24); SGD 2 + 8 + 2 = 12, as in fp32 (4 + 8). Unfused, it is one kernel
  per parameter tensor (`Op.param_tensors`); a fused optimizer (apex FusedAdam,
  torch's fused=True) is one per parameter group, which the step graph counts.
Ops without weights cost nothing in backward_weights and the updates.

A Cost also lists the GEMMs its FLOPs contain (`Gemm`: shape, batch, count), which a
GPU cost model prices by shape (cost/gpu.py), and how many kernels the phase launches
(`kernels`: 1 per op phase unless an op says otherwise; 0 for a phase with no work, or
one fused into its producer's kernel).
Each Gemm names the dimension a tensor-parallel split divides (`split`, and
`row_split` for a row-parallel Dense), so a shard's GEMMs follow from the op's.

Activation memory: `saved_bytes` is what an op keeps from its forward for its
backward, per batch, in the accounting of Korthikanti et al., "Reducing Activation
Recomputation in Large Transformer Models", MLSys 2023, section 4.1: every tensor a
backward reads, at the dtype (dropout masks 1 byte), counted at the op that needs it.
By default an op keeps its input (what a generic backward needs: Dense, GELU,
LayerNorm, convolutions); ReLU, Tanh and Sigmoid their output (PyTorch's in-place
ReLU; the derivative follows from it), an Add nothing, a Dropout its mask, attention its
projections and the S x S core (ops/attention.py). `Saved` splits it in four: the op's
input (replicated under tensor parallelism when the op opens a split region), the
tensors it makes, and the `core` of those that selective recompute rebuilds in the
backward instead (the attention scores, probabilities and dropout: `recompute_cost`).

Each op module holds the cost side of one op family; NumPy kernels belong beside it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import KW_ONLY, dataclass, replace
from typing import ClassVar, Literal, get_args

from leptonsim.errors import LeptonError

Shape = tuple[int, ...]
Phase = Literal["forward", "backward_data", "backward_weights", "update_sgd", "update_adam"]
PHASES: tuple[Phase, ...] = get_args(Phase)

TRANSCENDENTAL_FLOPS = 4  # polynomial + range reduction, amortised over SIMD lanes
SGD_FLOPS_PER_PARAM = 2
SGD_STATE_WORDS = 1  # w, read and written (g read once, at the dtype)
ADAM_FLOPS_PER_PARAM = 12
ADAM_STATE_WORDS = 3  # w, m, v, read and written
MASTER_BYTES = 4  # fp32 master weights and optimizer state beside 2-byte weights


class ShapeError(LeptonError, ValueError):
    """An input shape an op cannot take, e.g. an image smaller than the kernel."""


GemmDim = Literal["", "m", "n", "k", "batch"]


@dataclass(frozen=True, slots=True)
class Gemm:
    """C (m x n) = A (m x k) B (k x n): `batch` such products in one launch (a strided
    batched GEMM, whose tiles share the SMs), launched `count` times one after another
    (a recurrent layer's time steps). `split` is the dimension a tensor-parallel split
    of the op divides (column-parallel Dense, attention heads), `row_split` the one a
    row-parallel Dense divides; "" for none."""

    m: int
    n: int
    k: int
    batch: int = 1
    count: int = 1
    split: GemmDim = ""
    row_split: GemmDim = ""

    @property
    def flops(self) -> int:
        return 2 * self.m * self.n * self.k * self.batch * self.count

    def shard(self, tp: int, row: bool = False) -> Gemm:
        """This GEMM on one of `tp` ranks (tensor.check_split made every split even)."""
        dim = self.row_split if row else self.split
        if tp == 1 or not dim:
            return self
        return replace(self, **{dim: getattr(self, dim) // tp})


@dataclass(frozen=True, slots=True)
class Cost:
    """Work of one op in one phase: floating-point operations and memory traffic, the
    GEMMs among those FLOPs and the kernels the phase launches."""

    flops: float = 0.0
    bytes: float = 0.0
    _: KW_ONLY  # named, so a kernel count is never read as a GEMM list or back
    gemms: tuple[Gemm, ...] = ()
    kernels: int = 1

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.flops + other.flops, self.bytes + other.bytes,
                    gemms=self.gemms + other.gemms, kernels=self.kernels + other.kernels)

    @property
    def intensity(self) -> float:
        """Arithmetic intensity in FLOP/byte (inf for pure compute)."""
        return self.flops / self.bytes if self.bytes else math.inf


ZERO = Cost(kernels=0)
"""No work at all: no FLOPs, no bytes, no kernel launched."""


@dataclass(frozen=True, slots=True)
class Saved:
    """Bytes an op keeps for its backward (module docstring): its input, the tensors it
    makes, `core`, the part of those that selective recompute rebuilds instead, and
    `output`, its output when that is what it keeps (ReLU, Tanh, Sigmoid): the next op
    may keep that very tensor as its input, and memory counts it once."""

    inputs: float = 0.0
    made: float = 0.0
    core: float = 0.0
    output: float = 0.0

    @property
    def total(self) -> float:
        return self.inputs + self.made + self.core + self.output


def numel(shape: Shape) -> int:
    """Number of elements in a tensor of this (per-sample) shape."""
    return math.prod(shape)


def check_rank(op: str, shape: Shape, rank: int, layout: str) -> None:
    """Raise ShapeError unless shape has the rank and only positive sizes."""
    if len(shape) != rank:
        raise ShapeError(f"{op}: expected input of rank {rank} {layout}, got shape {shape}")
    check_sizes(op, shape)


def check_min_rank(op: str, shape: Shape, rank: int, layout: str) -> None:
    """Raise ShapeError unless shape has at least this rank and only positive sizes."""
    if len(shape) < rank:
        raise ShapeError(f"{op}: expected input of rank >= {rank} {layout}, got shape {shape}")
    check_sizes(op, shape)


def check_sizes(op: str, shape: Shape) -> None:
    if any(not isinstance(n, int) or n < 1 for n in shape):
        raise ShapeError(f"{op}: dimensions must be positive integers, got shape {shape}")


def check_positive(op: str, **values: int) -> None:
    """Validate constructor arguments that must be positive integers."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{op}: {name} must be a positive integer, got {value!r}")


def pair(op: str, name: str, value: int | tuple[int, int]) -> tuple[int, int]:
    """An int or (h, w) pair as (h, w), validated."""
    hw = (value, value) if isinstance(value, int) else tuple(value) if isinstance(
        value, tuple | list) else ()
    if len(hw) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in hw):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    check_positive(op, **{f"{name}_h": hw[0], f"{name}_w": hw[1]})
    return hw[0], hw[1]


def window_output_len(op: str, n: int, k: int, stride: int, padding: str) -> int:
    """Output length of a sliding window (TensorFlow 'valid' / 'same' semantics)."""
    if padding == "same":
        return -(-n // stride)
    if n < k:
        raise ShapeError(f"{op}: input size {n} is smaller than window {k} with padding 'valid'")
    return (n - k) // stride + 1


def elementwise(elements: int, flops_per_element: float, tensors: int, dtype_bytes: int) -> Cost:
    """Cost of a pass over `elements` values touching `tensors` tensors of that size."""
    return Cost(elements * flops_per_element, float(elements * tensors * dtype_bytes))


def update_cost(params: int, phase: Phase, dtype_bytes: int, tensors: int = 1) -> Cost:
    """Optimizer step over `params` parameters in `tensors` tensors, one kernel each
    (conventions in the module docstring)."""
    sgd = phase == "update_sgd"
    flops, words = ((SGD_FLOPS_PER_PARAM, SGD_STATE_WORDS) if sgd
                    else (ADAM_FLOPS_PER_PARAM, ADAM_STATE_WORDS))
    state = max(dtype_bytes, MASTER_BYTES)
    copy = dtype_bytes if dtype_bytes < state else 0  # the low-precision weights written
    per_param = dtype_bytes + 2 * words * state + copy
    return Cost(params * flops, float(params * per_param), kernels=tensors if params else 0)


def chained_update(cost: Cost, phase: Phase, dtype_bytes: int, kernels: int) -> Cost:
    """An update `cost` (update_cost's, one kernel per tensor) run as `kernels`
    elementwise kernels per tensor, as an unfused optimizer runs it: what the one kernel
    moves plus, at each of the kernels - 1 boundaries, an intermediate written and read
    back at the state's precision (2 words a parameter). NVIDIA's BertAdam
    (DeepLearningExamples, PyTorch/LanguageModeling/BERT/optimization.py) is 12 kernels
    a weight-decayed fp32 tensor: m.mul_, m.add_, v.mul_, v.addcmul_, sqrt, + eps, the
    division, the decay's product and sum, x lr, the negation, p.add_; their operands,
    counted one by one, are 29 words a parameter, what this gives (7 + 2 x 11)."""
    if kernels < 1:
        raise ValueError(f"an update runs at least one kernel per tensor, got {kernels}")
    if kernels == 1 or not cost.kernels:
        return cost
    per_param = SGD_FLOPS_PER_PARAM if phase == "update_sgd" else ADAM_FLOPS_PER_PARAM
    params = cost.flops / per_param
    state = max(dtype_bytes, MASTER_BYTES)
    return replace(cost, bytes=cost.bytes + params * (kernels - 1) * 2 * state,
                   kernels=cost.kernels * kernels)


class Op(ABC):
    """A DNN op: shape inference, parameter counts and per-phase cost.

    Subclasses are frozen dataclasses holding the op's configuration; they implement
    output_shape and the _forward / _backward_data (and, with weights, params and
    _backward_weights) hooks, which see an input shape already checked by
    output_shape, a positive batch and a positive dtype size.
    """

    kind: ClassVar[str]

    @abstractmethod
    def output_shape(self, input_shape: Shape) -> Shape:
        """Per-sample output shape; ShapeError for an impossible input."""

    def params(self, input_shape: Shape) -> int:
        """Trainable parameters."""
        return 0

    def non_trainable_params(self, input_shape: Shape) -> int:
        """Stored but not trained parameters (e.g. BatchNorm moving statistics)."""
        return 0

    def updated_params(self, input_shape: Shape, batch: int) -> int:
        """Parameters the optimizer touches per step (all, unless sparse or tied)."""
        return self.params(input_shape)

    def param_tensors(self, input_shape: Shape) -> int:
        """Trainable tensors (a weight matrix, a bias, ...): an unfused optimizer runs a
        kernel per tensor. One, for an op with parameters, unless it says more."""
        return 1 if self.params(input_shape) else 0

    def cost(self, input_shape: Shape, batch: int, phase: Phase, dtype_bytes: int = 4) -> Cost:
        """FLOPs and bytes of this op for a batch in one phase of a training step."""
        self.output_shape(input_shape)
        check_positive(type(self).__name__, batch=batch, dtype_bytes=dtype_bytes)
        if phase == "forward":
            return self._forward(input_shape, batch, dtype_bytes)
        if phase == "backward_data":
            return self._backward_data(input_shape, batch, dtype_bytes)
        if phase == "backward_weights":
            return self._backward_weights(input_shape, batch, dtype_bytes)
        if phase in ("update_sgd", "update_adam"):
            return update_cost(self.updated_params(input_shape, batch), phase, dtype_bytes,
                               self.param_tensors(input_shape))
        raise ValueError(f"unknown phase {phase!r}; expected one of {', '.join(PHASES)}")

    def saved_bytes(self, input_shape: Shape, batch: int, dtype_bytes: int) -> Saved:
        """What the forward keeps for the backward, for a batch (module docstring): by
        default the input, as a generic op's backward needs it."""
        self.output_shape(input_shape)
        return Saved(inputs=float(batch * numel(input_shape) * dtype_bytes))

    def recompute_cost(self, input_shape: Shape, batch: int, dtype_bytes: int) -> Cost:
        """The forward work selective recompute repeats in the backward to rebuild
        `Saved.core` (none unless the op keeps a core)."""
        self.output_shape(input_shape)
        return ZERO

    @abstractmethod
    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost: ...

    @abstractmethod
    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost: ...

    def _backward_weights(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return ZERO
