"""The `[parallel]` table: its schema (how the model is split over the units, and the
split's communication) and the ParallelConfig a normalised table and the model's
[workload.model] build."""

from __future__ import annotations

from typing import Any

from ..errors import ScenarioError, found
from ..parallel.config import (
    DP_MODES,
    EMBEDDINGS,
    LAYOUTS,
    SHARDED,
    TP_MODES,
    ZERO_STAGES,
    ParallelConfig,
)
from ..parallel.nccl import ALGORITHMS
from ..parallel.offload import problem as offload_problem
from ..parallel.pipeline import KINDS as PIPELINE_SCHEDULES
from .model import PRECISION_BYTES

Doc = dict[str, Any]
Schema = dict[str, Any]


def parallel_schema(table: Any, integer: Any, quantity: Any) -> Schema:
    return table("How a [workload.model] is split: data x pipeline x tensor parallelism; "
                 "units are laid out tensor-parallel first, so tp units of a node form a group", {
                     "dp": integer("Data-parallel replicas; default: the units left over, "
                                   "units / (pp x tp)", 1),
                     "pp": integer("Pipeline stages", 1, 1),
                     "tp": integer("Tensor-parallel ranks per stage (Megatron-style)", 1, 1),
                     "schedule": {"enum": list(PIPELINE_SCHEDULES), "default": "1f1b",
                                  "description": "Pipeline schedule: gpipe, 1f1b or interleaved"},
                     "chunks": integer("Model chunks per device (interleaved schedule)", 1, 1),
                     "bucket": quantity("bytes", "Gradient all-reduce bucket size", 25e6,
                                        exclusiveMinimum=0),
                     "tp_mode": {"enum": list(TP_MODES), "default": "full",
                                 "description": "full: simulate every rank; symmetric: one rank "
                                                "per tensor-parallel group, exact collective times"},
                     "dp_mode": {"enum": list(DP_MODES), "default": "full",
                                 "description": "full: build every data-parallel replica; "
                                                "mirrored: replica 0 only, exactly (refused "
                                                "where something tells the replicas apart); "
                                                "auto: mirrored where that is exact"},
                     "fuse": {"type": "boolean", "default": False,
                              "description": "One task per run of layers between collectives"},
                     "layout": {"enum": list(LAYOUTS), "default": "dp,pp,tp",
                                "description": "Order of the dimensions when numbering units, "
                                               "outermost first: the innermost shares a node"},
                     "collective": {"enum": list(ALGORITHMS), "default": "auto",
                                    "description": "The tensor-parallel all-reduce's algorithm, "
                                                   "as NCCL runs it: auto (NCCL's choice by "
                                                   "message size and topology), ring, tree, "
                                                   "nvls (in-switch reduction) or hierarchical; "
                                                   "tree and nvls need tp_mode = 'symmetric'"},
                     "sp": {"type": "boolean", "default": False,
                            "description": "Megatron sequence parallelism: with tp > 1, a "
                                           "reduce-scatter and an all-gather in place of each "
                                           "tensor-parallel all-reduce, norms and residual "
                                           "adds on 1/tp of the tokens"},
                     "ep": integer("Expert parallelism: each MoE layer's experts spread "
                                   "over ep of the dp replicas, which all-to-all their tokens "
                                   "before and after it; divides dp and every MoE layer's "
                                   "experts", 1, 1),
                     "cp": integer("Context parallelism (ring attention): each replica's "
                                   "sequences split over cp ranks, just outside its tp ranks, "
                                   "which pass keys and values around a ring in every "
                                   "attention layer; divides the sequence (2 x cp chunks when "
                                   "causal); transformers only", 1, 1),
                     "zero": {"type": "integer", "minimum": ZERO_STAGES[0],
                              "maximum": ZERO_STAGES[-1], "default": 0,
                              "description": "ZeRO stage over the data-parallel replicas: 0 "
                                             "replicated (DDP), 1 optimizer state sharded "
                                             "(distributed optimizer), 2 gradients too, 3 "
                                             "parameters too (FSDP), with their reduce-"
                                             "scatters and all-gathers"},
                     "overlap_param_gather": {
                         "type": "boolean", "default": False,
                         "description": "zero 1 or 2: all-gather the updated parameters "
                                        "bucket by bucket under the next step's forward "
                                        "(Megatron-LM's --overlap-param-gather), not after "
                                        "the update"},
                     "tp_comm_overlap": {
                         "type": "boolean", "default": False,
                         "description": "With sp: run sequence parallelism's all-gathers "
                                        "and reduce-scatters beside the GEMMs they feed or "
                                        "follow, chunked as Transformer Engine does "
                                        "(Megatron-Core's --tp-comm-overlap)"},
                     "embeddings": {"enum": list(EMBEDDINGS), "default": EMBEDDINGS[0],
                                    "description": "Recommenders: replicate embedding tables "
                                                   "(plain data parallelism), shard them over "
                                                   "the units with all-to-alls (DLRM hybrid, "
                                                   "MLPs data-parallel), or sharded_bottom_first "
                                                   "(NVIDIA's: the bottom MLP on unit 0 over "
                                                   "the whole batch, above 4 units no table "
                                                   "there)"},
                 })


def build_parallel(model_table: Doc, parallel: Doc, units: int) -> ParallelConfig:
    """The split of normalised [workload.model] and [parallel] tables over `units`."""
    pp, tp, cp = int(parallel["pp"]), int(parallel["tp"]), int(parallel["cp"])
    # data parallelism takes the units the others leave, so a sweep over the unit
    # count scales the replicas without naming them
    dp = int(parallel["dp"]) if "dp" in parallel else max(1, units // (pp * tp * cp))
    if dp * pp * tp * cp != units:
        what, sizes = ("dp x pp x tp x cp", f"{dp} x {pp} x {tp} x {cp}") if cp > 1 else (
            "dp x pp x tp", f"{dp} x {pp} x {tp}")
        raise ScenarioError("parallel", f"{what} equal to the {units} units of the hardware",
                            f"<{sizes} = {dp * pp * tp * cp}>")
    if parallel["chunks"] > 1 and parallel["schedule"] != "interleaved":
        raise ScenarioError("parallel.chunks", f"chunks = 1 for schedule {parallel['schedule']!r}"
                            " (model chunks are the interleaved schedule's)", parallel["chunks"],
                            hint="set schedule = 'interleaved', or remove chunks")
    if parallel["zero"] and parallel["embeddings"] in SHARDED:
        raise ScenarioError("parallel.zero", f"0 with embeddings = {parallel['embeddings']!r} "
                            "(the DLRM hybrid's MLPs are plain data parallel)", parallel["zero"],
                            hint="remove zero, or replicate the embeddings")
    if model_table.get("update_kernels", 1) > 1 and "optimizer" in model_table.get("fused", ()):
        raise ScenarioError("workload.model.update_kernels", "1 with fused = [\"optimizer\"] (a "
                            "fused optimizer is one kernel per parameter group)",
                            model_table["update_kernels"], hint="remove one of the two")
    offload = parallel.get("offload", {})
    try:
        cfg = ParallelConfig(
            dp=dp, pp=pp, tp=tp, schedule=parallel["schedule"], chunks=int(parallel["chunks"]),
            batch=int(model_table["batch"]), microbatches=int(model_table["microbatches"]),
            training=bool(model_table["training"]), recompute=model_table["recompute"],
            optimizer=model_table["optimizer"],
            dtype_bytes=PRECISION_BYTES[model_table["precision"]],
            bucket_bytes=float(parallel["bucket"]), tp_mode=parallel["tp_mode"],
            fuse=bool(parallel["fuse"]), layout=parallel["layout"],
            fused_optimizer="optimizer" in model_table.get("fused", ()),
            update_kernels=int(model_table.get("update_kernels", 1)),
            input_s_per_sample=float(model_table.get("input_pipeline", 0.0)),
            collective=parallel["collective"], sp=bool(parallel["sp"]),
            ep=int(parallel["ep"]), zero=int(parallel["zero"]),
            overlap_param_gather=bool(parallel["overlap_param_gather"]),
            offload_optimizer=bool(offload.get("optimizer", False)),
            offload_activations=bool(offload.get("activations", False)),
            dp_mode=parallel["dp_mode"], cp=cp,
            tp_comm_overlap=bool(parallel["tp_comm_overlap"]))
    except ValueError as err:
        raise ScenarioError("parallel", "a consistent parallel configuration", f"<{err}>") from None
    bad = offload_problem(cfg)
    if bad is not None:
        raise ScenarioError(f"parallel.offload.{bad[0]}", bad[1], found(bad[2]),
                            hint="remove it, or change the key it conflicts with")
    return cfg
