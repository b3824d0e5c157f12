"""The phase of a training step each task belongs to, for the Gantt chart's colours.

Issue 17: colouring by the ~20 op kinds of a step (conv2d, dense.bwd, ring_allreduce,
tp_allgather+reducescatter, ...) hid what a reader looks for: forward, backward, each
kind of communication, the optimizer, and the micro-batches of a pipeline (GPipe,
Huang et al. 2019; 1F1B, Narayanan et al. 2021, "Efficient Large-Scale Language Model
Training on GPU Clusters Using Megatron-LM"). Tasks are classed by their kind, and by
the step graph's naming scheme (parallel/step.py: ``F.d<replica>.<layer>.k<micro-batch>
.t<tp rank>`` for forward, ``B.`` for backward) where the kind alone does not say.
"""

from __future__ import annotations

import re

import numpy as np

from .trace import Trace

__all__ = ["PHASES", "SHADED", "micro_batch", "phase", "task_phases", "transfer_phases"]

FORWARD, BACKWARD, ALL_REDUCE, GATHER_SCATTER, ALL_TO_ALL, P2P, OPTIMIZER, INPUT, OTHER = (
    "forward", "backward", "all-reduce", "all-gather / reduce-scatter", "all-to-all",
    "p2p / transfer", "optimizer", "input", "other")
PHASES = (FORWARD, BACKWARD, ALL_REDUCE, GATHER_SCATTER, ALL_TO_ALL, P2P, OPTIMIZER, INPUT,
          OTHER)
SHADED = (FORWARD, BACKWARD)  # the phases drawn in a shade per micro-batch
COMMUNICATION = frozenset({ALL_REDUCE, GATHER_SCATTER, ALL_TO_ALL, P2P})

# the first collective a kind names: fused tensor-parallel kinds read "tp_a+b+c"
_COLLECTIVES = (("allreduce", ALL_REDUCE), ("allgather", GATHER_SCATTER),
                ("reducescatter", GATHER_SCATTER), ("alltoall", ALL_TO_ALL))
# point-to-point kinds: ring attention's ring (cp_ring), userbuffers' ring steps
# (ring_exchange), offload's host copies (host, offload)
_P2P_KINDS = frozenset({"cpring", "ringexchange", "host", "offload"})
_MICRO_BATCH = re.compile(r"\.k(\d+)(?:\.|$)")


def phase(kind: str, name: str) -> str:
    """The phase (one of PHASES) of a task of `kind` named `name`."""
    plain = kind.replace("_", "").replace("-", "")
    if kind == "optimizer" or ".adam" in name:  # offload's CPU Adam runs as "host" tasks
        return OPTIMIZER
    if plain.startswith("input"):
        return INPUT
    first = plain.removeprefix("tp").split("+")[0]
    for word, collective in _COLLECTIVES:
        if word in first:
            return collective
    if plain in _P2P_KINDS:
        return P2P
    if kind.endswith(".bwd") or name.startswith("B."):
        return BACKWARD
    if name.startswith("F."):
        return FORWARD
    return OTHER


def micro_batch(name: str) -> int:
    """The micro-batch of a forward or backward task (its ``.k<i>`` part), else -1."""
    m = _MICRO_BATCH.search(name)
    return int(m.group(1)) if m and name[:2] in ("F.", "B.") else -1


def task_phases(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    """(phase index into PHASES, micro-batch or -1) of every task name of the trace,
    classed once per name that ran (names that did not run: OTHER, -1). Only forward
    and backward tasks carry their micro-batch: those are the shades drawn."""
    n = len(trace.task_names)
    ph = np.full(n, PHASES.index(OTHER), np.int64)
    mb = np.full(n, -1, np.int64)
    for t in np.unique(np.asarray(trace.task, dtype=np.int64)).tolist():
        name = trace.task_names[t]
        p = phase(trace.task_kinds[t], name)
        ph[t] = PHASES.index(p)
        mb[t] = micro_batch(name) if p in SHADED else -1
    return ph, mb


def transfer_phases(trace: Trace, of_task: np.ndarray) -> np.ndarray:
    """The phase index of every transfer hop: the collective it serves (its destination
    task's phase, else its source's, when that is communication), else p2p / transfer
    (activations and gradients between pipeline stages, and any other data edge)."""
    comm = np.array([p in COMMUNICATION for p in PHASES])
    dst = of_task[np.asarray(trace.xfer_dst_task, dtype=np.int64)]
    src = of_task[np.asarray(trace.xfer_src_task, dtype=np.int64)]
    return np.where(comm[dst], dst, np.where(comm[src], src, PHASES.index(P2P)))
