"""The kernel of every op type, and parameter initialisation by op."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from leptonsim.kernels import (
    activation,
    attention,
    conv,
    dense,
    elementwise,
    embedding,
    interaction,
    norm,
    pool,
    recurrent,
    softmax,
)
from leptonsim.kernels.base import Kernel, Params, no_params
from leptonsim.ops import (
    GELU,
    GRU,
    LSTM,
    Add,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    DotInteraction,
    Embedding,
    Flatten,
    GlobalAvgPool,
    LayerNorm,
    MaxPool2D,
    MultiHeadSelfAttention,
    Op,
    ReLU,
    Sigmoid,
    SigmoidCrossEntropy,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
)
from leptonsim.ops.base import Shape

KERNELS: dict[type[Op], Kernel] = {
    Conv2D: Kernel(conv.forward, conv.backward, conv.init),
    MaxPool2D: Kernel(pool.max_forward, pool.max_backward, no_params),
    AvgPool2D: Kernel(pool.avg_forward, pool.avg_backward, no_params),
    GlobalAvgPool: Kernel(pool.global_forward, pool.global_backward, no_params),
    Dense: Kernel(dense.forward, dense.backward, dense.init),
    Flatten: Kernel(dense.flatten_forward, dense.flatten_backward, no_params),
    ReLU: Kernel(activation.relu_forward, activation.relu_backward, no_params),
    GELU: Kernel(activation.gelu_forward, activation.gelu_backward, no_params),
    Tanh: Kernel(activation.tanh_forward, activation.tanh_backward, no_params),
    Sigmoid: Kernel(activation.sigmoid_forward, activation.sigmoid_backward, no_params),
    BatchNorm: Kernel(norm.forward, norm.backward, norm.init),
    LayerNorm: Kernel(norm.forward, norm.backward, norm.init),
    Embedding: Kernel(embedding.forward, embedding.backward, embedding.init),
    LSTM: Kernel(recurrent.lstm_forward, recurrent.lstm_backward, recurrent.init),
    GRU: Kernel(recurrent.gru_forward, recurrent.gru_backward, recurrent.init),
    MultiHeadSelfAttention: Kernel(attention.forward, attention.backward, attention.init),
    Softmax: Kernel(softmax.forward, softmax.backward, no_params),
    SoftmaxCrossEntropy: Kernel(softmax.xent_forward, softmax.xent_backward, no_params),
    SigmoidCrossEntropy: Kernel(
        softmax.sigmoid_xent_forward, softmax.sigmoid_xent_backward, no_params
    ),
    Add: Kernel(elementwise.forward, elementwise.backward, no_params),
    DotInteraction: Kernel(interaction.forward, interaction.backward, no_params),
}

LOSSES: tuple[type[Op], ...] = (SoftmaxCrossEntropy, SigmoidCrossEntropy)


def kernel_for(op: Op) -> Kernel:
    try:
        return KERNELS[type(op)]
    except KeyError:
        raise KeyError(f"no NumPy kernel for op type {type(op).__name__}") from None


def init_params(
    op: Op, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike = np.float32
) -> Params:
    """Freshly initialised trainable parameters of `op` on per-sample `input_shape`.

    Their sizes total op.params(input_shape): the cost model and the kernels agree on
    what is trained (BatchNorm's moving statistics and a tied Dense's matrix are not).
    """
    op.output_shape(input_shape)
    return kernel_for(op).init(op, input_shape, rng, dtype)
