"""The kernel of every op type, and parameter initialisation by op."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from leptonsim.kernels import (
    activation,
    attention,
    conv,
    dense,
    dropout,
    elementwise,
    embedding,
    interaction,
    moe,
    norm,
    pool,
    recurrent,
    softmax,
)
from leptonsim.kernels.base import Kernel, Params, no_params
from leptonsim.ops import OPS, Op
from leptonsim.ops.base import Shape

# kind -> kernel; the op classes come from the one registry, leptonsim.ops.OPS.
_BY_KIND: dict[str, Kernel] = {
    "conv2d": Kernel(conv.forward, conv.backward, conv.init),
    "maxpool2d": Kernel(pool.max_forward, pool.max_backward, no_params),
    "avgpool2d": Kernel(pool.avg_forward, pool.avg_backward, no_params),
    "globalavgpool": Kernel(pool.global_forward, pool.global_backward, no_params),
    "dense": Kernel(dense.forward, dense.backward, dense.init),
    "flatten": Kernel(dense.flatten_forward, dense.flatten_backward, no_params),
    "relu": Kernel(activation.relu_forward, activation.relu_backward, no_params),
    "gelu": Kernel(activation.gelu_forward, activation.gelu_backward, no_params),
    "tanh": Kernel(activation.tanh_forward, activation.tanh_backward, no_params),
    "sigmoid": Kernel(activation.sigmoid_forward, activation.sigmoid_backward, no_params),
    "batchnorm": Kernel(norm.forward, norm.backward, norm.init),
    "layernorm": Kernel(norm.forward, norm.backward, norm.init),
    "embedding": Kernel(embedding.forward, embedding.backward, embedding.init),
    "lstm": Kernel(recurrent.lstm_forward, recurrent.lstm_backward, recurrent.init),
    "gru": Kernel(recurrent.gru_forward, recurrent.gru_backward, recurrent.init),
    "attention": Kernel(attention.forward, attention.backward, attention.init),
    "softmax": Kernel(softmax.forward, softmax.backward, no_params),
    "softmax_xent": Kernel(softmax.xent_forward, softmax.xent_backward, no_params),
    "sigmoid_xent": Kernel(softmax.sigmoid_xent_forward, softmax.sigmoid_xent_backward, no_params),
    "add": Kernel(elementwise.forward, elementwise.backward, no_params),
    "interaction": Kernel(interaction.forward, interaction.backward, no_params),
    "silu": Kernel(activation.silu_forward, activation.silu_backward, no_params),
    "swiglu": Kernel(activation.swiglu_forward, activation.swiglu_backward, no_params),
    "rmsnorm": Kernel(norm.forward, norm.backward, norm.init),
    "moe": Kernel(moe.forward, moe.backward, moe.init),
    "dropout": Kernel(dropout.forward, dropout.backward, no_params),
}

KERNELS: dict[type[Op], Kernel] = {OPS[kind]: kernel for kind, kernel in _BY_KIND.items()}

# The losses: their kernels also read the labels.
LOSSES: tuple[type[Op], ...] = (OPS["softmax_xent"], OPS["sigmoid_xent"])


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
