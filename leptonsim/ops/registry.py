"""The one op registry: every op kind and its class.

The scenario schema's layer kinds, the builder and the NumPy kernel table all derive
from OPS, so adding an op means adding it here (and a kernel: tests/test_kernels.py
checks that every registered op has one).
"""

from __future__ import annotations

from leptonsim.ops.activation import GELU, ReLU, Sigmoid, SiLU, SwiGLU, Tanh
from leptonsim.ops.attention import MultiHeadSelfAttention
from leptonsim.ops.base import Op
from leptonsim.ops.conv import Conv2D
from leptonsim.ops.dense import Dense, Flatten
from leptonsim.ops.dropout import Dropout
from leptonsim.ops.elementwise import Add
from leptonsim.ops.embedding import Embedding
from leptonsim.ops.interaction import DotInteraction
from leptonsim.ops.moe import MoE
from leptonsim.ops.norm import BatchNorm, LayerNorm, RMSNorm
from leptonsim.ops.pool import AvgPool2D, GlobalAvgPool, MaxPool2D
from leptonsim.ops.recurrent import GRU, LSTM
from leptonsim.ops.softmax import SigmoidCrossEntropy, Softmax, SoftmaxCrossEntropy

OPS: dict[str, type[Op]] = {cls.kind: cls for cls in (
    Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool, Dense, Flatten, ReLU, GELU, Tanh, Sigmoid,
    BatchNorm, LayerNorm, Embedding, LSTM, GRU, MultiHeadSelfAttention, Softmax,
    SoftmaxCrossEntropy, SigmoidCrossEntropy, Add, DotInteraction, SiLU, RMSNorm, MoE, SwiGLU, Dropout)}

# Ops that join several tensors: a graph (zoo) model wires them, a scenario's layer
# list, being a chain of one input each, cannot.
MULTI_INPUT: frozenset[str] = frozenset({Add.kind, DotInteraction.kind})

LAYER_OPS: dict[str, type[Op]] = {k: cls for k, cls in OPS.items() if k not in MULTI_INPUT}
