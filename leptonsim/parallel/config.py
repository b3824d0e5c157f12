"""How a model is split over a cluster: the seed's model partition, task assignment
and data synchronisation as one immutable configuration."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .memory import recompute_mode
from .nccl import ALGORITHMS, SPELLED_OUT
from .pipeline import KINDS as SCHEDULES

OPTIMIZERS = ("sgd", "adam")
TP_MODES = ("full", "symmetric")
DP_MODES = ("full", "mirrored", "auto")  # parallel.mirror
# recommenders: plain DP, or the DLRM hybrid (MLPs data-parallel), or NVIDIA's hybrid
# (the bottom MLP on unit 0 over the global batch; parallel.recsys)
EMBEDDINGS = ("replicated", "sharded", "sharded_bottom_first")
SHARDED = EMBEDDINGS[1:]  # the values that build the hybrid step
ZERO_STAGES = (0, 1, 2, 3)
LAYOUTS = ("dp,pp,tp", "pp,dp,tp", "dp,tp,pp", "tp,dp,pp", "pp,tp,dp", "tp,pp,dp")


@dataclass(frozen=True)
class ParallelConfig:
    """DP x PP x TP with `microbatches` per replica and per step.

    `layout` orders the three dimensions from outermost to innermost when numbering
    units; the default "dp,pp,tp" gives unit = (d * pp + p) * tp + t, so on a two-level
    cluster whose nodes hold tp units a tensor-parallel group never leaves its node.

    tp_mode "full" simulates every rank and spells every collective out as
    point-to-point transfers. "symmetric" simulates rank 0 of each tensor-parallel
    group only (the others do the same work at the same time) and replaces the
    group's collectives by tasks of their exact uncontended duration: how a 1,024-unit
    GPT-3 step fits in seconds. `fuse` makes one task of each run of layers between
    collectives instead of one task per layer. `collective` is the algorithm of the
    tensor-parallel all-reduces (parallel.nccl.ALGORITHMS; auto: NCCL's choice, by
    message size and topology, in symmetric mode, and the ring in full mode).
    `recompute` is "none", "selective" (the attention core rebuilt in the backward) or
    "full" (every layer's forward rebuilt from its input; parallel/memory.py); True and
    False are read as "full" and "none". `sp` is Megatron's sequence parallelism:
    reduce-scatters and all-gathers in place of the tensor-parallel all-reduces,
    per-token layers on s/tp tokens (a no-op at tp = 1, as Megatron-LM turns it off
    there). `ep` spreads each MoE layer's experts over ep
    of the dp replicas, which all-to-all their tokens around it (parallel.experts).
    `cp` is context parallelism (parallel.context): each replica's sequences split over
    cp ranks, which pass keys and values around a ring in every attention layer; the
    cp ranks of a replica sit just outside its tp ranks in the numbering (`rank`).
    `zero` is the ZeRO stage over the data-parallel replicas (Rajbhandari et al., "ZeRO:
    Memory Optimizations Toward Training Trillion Parameter Models", SC'20, section 5):
    0 replicates the model state (DDP), 1 shards the optimizer state (Megatron's
    distributed optimizer), 2 the gradients too, 3 the parameters too (FSDP's FULL_SHARD).
    `offload_optimizer` and `offload_activations` move the optimizer (its state, master
    weights and Adam step) and the saved activations to each unit's host over its PCIe
    link (parallel.offload; ZeRO-Offload, USENIX ATC 2021).
    `dp_mode` "mirrored" simulates data-parallel replica 0 only, exactly (parallel.mirror);
    "auto" mirrors where that is exact, else builds every replica ("full").
    `tp_comm_overlap` runs sequence parallelism's all-gathers and reduce-scatters beside
    the GEMMs they feed or follow, chunked as Transformer Engine's userbuffers do
    (parallel.tp_overlap; Megatron-Core's --tp-comm-overlap); it needs `sp`.
    """

    dp: int = 1
    pp: int = 1
    tp: int = 1
    batch: int = 1
    microbatches: int = 1
    schedule: str = "1f1b"
    chunks: int = 1
    training: bool = True
    recompute: str = "none"   # "none" | "selective" | "full" (True: "full", False: "none")
    optimizer: str = "adam"
    dtype_bytes: int = 2
    bucket_bytes: float = 25e6
    tp_mode: str = "full"
    fuse: bool = False
    layout: str = "dp,pp,tp"
    fused_optimizer: bool = False   # one optimizer kernel per parameter group, not per tensor
    update_kernels: int = 1   # elementwise kernels per tensor of an unfused update (ops.base)
    input_s_per_sample: float = 0.0  # the host input pipeline's seconds per sample
    collective: str = "auto"   # the tensor-parallel all-reduce's algorithm (parallel.nccl)
    sp: bool = False  # Megatron sequence parallelism in the tp groups (parallel.tensor)
    ep: int = 1       # expert parallelism: MoE experts over ep replicas (parallel.experts)
    zero: int = 0              # ZeRO stage, ZERO_STAGES
    overlap_param_gather: bool = False  # zero 1/2: gather under the next forward (zero.py)
    offload_optimizer: bool = False    # Adam on the host CPU (parallel.offload)
    offload_activations: bool = False  # saved activations to host memory and back
    dp_mode: str = "full"      # DP_MODES: every replica, one mirrored, or auto (parallel.mirror)
    cp: int = 1       # context parallelism: sequence split over cp ranks (parallel.context)
    tp_comm_overlap: bool = False  # sp's collectives beside their GEMMs (parallel.tp_overlap)

    def __post_init__(self) -> None:
        object.__setattr__(self, "recompute", recompute_mode(self.recompute))
        for name in ("dp", "pp", "tp", "ep", "cp", "batch", "microbatches", "chunks", "dtype_bytes",
                     "update_kernels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch % (self.dp * self.microbatches):
            raise ValueError(f"batch {self.batch} does not split into dp {self.dp} x "
                             f"microbatches {self.microbatches}")
        if self.dp % self.ep:
            raise ValueError(f"ep {self.ep} does not divide dp {self.dp} (expert-parallel "
                             f"ranks are data-parallel replicas)")
        if self.cp > 1 and self.ep > 1:
            raise ValueError(f"cp {self.cp} with ep {self.ep}: context and expert "
                             f"parallelism together are not modelled")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be sgd or adam, got {self.optimizer!r}")
        if self.tp_mode not in TP_MODES:
            raise ValueError(f"tp_mode must be full or symmetric, got {self.tp_mode!r}")
        if self.dp_mode not in DP_MODES:
            raise ValueError(f"dp_mode must be full, mirrored or auto, got {self.dp_mode!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.bucket_bytes <= 0:
            raise ValueError("bucket_bytes must be > 0")
        if not self.input_s_per_sample >= 0:
            raise ValueError(f"input_s_per_sample must be >= 0, got {self.input_s_per_sample}")
        if self.collective not in ALGORITHMS:
            raise ValueError(f"collective must be one of {', '.join(ALGORITHMS)}, "
                             f"got {self.collective!r}")
        if self.zero not in ZERO_STAGES:
            raise ValueError(f"zero must be 0, 1, 2 or 3, got {self.zero!r}")
        if self.overlap_param_gather and self.zero not in (1, 2):
            raise ValueError(f"overlap_param_gather needs zero 1 or 2 (the distributed "
                             f"optimizer's all-gather), got zero {self.zero}")
        if self.tp_comm_overlap and not self.sp:  # Megatron-LM asserts the same
            raise ValueError("tp_comm_overlap needs sp = true (Transformer Engine overlaps "
                             "sequence parallelism's all-gathers and reduce-scatters)")
        if self.zero and not self.training:
            raise ValueError(f"zero {self.zero} shards training state: it needs training")
        if self.tp_mode == "full" and self.collective not in SPELLED_OUT:
            raise ValueError(f"collective {self.collective!r} needs tp_mode = 'symmetric' "
                             f"(tp_mode 'full' spells out {', '.join(SPELLED_OUT[1:])})")

    @property
    def units(self) -> int:
        return self.dp * self.pp * self.tp * self.cp

    @property
    def replicas(self) -> int:
        """Ranks that run the whole stage on their own tokens and reduce its gradients
        together: dp replicas of cp ranks each (replica index d * cp + c)."""
        return self.dp * self.cp

    @property
    def microbatch_size(self) -> int:
        return self.batch // (self.dp * self.microbatches)

    @property
    def virtual_stages(self) -> int:
        return self.pp * self.chunks

    def rank(self, d: int, p: int, t: int, c: int = 0) -> int:
        """The unit of data-parallel replica d, stage p, tensor rank t, context rank c.
        The one statement of the numbering: the layout's three dimensions, with each
        tp group's cp copies just outside it (Megatron-Core's order "tp-cp-ep-dp-pp":
        tp innermost, then cp), so unit = ... * cp * tp + c * tp + t."""
        dp, pp, tp = self._strides
        return d * dp + p * pp + (c * self.tp + t) * tp

    @cached_property
    def _strides(self) -> tuple[int, int, int]:
        """Units between consecutive dp, pp and tp indices under the layout (the last
        dimension listed is the innermost)."""
        size = {"dp": self.dp, "pp": self.pp, "tp": self.cp * self.tp}
        stride, strides = 1, {}
        for dim in reversed(self.layout.split(",")):
            strides[dim] = stride
            stride *= size[dim]
        return strides["dp"], strides["pp"], strides["tp"]

    def replica_rank(self, r: int, p: int, t: int) -> int:
        """The unit of replica r (of `replicas`: data replica r // cp, context rank r % cp)."""
        return self.rank(r // self.cp, p, t, r % self.cp)

    def simulated_tp_ranks(self) -> range:
        return range(self.tp) if self.tp_mode == "full" else range(1)

    def simulated_replicas(self) -> range:
        """The data-parallel replicas built: all, or replica 0 when mirrored (dp_mode
        "auto" is decided by parallel.mirror.resolve before a step is built)."""
        return range(1) if self.dp_mode == "mirrored" else range(self.replicas)
