"""The analytic step-time, memory, energy and cost estimate of every configuration.

Per-layer costs are linear in the micro-batch size (the ops' FLOPs and bytes are a
per-sample slope plus a weight-bytes intercept), so a stage's roofline time is a
vector sum over its layers. Stage tables are computed once per distinct (tp, virtual
stages, micro-batch size) with the exact cost-balanced partition; everything per
configuration is NumPy column arithmetic:

  t_f, t_b   slowest device's forward / backward per micro-batch: its chunks' compute
             (the cost model's work_seconds, with the layers' GEMMs at that micro-batch
             size and tp, parallel/work.py, as the step graph's tasks hold them;
             Roofline by default) plus their tensor-parallel
             all-reduces (formulas.ring_allreduce_seconds, over the tp pair's route);
             recompute adds the forward, its all-reduces included, to the backward
  pipeline   (m + (p - 1)/v)(t_f + t_b) + 2(p - 1) boundary hops  [bubble (p-1)/v (t_f+t_b)]
  dp sync    ring all-reduce of the device's gradients over the dp pair's route in n
             buckets run one after another, their gradients ready evenly over the last
             micro-batch's backward T: exposed max(R/n, R - T (n-1)/n); under ZeRO a
             reduce-scatter (R/2) so, then stages 1 and 2 all-gather the parameters
             (R/2, exposed); from stage 2 the other micro-batches' reduce-scatters are
             exposed too (R/2 each), and stage 3 all-gathers them before every micro-batch's
             forward and backward (R/2 each, exposed: the simulated rings advance at
             task boundaries, so they hide little)
  cp ring    context parallelism (parallel.context): every layer on s/cp tokens (the
             per-sample slopes / cp), and per attention layer the ring's exposed
             (cp - 1) max(0, x - c) for blocks of c = layer / cp and transfers x of its
             K, V (backward: and dK, dV) over the cp pair's route; the gradient ring and
             ZeRO over dp x cp
  optimizer  the device's update, 1/dp of it under ZeRO (1/(dp cp) with cp)
  input      the step lasts at least the busiest host's input pipeline
             (parallel.step.input_seconds)
  memory     model state (16 B/param fp16 Adam; parallel.memory.model_state_bytes by
             ZeRO stage) + activations x micro-batches in flight: each op's saved tensors
             (parallel.memory.layer_saved), or with full recompute its layers'
             checkpoints plus one layer rebuilt (kept_activations)
It is an estimate for pruning; the simulator confirms the best candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ..cost import DEFAULT, CostModel
from ..formulas import ring_allreduce_seconds
from ..hardware import Cluster, ComputeUnit
from ..models import Model
from ..parallel.config import LAYOUTS, ParallelConfig
from ..parallel.context import ring_bytes
from ..parallel.memory import (
    SHARDED_FROM,
    kept_activations,
    layer_saved,
    model_state_bytes,
)
from ..parallel.pipeline import schedule
from ..parallel.plan_memory import in_flight
from ..parallel.step import input_seconds
from ..parallel.tensor import LayerRole, layer_roles
from ..parallel.work import BACKWARD, CORE, FORWARD, LayerWork, layer_work
from .space import SCHEDULES, Space


@dataclass(frozen=True)
class Estimate:
    step_s: np.ndarray
    compute_s: np.ndarray       # per device: m (t_f + t_b) without communication
    bubble_s: np.ndarray
    tp_comm_s: np.ndarray
    cp_comm_s: np.ndarray       # context parallelism's exposed ring transfers
    pp_comm_s: np.ndarray
    dp_exposed_s: np.ndarray
    optimizer_s: np.ndarray
    memory_bytes: np.ndarray    # the fullest device
    fits: np.ndarray
    energy_j: np.ndarray
    cost_usd: np.ndarray


@dataclass(frozen=True)
class LayerTable:
    """Per layer, for one tp: slope/intercept of FLOPs and bytes, forward and backward."""

    ff: np.ndarray
    fb0: np.ndarray
    fb1: np.ndarray
    bf: np.ndarray
    bb0: np.ndarray
    bb1: np.ndarray
    params: np.ndarray          # per device (split layers / tp)
    act: np.ndarray             # bytes kept for the backward per sample (on one tp rank)
    ar_fwd: np.ndarray          # bytes per sample all-reduced after the layer, forward
    ar_bwd: np.ndarray          # (an all-gather, half a ring all-reduce, counts half)
    n_fwd: np.ndarray           # collectives after the layer (all-gathers count half):
    n_bwd: np.ndarray           # each pays the ring's latency
    update_flops: np.ndarray    # per device
    update_bytes: np.ndarray
    update_kernels: np.ndarray


class Estimator:
    def __init__(self, model: Model, cluster: Cluster, batch: int, *, dtype_bytes: int = 2,
                 optimizer: str = "adam", training: bool = True,
                 cost: CostModel = DEFAULT, input_s_per_sample: float = 0.0,
                 bucket_bytes: float = 25e6) -> None:
        self.model, self.cluster, self.batch, self.cost = model, cluster, batch, cost
        self.dtype, self.optimizer, self.training = dtype_bytes, optimizer, training
        self.input_s_per_sample, self.bucket_bytes = input_s_per_sample, bucket_bytes
        self.unit: ComputeUnit = cluster.unit_types[int(cluster.unit_type[0])]
        self._tables = cache(self._table)
        self._stages = cache(self._stage)
        self._paths = cache(self._path)
        self._ranges = cache(self._partition)
        self._inputs = cache(self._input)
        self._works = cache(self._work)

    # -- per layer ----------------------------------------------------------------------
    def _table(self, tp: int, sp: bool = False) -> LayerTable:
        roles = layer_roles(self.model, sp=sp) if tp > 1 else None
        rows = []
        phase = "update_adam" if self.optimizer == "adam" else "update_sgd"
        for i, layer in enumerate(self.model.layers):
            share = tp if roles and (roles[i].sharded or roles[i].sequence) else 1
            f1, f2 = (layer.cost(b, "forward", self.dtype) for b in (1, 2))
            b1 = [layer.cost(1, p, self.dtype) for p in ("backward_data", "backward_weights")]
            b2 = [layer.cost(2, p, self.dtype) for p in ("backward_data", "backward_weights")]
            bf1, bb1 = sum(c.flops for c in b1), sum(c.bytes for c in b1)
            bf2, bb2 = sum(c.flops for c in b2), sum(c.bytes for c in b2)
            out = float(np.prod(layer.output_shape)) * self.dtype
            up = layer.cost(1, phase, self.dtype)  # type: ignore[arg-type]
            # collectives around the layer, as fractions of a ring all-reduce (a reduce-
            # scatter or an all-gather is half of one): after it on its output, before it
            # (sequence parallelism's gathers) on its input; backward the other way round
            inp = float(np.prod(layer.input_shape)) * self.dtype
            role = roles[i] if roles else None
            after_f, before_f = _ring_part(role, "forward_after"), _ring_part(role, "forward_before")
            after_b, before_b = (_ring_part(role, "backward_after"),
                                 _ring_part(role, "backward_before"))
            n_f, n_b = after_f + before_f, after_b + before_b
            ar_f, ar_b = after_f * out + before_f * inp, after_b * inp + before_b * out
            rows.append(((f2.flops - f1.flops) / share, (2 * f1.bytes - f2.bytes) / share,
                         (f2.bytes - f1.bytes) / share, (bf2 - bf1) / share,
                         (2 * bb1 - bb2) / share, (bb2 - bb1) / share, layer.params / share,
                         out / share, ar_f, ar_b, n_f, n_b, up.flops / share, up.bytes / share,
                         up.kernels))
        cols = np.array(rows).T
        cols[7] = layer_saved(self.model, (0, len(self.model.layers)), tp=tp, dtype_bytes=self.dtype,
                              sp=sp and tp > 1)
        return LayerTable(*cols)

    def _work(self, tp: int, mb: int, sp: bool = False, cp: int = 1) -> LayerWork:
        """The layers' GEMMs and kernels at micro-batch mb on one of tp x cp ranks."""
        roles = layer_roles(self.model, sp=sp) if tp > 1 else [LayerRole(False, "", "")] * len(
            self.model.layers)
        return layer_work(self.model, mb, self.dtype, tp, roles, cp)

    def _stage(self, tp: int, vstages: int, mb: int, sp: int = 0, cp: int = 1
               ) -> tuple[float, ...]:
        """Slowest virtual stage at micro-batch mb on s/cp tokens: (t_f, t_b, ar_f bytes,
        ar_b bytes, params, activations per micro-batch, full recompute's checkpoints and
        rebuilt layer per micro-batch, boundary bytes, update s, collectives forward,
        backward; its attention layers, their mean forward and backward seconds and
        K, V bytes per ring message)."""
        t, w = self._tables(tp, bool(sp)), self._works(tp, mb, bool(sp), cp)
        fwd = self.cost.work_seconds(t.ff * mb / cp, t.fb0 + t.fb1 * mb / cp, self.unit,
                                     gemms=w.rows((FORWARD,)), kernels=w.kernels[:, FORWARD])
        bwd = self.cost.work_seconds(t.bf * mb / cp, t.bb0 + t.bb1 * mb / cp, self.unit,
                                     gemms=w.rows((BACKWARD,)), kernels=w.kernels[:, BACKWARD])
        ranges = self._ranges(tp, vstages)
        sums = [(fwd[a:z].sum(), bwd[a:z].sum(), a, z) for a, z in ranges]
        f, b, a, z = max(sums, key=lambda r: r[0] + r[1])
        full = [kept_activations(self.model, (a, z), tp=tp, in_flight=k, dtype_bytes=self.dtype,
                                 recompute="full", sp=bool(sp) and tp > 1) * mb for k in (1, 2)]
        upd = self.cost.work_seconds(t.update_flops[a:z].sum(), t.update_bytes[a:z].sum(),
                                     self.unit, kernels=t.update_kernels[a:z].sum())
        att = [i for i in range(a, z) if self.model.layers[i].kind == "attention"]
        kv = (ring_bytes(self.model.layers[att[0]], ParallelConfig(
            tp=tp, cp=cp, batch=mb, dtype_bytes=self.dtype), "F") if att else 0.0)
        share = mb / cp  # a rank's samples of s/cp tokens
        return (float(f), float(b), float(t.ar_fwd[a:z].sum() * share),
                float(t.ar_bwd[a:z].sum() * share),
                float(max(t.params[x:y].sum() for x, y in ranges)), float(t.act[a:z].sum() * share),
                (full[1] - full[0]) / cp, (2 * full[0] - full[1]) / cp,
                float(np.prod(self.model.layers[z - 1].output_shape)) * self.dtype * share,
                float(upd), float(t.n_fwd[a:z].sum()), float(t.n_bwd[a:z].sum()), len(att),
                float(fwd[att].mean()) if att else 0.0, float(bwd[att].mean()) if att else 0.0,
                kv)

    def _partition(self, tp: int, vstages: int) -> list[tuple[int, int]]:
        """Stages balanced at one sample per micro-batch, reused for every size: the
        balance barely moves with it, and it saves a partition per table."""
        t, w = self._tables(tp), self._works(tp, 1)
        per_layer = self.cost.work_seconds(t.ff + t.bf, t.fb0 + t.fb1 + t.bb0 + t.bb1, self.unit,
                                           gemms=w.rows(), kernels=w.kernels[:, :CORE].sum(axis=1))
        return balanced_ranges(per_layer, vstages)

    def _path(self, layout: int, dp: int, pp: int, tp: int, cp: int = 1) -> tuple[float, ...]:
        """(L, G) per ring (tp, pp, dp x cp, cp) under this layout: the slowest neighbour
        pair of unit 0's ring along that dimension sets the ring's pace."""
        cfg = ParallelConfig(dp=dp, pp=pp, tp=tp, cp=cp, batch=dp, layout=LAYOUTS[layout])
        rings = ([cfg.rank(0, 0, t) for t in range(tp)], [cfg.rank(0, p, 0) for p in range(pp)],
                 [cfg.replica_rank(r, 0, 0) for r in range(cfg.replicas)],
                 [cfg.rank(0, 0, 0, c) for c in range(cp)])
        out: list[float] = []
        for ring in rings:
            pairs = [self.cluster.path_cost(a, b) for a, b in zip(ring, ring[1:] + ring[:1], strict=True)
                     if a != b]
            out += [max((p[0] for p in pairs), default=0.0), max((p[1] for p in pairs), default=0.0)]
        return tuple(out)

    def _input(self, layout: int, dp: int, pp: int, tp: int) -> float:
        cfg = ParallelConfig(dp=dp, pp=pp, tp=tp, batch=self.batch, layout=LAYOUTS[layout],
                             input_s_per_sample=self.input_s_per_sample)
        return input_seconds(cfg, self.cluster)

    # -- per configuration ---------------------------------------------------------------
    def __call__(self, space: Space) -> Estimate:
        mb = self.batch // (space.dp * space.microbatches)
        keys = np.stack([space.tp, space.pp * space.chunks, mb, space.sp, space.cp])
        stage = _lookup(keys, lambda k: self._stages(*k))
        paths = _lookup(np.stack([space.layout, space.dp, space.pp, space.tp, space.cp]),
                        lambda k: self._paths(*k))
        (t_f, t_b, ar_f, ar_b, params, act, ckpt, rebuilt, boundary, upd, n_f, n_b,
         n_att, att_f, att_b, kv) = stage.T
        tp, pp, m, v = (space.tp.astype(float), space.pp.astype(float),
                        space.microbatches.astype(float), space.chunks.astype(float))
        cp = space.cp.astype(float)
        dp = space.dp * cp  # the ranks that reduce gradients and shard ZeRO's state
        tp_f = _ring(tp, ar_f, n_f * paths[:, 0], paths[:, 1])  # n rings: n latencies
        tp_b = _ring(tp, ar_b, n_b * paths[:, 0], paths[:, 1])
        cp_f = _ring_exposed(cp, n_att, att_f, paths[:, 6] + kv * paths[:, 7])
        cp_b = _ring_exposed(cp, n_att, att_b, paths[:, 6] + 2 * kv * paths[:, 7]) * self.training
        dev_f = v * (t_f + tp_f + cp_f)
        # full recompute runs the forward again, its tensor-parallel all-reduces too
        dev_b = v * (t_b + tp_b + cp_b) + np.where(space.recompute, dev_f, 0.0)
        per_mb = dev_f + dev_b
        bubble = (pp - 1) / v * per_mb
        hops = np.where(pp > 1, 2 * (pp - 1) * (paths[:, 2] + boundary * paths[:, 3]), 0.0)
        grads = params * v * self.dtype
        dp_ring = _ring(dp, grads, paths[:, 4], paths[:, 5]) if self.training else np.zeros_like(dp)
        buckets = np.maximum(1.0, np.ceil(grads / self.bucket_bytes))
        zero = space.zero
        dp_ring = np.where(zero > 0, dp_ring / 2, dp_ring)  # a reduce-scatter is half a ring
        dp_exposed = _exposed(dp_ring, dev_b, buckets)
        gather = np.where((zero == 1) | (zero == 2), dp_ring, 0.0)  # after the update
        # stage 3: two gathers per micro-batch, charged whole: the simulated ring advances
        # at compute-task boundaries (docs/model.md), so little of it hides
        gather += np.where(zero == 3, 2 * m * dp_ring, 0.0)
        gather += np.where(zero >= 2, (m - 1) * dp_ring, 0.0)  # earlier micro-batches' reductions
        dp_exposed = dp_exposed + gather
        opt = upd * v / np.where(zero > 0, dp, 1.0) if self.training else np.zeros_like(v)
        step = m * per_mb + bubble + hops + dp_exposed + opt
        if self.input_s_per_sample:
            step = np.maximum(step, _lookup(np.stack([space.layout, space.dp, space.pp, space.tp]),
                                            lambda k: (self._inputs(*k),))[:, 0])
        memory = self._memory(space, params * v, act * v, ckpt * v, rebuilt * v, m, pp, dp)
        busy = m * (v * (t_f + t_b) + np.where(space.recompute, v * t_f, 0.0)) + opt
        u, units = self.unit, float(self.cluster.size)
        energy = units * (u.idle_power_w * step + (u.busy_power_w - u.idle_power_w) * busy)
        tp_comm = m * v * (tp_f + tp_b + np.where(space.recompute, tp_f, 0.0))
        cp_comm = m * v * (cp_f + cp_b + np.where(space.recompute, cp_f, 0.0))
        return Estimate(step, m * v * (t_f + t_b), bubble, tp_comm, cp_comm, hops, dp_exposed,
                        opt, memory, memory <= u.memory_bytes, energy,
                        units * u.price_per_hour * step / 3600.0)

    def _memory(self, space: Space, params: np.ndarray, act: np.ndarray, ckpt: np.ndarray,
                rebuilt: np.ndarray, m: np.ndarray, pp: np.ndarray,
                dp: np.ndarray) -> np.ndarray:
        dt = self.dtype
        # bytes per parameter: the memory model's terms, each divided by dp from its
        # ZeRO stage on (parallel.memory.model_state_bytes)
        terms = model_state_bytes(1.0, 0.0, optimizer=self.optimizer, dtype_bytes=dt)
        state = sum(t / np.where(space.zero >= stage, dp, 1.0)
                    for t, stage in zip(terms, SHARDED_FROM, strict=True)) if self.training else dt
        in_flight = _lookup(np.stack([space.schedule, space.pp, space.microbatches,
                                      space.chunks]), _mean_in_flight)[:, 0]
        if not self.training:
            return params * state + act
        kept = np.where(space.recompute, in_flight * ckpt + rebuilt, in_flight * act)
        return params * state + kept


def balanced_ranges(costs: np.ndarray, stages: int, iterations: int = 40) -> list[tuple[int, int]]:
    """Contiguous stages whose slowest is within float resolution of the optimum:
    bisection on the bottleneck, each probe a greedy fill by searchsorted on prefix
    sums (O(stages log n)). pipeline.partition is exact but O(n stages log n) in
    Python, too slow for the thousands of tables a search needs."""
    prefix = np.concatenate([[0.0], np.cumsum(costs)])
    lo, hi = float(costs.max()), float(prefix[-1])
    best = _greedy(prefix, stages, hi)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        ranges = _greedy(prefix, stages, mid)
        if ranges is None:
            lo = mid
        else:
            hi, best = mid, ranges
    assert best is not None
    return best


def _greedy(prefix: np.ndarray, stages: int, bound: float) -> list[tuple[int, int]] | None:
    """Fill stages up to `bound` from the left; None if the layers do not fit."""
    n, start, out = len(prefix) - 1, 0, []
    for k in range(stages):
        left = stages - k - 1  # every later stage needs at least one layer
        end = int(np.searchsorted(prefix, prefix[start] + bound, side="right")) - 1
        end = min(max(end, start + 1), n - left)
        if prefix[end] - prefix[start] > bound * (1 + 1e-12):
            return None
        out.append((start, end))
        start = end
    return out if start == n else None


def _exposed(ring: np.ndarray, behind: np.ndarray, buckets: np.ndarray) -> np.ndarray:
    """What n bucketed collectives of `ring` seconds in all leave exposed, their buckets
    ready evenly over `behind` seconds of compute: max(R/n, R - T (n-1)/n)."""
    return np.maximum(ring / buckets, ring - behind * (buckets - 1) / buckets)


def _ring_exposed(cp: np.ndarray, layers: np.ndarray, layer_s: np.ndarray,
                  transfer_s: np.ndarray) -> np.ndarray:
    """Ring attention's exposed transfers: per layer (cp - 1) max(0, x - c) for blocks of
    c = layer_s / cp (parallel.context's closed form; 0 at cp = 1)."""
    return layers * (cp - 1) * np.maximum(0.0, transfer_s - layer_s / cp)


def _ring(p: np.ndarray, nbytes: np.ndarray, lat: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Uncontended ring all-reduce over the neighbour route of latency `lat` and
    seconds per byte `gap` (0 for a ring of one, which costs nothing)."""
    with np.errstate(divide="ignore"):
        return ring_allreduce_seconds(p, nbytes, lat, 1.0 / gap)


def _ring_part(role: LayerRole | None, where: str) -> float:
    """A collective of the layer's role as a fraction of a ring all-reduce's traffic."""
    kind = getattr(role, where) if role is not None else ""
    return {"": 0.0, "allreduce": 1.0}.get(kind, 0.5)  # reduce-scatter, all-gather: half


def _mean_in_flight(key: tuple[int, ...]) -> tuple[float]:
    """Micro-batches the first stage (the fullest) keeps in flight, per chunk on average,
    from the schedule itself, as parallel.plan_memory counts them: GPipe m, 1F1B
    min(pp, m), interleaved more (its warm-up runs ahead on every chunk)."""
    kind, pp, m, chunks = key
    order = schedule(SCHEDULES[kind], pp, m, chunks)[0]
    return (sum(in_flight(order, c) for c in range(chunks)) / chunks,)


def _lookup(keys: np.ndarray, compute) -> np.ndarray:  # type: ignore[no-untyped-def]
    """compute(key) once per distinct column of keys; rows back in configuration order."""
    uniq, inverse = np.unique(keys, axis=1, return_inverse=True)
    table = np.array([compute(tuple(int(x) for x in col)) for col in uniq.T], dtype=float)
    return table[inverse.ravel()]
