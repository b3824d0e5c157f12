"""Transformer Engine's tensor-parallel communication overlap (`tp_comm_overlap`):
sequence parallelism's all-gathers and reduce-scatters run beside the GEMMs they feed
or follow, split into chunks with the dependencies of the ring exchange, so the
links, their contention and the compute are all still simulated.

Transformer Engine's userbuffers (transformer_engine/pytorch/module/base.py,
`initialize_ub`, its default per-GEMM methods; Megatron-Core's `--tp-comm-overlap`,
which Megatron-LM allows only with sequence parallelism) and the decomposition of
Wang et al., "Overlap Communication with Dependent Computation via Decomposition in
Large Deep Learning Models", ASPLOS 2023, section 3:

- **ring exchange** (qkv_fprop, fc1_fprop, proj_dgrad, fc2_dgrad: the all-gather
  before a GEMM): the GEMM is split into tp chunks along the tokens; a rank computes
  the chunk it holds while sending it to its right neighbour, then each chunk that
  arrives while forwarding it on. Step j's chunk arrives j ring steps of x after the
  start, so with chunks of c the pair lasts c + (tp - 1) max(c, x) (`ring_exchange_s`).
  TE sends with the copy engines (`use_ce`, one SM): the GEMM keeps its SMs.
- **pipeline** (proj_fprop, fc2_fprop: the reduce-scatter after a GEMM): the GEMM is
  split into `num_splits` = 4 chunks; each chunk's output is reduce-scattered (a ring
  of tp - 1 steps) on the communication stream while the next chunk computes, one
  reduce-scatter after another: c + (n - 1) max(c, r) + r (`pipeline_s`), r a chunk's
  reduce-scatter.
- **bulk** (qkv_wgrad, fc1_wgrad: the reduce-scatter of the input gradient after the
  opener's backward): the whole reduce-scatter runs beside the weight-gradient GEMM,
  the last of the backward: rest + max(wgrad, reduce-scatter).

Pipeline and bulk kernels reduce on `COMM_SMS` = 16 SMs (TE's default `num_sm`): the
GEMMs beside them are priced on the SMs left (`_slowed`). ASSUMPTION: for the whole
GEMM, as if the communication kernel held its SMs throughout.

In symmetric mode (rank 0 of the group simulated) rank 0's chunk is followed around
the ring: a zero task on rank j where step j brings it, each hop a transfer on that
pair's route. By symmetry rank 0 holds its own step-j chunk at that moment, so a 0-byte
edge (a pure dependency) hands it to rank 0's GEMM chunk. The messages not simulated
are added to the collapsed bytes for the network's energy.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from ..models import Model
from ..ops.base import Gemm
from .context import token_split
from .tp_comm import TensorParallelComm
from .work import BACKWARD, FORWARD, LayerWork

if TYPE_CHECKING:
    from .step import Segment

PIPELINE_SPLITS = 4  # TE initialize_ub default num_splits of the "pipeline" method
COMM_SMS = 16        # TE initialize_ub default num_sm of the "pipeline" and "bulk" methods


def ring_exchange_s(c: float, x: float, n: int) -> float:
    """An all-gather of n ring steps' chunks exchanged under n GEMM chunks of c each,
    every step of x: the last chunk arrives at (n-1) x and each chunk waits for the
    previous one, so max(n c, c + (n-1) x) = c + (n-1) max(c, x)."""
    return c + (n - 1) * max(c, x)


def pipeline_s(c: float, r: float, n: int) -> float:
    """n GEMM chunks of c each, each followed by its reduce-scatter of r on one
    communication stream: c + (n-1) max(c, r) + r."""
    return c + (n - 1) * max(c, r) + r


def bulk_s(rest: float, w: float, r: float) -> float:
    """The backward but its weight gradient, then the weight gradient beside the whole
    reduce-scatter r of the input gradient."""
    return rest + max(w, r)


def _slowed(g: Gemm, sms: int) -> Gemm:
    """The GEMM on sms - COMM_SMS SMs, priced on all of them: its k (the loop every tile
    runs) stretched by sms / (sms - COMM_SMS). No SM count known: unchanged."""
    if sms <= COMM_SMS:
        return g
    return replace(g, k=math.ceil(g.k * sms / (sms - COMM_SMS)))


class TensorParallelOverlap(TensorParallelComm):
    """The step builder's tensor-parallel collectives, those beside a GEMM overlapped
    with it (a mixin of parallel.step's builder, which owns the state annotated here
    and defines the methods declared for the type checker)."""

    model: Model
    work_of: LayerWork
    first_forward: dict[tuple[int, int, int], int]
    last_backward: dict[tuple[int, int, int, int], int]

    if TYPE_CHECKING:  # the step builder's own (parallel.step)
        def _compute(self, chains: list[list[int]], d: int, s: int, seg: Segment, kind: str,
                     k: int) -> None: ...
        def _input_gather(self, seg: Segment) -> list[tuple[str, float]]: ...
        def _forward_collective(self, seg: Segment) -> tuple[str, float]: ...
        def _output_bytes(self, seg: Segment) -> float: ...
        def _input_bytes(self, seg: Segment) -> float: ...

    def _plan(self, seg: Segment, kind: str) -> tuple[str, Gemm | None, str, Gemm | None]:
        """(method, GEMM) overlapping the collective before the segment's compute and
        (method, GEMM) after it: "ring", "pipeline", "bulk", or "" and None where that
        collective runs alone. The GEMMs are the first to run (the first layer's first
        forward GEMM, the last layer's first backward GEMM) and the last (the last
        layer's last forward GEMM; the first layer's last backward GEMM, the opener's
        weight gradient)."""
        cfg, gemms = self.cfg, self.work_of.gemms
        if not cfg.tp_comm_overlap or cfg.tp == 1 or seg.ring or seg.exchange or (
                kind == "B" and cfg.recompute == "full"):  # recomputed collectives run again
            return "", None, "", None
        first, last = seg.layers[0], seg.layers[-1]
        if kind == "F":
            before = "ring" if seg.forward_before == "allgather" else ""
            after = "pipeline" if seg.forward_after == "reducescatter" else ""
            head, tail = gemms[first][FORWARD][:1], gemms[last][FORWARD][-1:]
        else:
            before = "ring" if seg.backward_before == "allgather" else ""
            after = "bulk" if seg.backward_after == "reducescatter" else ""
            head, tail = gemms[last][BACKWARD][:1], gemms[first][BACKWARD][-1:]
        before, after = (before if head else ""), (after if tail else "")
        return before, head[0] if before else None, after, tail[0] if after else None

    def _carve(self, seg: Segment, kind: str, flops: float, nbytes: float, gemms: list[Gemm],
               kernels: int) -> tuple[float, float, list[Gemm], int]:
        """The segment task's work without the GEMMs its overlapped collectives take
        (their chunks are tasks of their own). The bytes stay: each chunk is one GEMM
        kernel whose operands stream under its tiles (the roofline's max, not the sum a
        task of several kernels pays), so the step's traffic is counted once, as unsplit."""
        _, head, _, tail = self._plan(seg, kind)
        rest = list(gemms)
        for g in (head, tail):
            if g is not None:
                rest.remove(g)
                flops -= g.flops
                kernels = max(1, kernels - 1)
        return flops, nbytes, rest, kernels

    # -- building --------------------------------------------------------------------
    def _overlapped(self, chains: dict[int, list[list[int]]], s: int, seg: Segment, kind: str,
                    k: int) -> bool:
        """Build the segment and its collectives on every replica of `chains`, those
        beside a GEMM overlapped with it; False (nothing built) where none is."""
        before, head, after, tail = self._plan(seg, kind)
        if not before and not after:
            return False
        if kind == "F":
            todo_before = self._input_gather(seg)
            todo_after = [self._forward_collective(seg)] if seg.forward_after else []
        else:
            todo_before = [(seg.backward_before, self._output_bytes(seg))] * bool(seg.backward_before)
            todo_after = [(seg.backward_after, self._input_bytes(seg))] * bool(seg.backward_after)
        for d, cs in chains.items():
            name = f"tpo.{kind}.d{d}.s{s}.{self.model.layers[seg.layers[0]].name}.k{k}"
            ranks = [self.cfg.replica_rank(d, s, t) for t in range(self.cfg.tp)]
            if head is not None:
                firsts = self._ring_exchange(cs, ranks, todo_before[0][1], head, f"{name}.ag")
                for i in seg.layers if kind == "F" else ():  # the chunks run the layer first
                    for t, task in zip(self.cfg.simulated_tp_ranks(), firsts, strict=True):
                        self.first_forward.setdefault((d, i, t), task)
            else:
                self._tp_collectives(cs, d, s, todo_before)
            self._compute(cs, d, s, seg, kind, k)
            if tail is not None and after == "pipeline":
                self._pipeline(cs, ranks, todo_after[0][1], tail, f"{name}.rs")
            elif tail is not None:  # bulk
                self._bulk(cs, ranks, todo_after[0][1], tail, f"{name}.rs", seg, d, k)
            else:
                self._tp_collectives(cs, d, s, todo_after)
        return True

    def _piece(self, chain: list[int], unit: int, g: Gemm, name: str, after: int) -> int:
        """One GEMM chunk on `unit`, after the chain's last task and after `after`."""
        task = self.b.task(name, flops=float(g.flops), nbytes=0.0, pin=unit,
                           kind="gemm.overlapped", gemms=[g], kernels=1)
        if after >= 0 and after != chain[1]:
            self.b.edge(after, task)
        self._append(chain, task)
        return task

    def _ring_exchange(self, chains: list[list[int]], ranks: list[int], nbytes: float,
                       g: Gemm, name: str) -> list[int]:
        """The all-gather before GEMM g as TE's ring exchange: chunk j computed once
        ring step j has brought it (step 0: the rank's own). Returns the first chunks."""
        p = len(ranks)
        start = [self._started(c, r, name) for c, r in zip(chains, ranks, strict=False)]
        steps = self._ring_steps(ranks, nbytes / p, p - 1, start, name)
        chunk = token_split([g], p)[0]
        pieces = [[self._piece(chain, ranks[ti], chunk, f"{name}.gemm{j}.t{ti}", held[ti])
                   for ti, chain in enumerate(chains)] for j, held in enumerate(steps)]
        return pieces[0]

    def _pipeline(self, chains: list[list[int]], ranks: list[int], nbytes: float, g: Gemm,
                  name: str) -> None:
        """The reduce-scatter after GEMM g as TE's pipeline: PIPELINE_SPLITS chunks, each
        one's reduce-scatter after it and after the previous one's."""
        chunk = token_split([_slowed(g, self._sms())], PIPELINE_SPLITS)[0]
        comm = [-1] * len(chains)  # per rank: the last reduce-scatter's end
        for j in range(PIPELINE_SPLITS):
            pieces = [self._piece(c, ranks[ti], chunk, f"{name}.gemm{j}.t{ti}", -1)
                      for ti, c in enumerate(chains)]
            start = [self._join(ranks[ti], [pieces[ti], comm[ti]], f"{name}.{j}.t{ti}")
                     if comm[ti] >= 0 else pieces[ti] for ti in range(len(chains))]
            comm = self._ring_steps(ranks, nbytes / PIPELINE_SPLITS / len(ranks),
                                    len(ranks) - 1, start, f"{name}.{j}")[-1]
        for ti, chain in enumerate(chains):
            chain[1] = self._join(ranks[ti], [chain[1], comm[ti]], f"{name}.done.t{ti}")

    def _bulk(self, chains: list[list[int]], ranks: list[int], nbytes: float, g: Gemm,
              name: str, seg: Segment, d: int, k: int) -> None:
        """The reduce-scatter of the input gradient beside the weight-gradient GEMM g."""
        start = [c[1] for c in chains]
        comm = self._ring_steps(ranks, nbytes / len(ranks), len(ranks) - 1, start, name)[-1]
        for ti, chain in enumerate(chains):
            w = self._piece(chain, ranks[ti], _slowed(g, self._sms()), f"{name}.wgrad.t{ti}", -1)
            t = self.cfg.simulated_tp_ranks()[ti]
            for i in seg.layers:  # the gradients are ready once the weight gradient is
                if (d, i, t, k) in self.last_backward:
                    self.last_backward[(d, i, t, k)] = w
            chain[1] = self._join(ranks[ti], [w, comm[ti]], f"{name}.done.t{ti}")

    def _join(self, unit: int, tasks: list[int], name: str) -> int:
        task = self.b.task(f"join.{name}", duration_s=0.0, pin=unit, kind="join")
        for t in dict.fromkeys(tasks):
            if t >= 0:
                self.b.edge(t, task)
        return task

    def _ring_steps(self, ranks: list[int], chunk: float, steps: int, start: list[int],
                    name: str) -> list[list[int]]:
        """Per step j = 0..steps and simulated rank, the task after which the rank holds
        step j's chunk (step 0: `start`); every rank sends to its right neighbour. With
        rank 0 alone simulated, its chunk is followed around the ring (a zero task on
        rank j where step j brings it): by symmetry rank 0 holds its step-j chunk then."""
        b, p, out = self.b, len(ranks), [list(start)]
        alone = len(start) == 1 and p > 1
        for j in range(1, steps + 1):
            prev, cur = out[-1], []
            for i in range(len(start)):
                at = ranks[j % p] if alone else ranks[i]
                task = b.task(f"{name}.step{j}.r{i}", duration_s=0.0, pin=at, kind="ring_exchange")
                b.edge(prev[i] if alone else prev[(i - 1) % p], task, chunk)
                cur.append(task)
            out.append(cur)
        if alone:
            self._others_bytes(ranks, chunk, steps)
        return out

    def _others_bytes(self, ranks: list[int], chunk: float, steps: int) -> None:
        """Symmetric mode: per channel, the bytes of the ring's messages not simulated
        (every pair sends `steps` chunks; pairs (j-1, j), j <= steps, sent one each):
        their network energy."""
        route, p = self.cluster.route, len(ranks)
        for i in range(p):
            sent = 1 if 1 <= (i + 1) % p <= steps and (i + 1) % p == i + 1 else 0
            for c in route(ranks[i], ranks[(i + 1) % p]):
                self.collapsed[c] += (steps - sent) * chunk

    def _sms(self) -> int:
        cluster = self.cluster
        return int(cluster.unit_types[int(cluster.unit_type[0])].sms)
