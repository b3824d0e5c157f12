"""NumPy kernels: forward and backward of every op, and a small network runner.

Each module mirrors leptonsim.ops and exposes forward(op, params, x) -> (y, cache)
and backward(op, params, cache, dy) -> (dx, grads) over batch-first arrays, computing
in the dtype of its inputs. KERNELS maps each op type to its Kernel.
"""

from __future__ import annotations

from leptonsim.kernels.base import Array, Kernel, Params
from leptonsim.kernels.network import (
    INPUT,
    LABELS,
    Network,
    Tape,
    init_model_params,
    network,
    run_backward,
    run_forward,
    train_step,
)
from leptonsim.kernels.optim import ModelParams, Optimizer, adam, sgd, update
from leptonsim.kernels.registry import KERNELS, init_params, kernel_for

__all__ = [
    "INPUT",
    "KERNELS",
    "LABELS",
    "Array",
    "Kernel",
    "ModelParams",
    "Network",
    "Optimizer",
    "Params",
    "Tape",
    "adam",
    "init_model_params",
    "init_params",
    "kernel_for",
    "network",
    "run_backward",
    "run_forward",
    "sgd",
    "train_step",
    "update",
]
