"""What a scenario knows about its trace's rows beyond where and when they ran: the node
of each unit, each task's FLOPs, bytes, phase, layer and micro-batch, and each unit's
memory plan. The Chrome trace (export.chrome_events) reads it to group tracks per node
and to fill event args and memory counters (issue 17); a trace without one (a Trace made
by hand, real execution) keeps the plain layout.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .parallel.memory import MemoryBreakdown
    from .parallel.step import StepGraph
    from .scenario import Scenario

__all__ = ["PHASES", "TraceView", "view_of"]

PHASES = {"F": "forward", "B": "backward", "update": "optimizer"}
"""StepGraph.work's pass of a compute task -> its phase; other step tasks are "comm"."""

_MICROBATCH = re.compile(r"(?:^|\.)k(\d+)(?:\.|$)")  # parallel.step names: "F.d0.<layer>.k3.t0"


@dataclass(frozen=True)
class TraceView:
    """Per-unit and per-task facts; every field is optional (None / empty: not known).

    `node[u]` is unit u's node (a process of the Chrome trace), named `node_names`;
    per graph task: `flops`, `nbytes`, `phase`, `layer` ("" none) and `microbatch` (-1
    none); `memory[u]` unit u's planned peak memory (parallel.memory.MemoryBreakdown)."""

    node: np.ndarray | None = None
    node_names: Sequence[str] = ()
    flops: np.ndarray | None = None
    nbytes: np.ndarray | None = None
    phase: Sequence[str] | None = None
    layer: Sequence[str] | None = None
    microbatch: np.ndarray | None = None
    memory: dict[int, MemoryBreakdown] = field(default_factory=dict)


def view_of(scenario: Scenario, units: int) -> TraceView:
    """The view of a simulated scenario whose trace has `units` units (with offload the
    hosts come after the cluster's GPUs)."""
    g, step = scenario.graph, scenario.step
    node, names = _nodes(scenario.cluster.units_per_node, units)
    phase = layer = micro = None
    if step is not None and step.work:  # recsys steps keep no work map: phase unknown
        phase, layer = _passes(step, g.size)
        micro = np.array([_microbatch(n) for n in g.names], np.int64)
    return TraceView(node, names, np.asarray(g.flops, float), np.asarray(g.nbytes, float),
                     phase, layer, micro, {} if step is None else _memory(step, units))


def _nodes(per: int | None, n: int) -> tuple[np.ndarray | None, list[str]]:
    """Node of each unit: `per` consecutive units a node; units past the last whole node
    (offload's hosts) form one more process, "hosts". None: the cluster has no nodes."""
    if per is None or per < 1 or n <= per:
        return None, []
    whole = n // per
    node = np.minimum(np.arange(n) // per, whole)
    return node, [f"node {i}" for i in range(whole)] + (["hosts"] if n % per else [])


def _passes(step: StepGraph, n: int) -> tuple[list[str], list[str]]:
    """Per task its phase and layer names: compute tasks from StepGraph.work, the rest
    (collective steps, relays, joins) are communication."""
    phase, layer = ["comm"] * n, [""] * n
    layers = step.model.layers
    for t, (kind, idx) in step.work.items():  # type: ignore[union-attr]
        phase[t] = PHASES.get(kind, kind)
        if kind != "update" and idx:
            first, last = layers[idx[0]].name, layers[idx[-1]].name
            layer[t] = first if first == last else f"{first}..{last}"
    return phase, layer


def _microbatch(name: str) -> int:
    m = _MICROBATCH.search(name)
    return int(m.group(1)) if m else -1


def _memory(step: StepGraph, units: int) -> dict[int, MemoryBreakdown]:
    """Each simulated unit's stage memory plan (StepGraph.memory: one per pipeline stage)."""
    cfg, out = step.config, {}
    if len(step.memory) != cfg.pp:
        return {}
    for r in range(cfg.replicas):
        for p in range(cfg.pp):
            for t in range(cfg.tp):
                u = cfg.replica_rank(r, p, t)
                if u < units:
                    out[u] = step.memory[p][1]
    return out
