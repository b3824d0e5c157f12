"""Data parallelism executed for real: replicas, a ring all-reduce, one optimizer step each.

The batch is split over dp replicas (np.array_split: sizes may differ by one). Each
replica runs forward and backward on its rows with its own copy of the parameters,
seeding the backward with w_r = (its label rows) / (all label rows) instead of 1, so
its gradient is its share of the full-batch mean-loss gradient; for equal shards
w_r = 1/dp and the sum below is the usual average. The replicas' gradients, joined
into one buffer each, are summed by a ring all-reduce on their chunks
(`tests.oracle.ring`), and each replica applies SGD or Adam with the result:
every replica must end with the parameters of one large-batch step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from leptonsim.kernels import (
    Array,
    ModelParams,
    Network,
    Optimizer,
    run_backward,
    run_forward,
    train_step,
    update,
)
from tests.oracle.common import AllReduce
from tests.oracle.ring import ring_allreduce


def copy_params(params: ModelParams) -> ModelParams:
    return {layer: {name: a.copy() for name, a in p.items()} for layer, p in params.items()}


def replica_grads(net: Network, params: ModelParams, x: Array, labels: Array, weight: float) -> ModelParams:
    """One replica's gradient of weight * (its mean loss)."""
    tape = run_forward(net, params, x, labels)
    _, grads = run_backward(net, params, tape, np.asarray(weight, dtype=tape.output.dtype))
    return grads


def allreduce_grads(grads: list[ModelParams], allreduce: AllReduce = ring_allreduce) -> list[ModelParams]:
    """Each rank's gradients joined into one buffer, all-reduced, and split back."""
    order = [(layer, name) for layer, g in grads[0].items() for name in g]
    buffers = [np.concatenate([g[layer][name].ravel() for layer, name in order]) for g in grads]
    reduced = allreduce(buffers)
    out: list[ModelParams] = []
    for buf in reduced:
        rank: ModelParams = {}
        offset = 0
        for layer, name in order:
            like = grads[0][layer][name]
            rank.setdefault(layer, {})[name] = buf[offset: offset + like.size].reshape(like.shape)
            offset += like.size
        out.append(rank)
    return out


def data_parallel_steps(net: Network, params: ModelParams, x: Array, labels: Array, dp: int,
                        optimizer: Optimizer, lr: float, steps: int = 1,
                        allreduce: AllReduce = ring_allreduce) -> list[ModelParams]:
    """Each replica's parameters after `steps` data-parallel steps on the same batch."""
    if not 1 <= dp <= len(x):
        raise ValueError(f"dp must be between 1 and the batch size {len(x)}, got {dp}")
    xs, ls = np.array_split(x, dp), np.array_split(labels, dp)
    weights = [lab.size / labels.size for lab in ls]
    replicas = [copy_params(params) for _ in range(dp)]
    states: list[dict[str, Any]] = [{} for _ in range(dp)]
    for _ in range(steps):
        grads = [replica_grads(net, replicas[r], xs[r], ls[r], weights[r]) for r in range(dp)]
        for r, reduced in enumerate(allreduce_grads(grads, allreduce)):
            update(replicas[r], reduced, states[r], optimizer, lr)
    return replicas


def large_batch_steps(net: Network, params: ModelParams, x: Array, labels: Array, optimizer: Optimizer,
                      lr: float, steps: int = 1) -> ModelParams:
    """The reference: `steps` ordinary training steps on the whole batch."""
    out = copy_params(params)
    state: dict[str, Any] = {}
    for _ in range(steps):
        train_step(net, out, state, x, labels, optimizer, lr)
    return out
