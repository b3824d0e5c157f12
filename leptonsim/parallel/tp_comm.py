"""Tensor-parallel collectives on a step's chains: spelled out as transfers (tp_mode
"full", by the configured algorithm, parallel.nccl) or one task of their exact
uncontended time (tp_mode "symmetric"), and the chain helpers the step builder's
compute shares with them. A mixin of the step builder (parallel.step), which owns the
state annotated here.
"""

from __future__ import annotations

import numpy as np

from .. import mesh
from ..graph import GraphBuilder
from ..hardware import Cluster
from . import collectives, nccl
from .config import ParallelConfig

RINGS = {"allreduce": collectives.ring_allreduce, "allgather": collectives.ring_allgather,
         "reducescatter": collectives.ring_reduce_scatter}
"""The tensor-parallel collectives as tp_mode 'full' spells them out (auto, ring)."""


class TensorParallelComm:
    """The step builder's tensor-parallel collectives and its chains' helpers."""

    cfg: ParallelConfig
    b: GraphBuilder
    cluster: Cluster
    cut_through: bool
    collectives: int
    collapsed: np.ndarray
    groups_seen: dict[tuple[int, ...], tuple[nccl.Group, np.ndarray]]
    seconds_seen: dict[tuple[str, tuple[int, ...], float], float]
    tp_groups: dict[tuple[int, int], list[int]]

    def _tp_collectives(self, chains: list[list[int]], d: int, s: int,
                        todo: list[tuple[str, float]]) -> None:
        """The tensor-parallel collectives `todo` ((kind, bytes) each), one after another
        on the group; in symmetric mode one task of their summed exact durations."""
        cfg = self.cfg
        if cfg.tp == 1 or not todo:
            return
        ranks = self._tp_group(d, s)
        if cfg.tp_mode == "symmetric":
            self.collectives += 1
            kinds = "+".join(kind for kind, _ in todo)
            seconds = sum(self._collapse(kind, ranks, nbytes) for kind, nbytes in todo)
            task = self.b.task(f"tp.{kinds}.d{d}.s{s}.{self.collectives}", duration_s=seconds,
                               pin=ranks[0], kind=f"tp_{kinds}", comm=True)
            self._append(chains[0], task)
            return
        for kind, nbytes in todo:
            self.collectives += 1
            name = f"tp.{kind}.d{d}.s{s}.{self.collectives}"
            self._spelled_out(chains, ranks, kind, nbytes, name)

    def _tp_group(self, d: int, s: int) -> list[int]:
        """The units of replica d's stage-s tensor-parallel group, in rank order."""
        key = (d, s)
        if key not in self.tp_groups:
            self.tp_groups[key] = [self.cfg.replica_rank(d, s, t) for t in range(self.cfg.tp)]
        return self.tp_groups[key]

    def _spelled_out(self, chains: list[list[int]], ranks: list[int], kind: str,
                     nbytes: float, name: str) -> None:
        """One tensor-parallel collective as transfers, by the configured algorithm."""
        ready = [self._started(c, r, name) for c, r in zip(chains, ranks, strict=True)]
        if kind == "allreduce" and self.cfg.collective == "hierarchical":
            group = nccl.group(self.cluster, ranks, self.cut_through)
            nccl.allreduce_seconds(group, "hierarchical", nbytes)  # refused where it does not apply
            nodes = nccl.nodes_of(self.cluster, ranks)
            at = {r: i for i, r in enumerate(ranks)}
            out = collectives.hierarchical_allreduce(
                self.b, nodes, nbytes, [[ready[at[r]] for r in node] for node in nodes], name)
            by_rank = {r: t for node, ends in zip(nodes, out, strict=True)
                       for r, t in zip(node, ends, strict=True)}
            done = [by_rank[r] for r in ranks]
        else:
            done = collectives.on_rings(RINGS[kind], self.b, mesh.rings(self.cluster, ranks),
                                        ranks, nbytes, ready, name)
        for chain, task in zip(chains, done, strict=True):
            chain[1] = task

    def _collapse(self, kind: str, ranks: list[int], nbytes: float) -> float:
        """The collective as one duration: its uncontended closed form over the group's
        own routes (parallel.nccl; an all-reduce by the configured algorithm, auto: the
        fastest, as NCCL picks). Its bytes are added to `collapsed`, per channel of each
        message's route, as the ring would send them (the network's energy)."""
        p, key = len(ranks), tuple(ranks)
        steps = 2 * (p - 1) if kind == "allreduce" else p - 1
        if key not in self.groups_seen:  # a group's routes and geometry, once per group
            pairs = zip(ranks, ranks[1:] + ranks[:1], strict=True)
            self.groups_seen[key] = (nccl.group(self.cluster, ranks, self.cut_through), np.array(
                [c for a, b in pairs for c in self.cluster.route(a, b)], np.int64))
        group, channels = self.groups_seen[key]
        np.add.at(self.collapsed, channels, steps * (nbytes / p))  # pair by pair, in order
        if (kind, key, nbytes) not in self.seconds_seen:
            self.seconds_seen[(kind, key, nbytes)] = self._seconds(kind, group, nbytes)
        return self.seconds_seen[(kind, key, nbytes)]

    def _seconds(self, kind: str, group: nccl.Group, nbytes: float) -> float:
        if kind != "allreduce":
            return nccl.ring_seconds(group, nbytes)
        algorithm = self.cfg.collective
        if algorithm == "auto":
            algorithm = nccl.choose(group, nbytes)
        return nccl.allreduce_seconds(group, algorithm, nbytes)

    def _started(self, chain: list[int], unit: int, name: str) -> int:
        """The chain's last task, or a zero task that starts an empty chain."""
        if chain[1] < 0:
            self._append(chain, self.b.task(f"start.{name}.u{unit}", duration_s=0.0, pin=unit,
                                            kind="start"))
        return chain[1]

    def _append(self, chain: list[int], task: int) -> None:
        if chain[1] >= 0:
            self.b.edge(chain[1], task)
        else:
            chain[0] = task
        chain[1] = task
