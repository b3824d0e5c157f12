"""DNN ops: shape inference, parameter counts and per-phase FLOPs and bytes."""

from __future__ import annotations

from leptonsim.ops.activation import GELU, ReLU, Sigmoid, SiLU, SwiGLU, Tanh
from leptonsim.ops.attention import MultiHeadSelfAttention
from leptonsim.ops.base import PHASES, ZERO, Cost, Op, Phase, Shape, ShapeError
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
from leptonsim.ops.registry import LAYER_OPS, MULTI_INPUT, OPS
from leptonsim.ops.softmax import SigmoidCrossEntropy, Softmax, SoftmaxCrossEntropy

__all__ = [
    "GELU",
    "GRU",
    "LAYER_OPS",
    "LSTM",
    "MULTI_INPUT",
    "OPS",
    "PHASES",
    "ZERO",
    "Add",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Cost",
    "Dense",
    "DotInteraction",
    "Dropout",
    "Embedding",
    "Flatten",
    "GlobalAvgPool",
    "LayerNorm",
    "MaxPool2D",
    "MoE",
    "MultiHeadSelfAttention",
    "Op",
    "Phase",
    "RMSNorm",
    "ReLU",
    "Shape",
    "ShapeError",
    "SiLU",
    "Sigmoid",
    "SigmoidCrossEntropy",
    "Softmax",
    "SwiGLU",
    "SoftmaxCrossEntropy",
    "Tanh",
]
