"""Pipeline parallelism executed for real: stages of real layers, micro-batches, a schedule.

The layers are cut into contiguous stages by `leptonsim.parallel.pipeline.partition`
(on per-layer forward FLOPs unless costs are given). A stage hands the next one every
tensor a later layer reads - its output and, for residual connections, the tensors
that skip over it - and the backward pass hands back their gradients. The batch is
split into m micro-batches (np.array_split: sizes may differ by one) that the stages
process in the order `leptonsim.parallel.pipeline.schedule` gives each device
(GPipe or 1F1B); an op runs once its inputs have arrived, and an order that cannot
complete raises DeadlockError.

Gradient accumulation: the loss is a mean over the rows of the whole batch, so
micro-batch k (holding a fraction w_k of the label rows) seeds its backward with w_k
rather than 1; the accumulated gradients and sum_k w_k loss_k then equal the
full-batch ones (for equal micro-batches, w_k = 1/m).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from leptonsim.kernels import INPUT, LABELS, Array, ModelParams, Network, kernel_for
from leptonsim.kernels.registry import LOSSES
from leptonsim.models import Model
from leptonsim.parallel.pipeline import DeadlockError, partition, schedule
from tests.oracle.common import StepResult

Key = tuple[int, int]  # (micro-batch, stage)


def stage_ranges(model: Model, stages: int, costs: Sequence[float] | None = None) -> list[tuple[int, int]]:
    """[start, end) layer ranges of the stages, balanced on `costs` (default forward FLOPs)."""
    if costs is None:
        costs = [layer.cost(1, "forward").flops for layer in model.layers]
    return partition(costs, stages)


def handoffs(net: Network, ranges: Sequence[tuple[int, int]]) -> list[frozenset[str]]:
    """Per stage, the tensors it sends on: those it holds that later stages read (the last
    stage: the output)."""
    sends = []
    for _, hi in ranges[:-1]:
        later = {src for reads in net.sources[hi:] for src in reads}
        held = {INPUT, *(layer.name for layer in net.model.layers[:hi])}
        sends.append(frozenset(later & held))
    return [*sends, frozenset({net.model.layers[-1].name})]


def forward_stage(net: Network, params: ModelParams, span: tuple[int, int], inbox: dict[str, Any],
                  labels: Array | None, sends: frozenset[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run layers [lo, hi) on the tensors received; (tensors to send, caches)."""
    lo, hi = span
    tensors: dict[str, Any] = {**inbox, LABELS: labels}
    caches: dict[str, Any] = {}
    for layer, reads in zip(net.model.layers[lo:hi], net.sources[lo:hi], strict=True):
        args = tuple(tensors[s] for s in reads)
        tensors[layer.name], caches[layer.name] = kernel_for(layer.op).forward(
            layer.op, params.get(layer.name, {}), args[0] if len(args) == 1 else args)
    return {name: tensors[name] for name in sends}, caches


def backward_stage(net: Network, params: ModelParams, span: tuple[int, int], caches: dict[str, Any],
                   pending: dict[str, Array]) -> tuple[dict[str, Array], ModelParams]:
    """Backward through layers [lo, hi); (gradients to hand back, parameter gradients)."""
    lo, hi = span
    pending = dict(pending)
    grads: ModelParams = {}
    for layer, reads in zip(reversed(net.model.layers[lo:hi]), reversed(net.sources[lo:hi]), strict=True):
        dout = pending.pop(layer.name, None)
        if dout is None:
            continue
        dx, g = kernel_for(layer.op).backward(layer.op, params.get(layer.name, {}),
                                              caches[layer.name], dout)
        if g:
            grads[layer.name] = g
        for src, d in zip(reads, dx if isinstance(dx, tuple) else (dx,), strict=True):
            if d is not None:
                pending[src] = pending[src] + d if src in pending else d
    return pending, grads


def pipeline_step(net: Network, params: ModelParams, x: Array, labels: Array | None = None,
                  dy: Array | None = None, stages: int = 2, microbatches: int = 1, kind: str = "1f1b",
                  costs: Sequence[float] | None = None) -> StepResult:
    """One forward and backward over `stages` stages and `microbatches` micro-batches.

    A network ending in a loss needs labels; any other needs dy (its output's gradient).
    """
    if not 1 <= microbatches <= len(x):
        raise ValueError(f"microbatches must be between 1 and the batch size {len(x)}, got {microbatches}")
    labs, seeds = _split_targets(net, labels, dy, microbatches)
    ranges = stage_ranges(net.model, stages, costs)
    run = _Run(net, params, ranges, handoffs(net, ranges))
    xs = np.array_split(x, microbatches)
    for phase, k, s in _execute(schedule(kind, stages, microbatches), run):
        if phase == "F":
            run.forward(k, s, {INPUT: xs[k]} if s == 0 else run.acts[(k, s - 1)], labs[k])
        else:
            run.backward(k, s, {run.last: seeds[k]} if s == stages - 1 else run.back[(k, s + 1)])
    outs = [run.acts[(k, stages - 1)][run.last] for k in range(microbatches)]
    if labels is not None:  # a loss: sum_k w_k loss_k, the w_k being the seeds
        output = np.asarray(sum(float(w) * o for w, o in zip(seeds, outs, strict=True)), outs[0].dtype)
    else:
        output = np.concatenate(outs)
    dxs = [run.back[(k, 0)].get(INPUT) for k in range(microbatches)]
    dx = None if any(d is None for d in dxs) else np.concatenate([d for d in dxs if d is not None])
    return StepResult(output, dx, run.grads)


def _split_targets(net: Network, labels: Array | None, dy: Array | None,
                   m: int) -> tuple[list[Array | None], list[Array]]:
    """Per micro-batch: its labels, and the seed of its backward (w_k for a loss, else dy's rows)."""
    if isinstance(net.model.layers[-1].op, LOSSES):
        if labels is None:
            raise ValueError("pipeline_step: the network ends in a loss; pass labels")
        parts = np.array_split(labels, m)
        return list(parts), [np.asarray(lab.size / labels.size) for lab in parts]
    if dy is None:
        raise ValueError("pipeline_step: the network does not end in a loss; pass dy")
    return [None] * m, list(np.array_split(dy, m))


class _Run:
    """The stages' work so far, keyed by (micro-batch, stage): activations handed on,
    caches kept for the backward, gradients handed back, accumulated weight gradients."""

    def __init__(self, net: Network, params: ModelParams, ranges: list[tuple[int, int]],
                 sends: list[frozenset[str]]) -> None:
        self.net, self.params, self.ranges, self.sends = net, params, ranges, sends
        self.last = net.model.layers[-1].name
        self.acts: dict[Key, dict[str, Any]] = {}
        self.caches: dict[Key, dict[str, Any]] = {}
        self.back: dict[Key, dict[str, Array]] = {}
        self.grads: ModelParams = {}

    def ready(self, phase: str, k: int, s: int) -> bool:
        if phase == "F":
            return s == 0 or (k, s - 1) in self.acts
        return (k, s) in self.caches and (s == len(self.ranges) - 1 or (k, s + 1) in self.back)

    def forward(self, k: int, s: int, inbox: dict[str, Any], labels: Array | None) -> None:
        self.acts[(k, s)], self.caches[(k, s)] = forward_stage(self.net, self.params, self.ranges[s],
                                                               inbox, labels, self.sends[s])

    def backward(self, k: int, s: int, pending: dict[str, Array]) -> None:
        self.back[(k, s)], grads = backward_stage(self.net, self.params, self.ranges[s],
                                                  self.caches.pop((k, s)), pending)
        for layer, g in grads.items():  # gradient accumulation over micro-batches
            acc = self.grads.setdefault(layer, {})
            for name, value in g.items():
                acc[name] = acc[name] + value if name in acc else value


def _execute(order: list[list[tuple[str, int, int]]], run: _Run) -> Iterator[tuple[str, int, int]]:
    """Each device's ops in its order, (phase, micro-batch, stage), a device waiting while
    its next op's inputs have not arrived; the caller runs each op before the next."""
    position = [0] * len(order)
    while any(position[s] < len(ops) for s, ops in enumerate(order)):
        progressed = False
        for s, ops in enumerate(order):
            while position[s] < len(ops) and run.ready(ops[position[s]][0], ops[position[s]][1], s):
                phase, k, _ = ops[position[s]]
                yield phase, k, s
                position[s] += 1
                progressed = True
        if not progressed:
            stuck = {s: ops[position[s]] for s, ops in enumerate(order) if position[s] < len(ops)}
            raise DeadlockError(f"pipeline order deadlocks; devices wait at {stuck}")
