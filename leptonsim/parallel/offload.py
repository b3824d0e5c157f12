"""Optimizer and activation offload over each GPU's PCIe link to its host CPU.

Optimizer offload follows ZeRO-Offload (Ren et al., "ZeRO-Offload: Democratizing
Billion-Scale Model Training", USENIX ATC 2021, sections 4.1 and 4.2, Figures 2 and 5):
the optimizer state and the fp32 master weights live in host memory, so a GPU keeps its
fp16 weights and gradients; each rank's reduced gradients (its ZeRO shard, 2 bytes a
parameter) go device-to-host as their bucket is reduced, overlapping the backward; the
host CPU runs Adam on them (DeepSpeed's CPU-Adam, section 5.1) once every gradient is in
(the step needs them all: gradient clipping's global norm), one bucket after another; and
each updated bucket's fp16 parameters go host-to-device as soon as it is done, as
DeepSpeed's CPU-Adam copies a finished tile while it updates the next. The paper's
communication is 4 bytes per parameter per step (2 down, 2 up). Its one-step delayed
parameter update is not modelled. ZeRO-Offload is built on ZeRO-2 (each rank offloads its
own shard), so zero = 0..2; zero = 3 (ZeRO-Infinity's parameter offload: Rajbhandari et
al., "ZeRO-Infinity: Breaking the GPU Memory Wall for Extreme Scale Deep Learning", SC
2021) is not modelled.

Activation offload follows TransformerEngine's and Megatron-Core's CPU offloading of
activations (and DeepSpeed's activation-checkpointing `cpu_checkpointing` in spirit):
the tensors a layer saves for its backward go device-to-host after its forward and come
back host-to-device before its backward, on side streams, overlapping compute. Here the
copy back of a segment is issued when the backward two segments later in the model
(the one before the one before it) ends, so it overlaps the next backward (the
second-to-last segment's when the last one's ends: nothing runs in between); the last
segment of each virtual stage, whose backward comes first, stays on the GPU. Memory
keeps what is in flight: per in-flight micro-batch the stage's last layer, and for one
micro-batch the two consecutive layers (the layer's and the next's) being computed and
moved. Full recompute is not combined with it (its checkpoints are what would move).

The host side is simulated, not assumed: `with_hosts` adds a host unit per GPU and a
link between them (`Host.link`, its PCIe generation from presets/hosts.toml), so the
transfers contend on the link's two directions like any other traffic, and the CPU's
Adam runs as fixed-duration tasks on the host unit. Host tasks are marked as stand-ins
(graph.comm): they are not the accelerators' work, so work, capacity, MFU and the
breakdown count the GPUs alone, as without offload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..graph import GraphBuilder
from ..hardware import Cluster, ComputeUnit, Link, LinkSpec
from ..models import Model
from .config import ParallelConfig
from .memory import MemoryBreakdown, layer_saved

if TYPE_CHECKING:
    from .step import _StepBuilder
    from .sync import DataParallelSync


@dataclass(frozen=True)
class Host:
    """What offload needs of the hosts: each GPU's link to its host, and the Adam rate of
    one node's CPUs (parameters per second; a node's GPUs share it evenly, as DeepSpeed
    binds each rank's CPU-Adam threads to its own cores)."""

    link: LinkSpec
    adam_params_per_s: float

    def __post_init__(self) -> None:
        if not self.adam_params_per_s > 0:
            raise ValueError(f"the CPU-Adam rate must be > 0, got {self.adam_params_per_s}")


def problem(cfg: ParallelConfig) -> tuple[str, str, object] | None:
    """(key, expected, found) of a configuration offload does not model, or None."""
    if not (cfg.offload_optimizer or cfg.offload_activations):
        return None
    key = "optimizer" if cfg.offload_optimizer else "activations"
    if not cfg.training:
        return key, "false for inference (offload moves training state)", True
    if cfg.offload_optimizer and cfg.zero == 3:
        return "optimizer", "zero 0, 1 or 2 with optimizer offload (ZeRO-Offload is built " \
                            "on ZeRO-2; zero 3's parameter offload is not modelled)", cfg.zero
    if cfg.ep > 1:
        return key, "ep = 1 with offload (expert gradients are not offloaded)", cfg.ep
    if cfg.offload_activations and cfg.fuse:
        return "activations", "fuse = false with activation offload (a fused run of " \
                              "layers would send its tensors only after all of it)", True
    if cfg.offload_activations and cfg.recompute == "full":
        return "activations", "recompute none or selective with activation offload (full " \
                              "recompute's checkpoint offload is not modelled)", cfg.recompute
    return None


def check(cfg: ParallelConfig, host: Host | None) -> None:
    """Raise ValueError for offload build_step cannot model, or without a host."""
    bad = problem(cfg)
    if bad is not None:
        key, expected, found = bad
        raise ValueError(f"offload {key}: expected {expected}, found {found!r}")
    if (cfg.offload_optimizer or cfg.offload_activations) and host is None:
        raise ValueError("offload needs each unit's host link (a Host)")


def host_unit(cfg: ParallelConfig, unit: int) -> int:
    """The index of a GPU's host unit in the cluster with_hosts builds."""
    return cfg.units + unit


def with_hosts(cluster: Cluster, host: Host) -> Cluster:
    """The cluster with a host unit per unit ("gpu3.host") behind its own link
    ("gpu3.pcie"), appended after the units and links, so every unit, channel and route
    of the cluster keeps its index. A host runs only fixed-duration tasks; its peak and
    bandwidth (one node's CPU-Adam rate, 28 bytes per parameter) time nothing else."""
    rate = host.adam_params_per_s
    hosts = tuple(ComputeUnit(f"{u.name}.host", peak_flops=rate, memory_bandwidth=28 * rate)
                  for u in cluster.units)
    links = tuple(Link(f"{u.name}.pcie", u.name, h.name, host.link)
                  for u, h in zip(cluster.units, hosts, strict=True))
    return replace(cluster, units=cluster.units + hosts, links=cluster.links + links,
                   _route_cache={}, _parents={})


def adam_seconds(params: float, host: Host, units_per_node: int | None) -> float:
    """Seconds one rank's share of its node's CPUs takes to update `params` with Adam."""
    return params * (units_per_node or 1) / host.adam_params_per_s


# -- memory ----------------------------------------------------------------------------

def offloaded_activations(model: Model, layers: tuple[int, int], cfg: ParallelConfig,
                          sharded: Sequence[bool], in_flight: int) -> float:
    """Activation bytes of one device of a chunk that live on the host (module docstring):
    all it would keep, less the last layer's per in-flight micro-batch and one micro-
    batch's two consecutive layers in flight."""
    saved = layer_saved(model, layers, tp=cfg.tp, dtype_bytes=cfg.dtype_bytes,
                        selective=cfg.recompute == "selective", sharded=sharded,
                        sp=cfg.sp and cfg.tp > 1)
    moved = saved[:-1]
    window = max((a + b for a, b in zip(moved, moved[1:], strict=False)), default=sum(moved))
    return (in_flight * sum(moved) - window) * cfg.microbatch_size


def on_gpu(m: MemoryBreakdown, offloaded_activation_bytes: float,
           cfg: ParallelConfig) -> MemoryBreakdown:
    """A chunk's memory with its offloaded terms on the host: the optimizer state and
    master weights (optimizer offload), the offloaded activations (activation offload)."""
    return replace(m, optimizer_bytes=0.0 if cfg.offload_optimizer else m.optimizer_bytes,
                   activations_bytes=m.activations_bytes - offloaded_activation_bytes)


# -- the step graph --------------------------------------------------------------------

def _host_task(b: GraphBuilder, name: str, host: int, seconds: float = 0.0) -> int:
    return b.task(name, duration_s=seconds, pin=host, kind="host", comm=True)


def cpu_update(sb: DataParallelSync, host: Host, d: int, s: int, t: int,
               reduced: list[int], buckets: list[tuple[list[int], float]], last: int) -> int:
    """Optimizer offload for one rank: `reduced` holds its reduced-bucket tasks (bucket
    after bucket, for each reduced micro-batch, as _synchronise makes them); each sends its
    shard of gradients to the host; once all are in the host updates bucket after bucket
    and sends each bucket's parameters back to a landing task on the GPU, which also
    follows the rank's last pipeline op `last`. Returns the landing task."""
    cfg, b = sb.cfg, sb.b
    gpu = cfg.rank(d, s, t)
    cpu = host_unit(cfg, gpu)
    shard = cfg.dp if cfg.zero else 1
    params = [sum(_rank_params(sb, i) for i in layers) / shard for layers, _ in buckets]
    name = f"offload.d{d}.s{s}.t{t}"
    gate = _host_task(b, f"{name}.gradients", cpu)
    for j, task in enumerate(reduced):  # the gradients down, as each bucket is reduced
        b.edge(task, gate, params[j % len(buckets)] * cfg.dtype_bytes)
    land = b.task(f"{name}.parameters", duration_s=0.0, pin=gpu, kind="offload", comm=True)
    b.edge(last, land)
    before = gate
    for (layers, _), n in zip(buckets, params, strict=True):
        adam = _host_task(b, f"{name}.adam.{layers[0]}", cpu,
                          adam_seconds(n, host, sb.cluster.units_per_node))
        b.edge(before, adam)
        b.edge(adam, land, n * cfg.dtype_bytes)  # the updated parameters up
        before = adam
    return land


def _rank_params(sb: DataParallelSync, i: int) -> float:
    """Layer i's trainable parameters on one device (1/tp of a split layer)."""
    return sb.model.layers[i].params / (sb.cfg.tp if sb.roles[i].sharded else 1)


def move_activations(sb: _StepBuilder, passes: dict[tuple[str, int, int, int, int], int]) -> None:
    """Activation offload on every simulated rank: per segment but the last of its
    virtual stage, its forward's saved tensors down to a host task, and back up to its
    backward once the backward two segments on has ended. `passes` maps
    (F|B, replica, first layer, micro-batch, tp rank) to the compute task."""
    cfg, b = sb.cfg, sb.b
    sharded = [r.sharded for r in sb.roles]
    for v, (start, end) in enumerate(sb.stages):
        s = v % cfg.pp
        saved = layer_saved(sb.model, (start, end), tp=cfg.tp, dtype_bytes=cfg.dtype_bytes,
                            selective=cfg.recompute == "selective", sharded=sharded,
                            sp=cfg.sp and cfg.tp > 1)
        segs = sb.segments[v]
        for j, seg in enumerate(segs[:-1]):
            nbytes = sum(saved[i - start] for i in seg.layers) * cfg.microbatch_size
            trigger = segs[min(j + 2, len(segs) - 1)].layers[0]
            for d in range(cfg.dp):
                for k in range(cfg.microbatches):
                    for t in cfg.simulated_tp_ranks():
                        at = (d, seg.layers[0], k, t)
                        cpu = host_unit(cfg, cfg.rank(d, s, t))
                        task = _host_task(b, f"activations.d{d}.{seg.layers[0]}.k{k}.t{t}", cpu)
                        b.edge(passes[("F", *at)], task, nbytes)
                        b.edge(passes[("B", d, trigger, k, t)], task)
                        b.edge(task, passes[("B", *at)], nbytes)
