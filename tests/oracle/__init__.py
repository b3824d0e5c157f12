"""Parallel splits executed for real with the NumPy kernels, checked against the unsplit run.

tensor: Megatron tensor parallelism as leptonsim.parallel.tensor.layer_roles says.
pipeline: stages from leptonsim.parallel.pipeline.partition, micro-batches, a schedule.
data: replicas, a ring all-reduce (ring: in one process or across processes), an update.
"""

from __future__ import annotations

from leptonsim.sharded.blocks import gpt_block, mlp_stack
from leptonsim.sharded.common import (
    AllReduce,
    StepResult,
    allreduce_sum,
    no_allreduce,
    rel_error,
    step_errors,
    unsplit_step,
)
from leptonsim.sharded.data import allreduce_grads, data_parallel_steps, large_batch_steps
from leptonsim.sharded.pipeline import handoffs, pipeline_step, stage_ranges
from leptonsim.sharded.ring import process_ring_allreduce, ring_allreduce, ring_schedule, sent_elements
from leptonsim.sharded.tensor import layer_modes, shard_params, tensor_parallel_step

__all__ = [
    "AllReduce",
    "StepResult",
    "allreduce_grads",
    "allreduce_sum",
    "data_parallel_steps",
    "gpt_block",
    "handoffs",
    "large_batch_steps",
    "layer_modes",
    "mlp_stack",
    "no_allreduce",
    "pipeline_step",
    "process_ring_allreduce",
    "rel_error",
    "ring_allreduce",
    "ring_schedule",
    "sent_elements",
    "shard_params",
    "stage_ranges",
    "step_errors",
    "tensor_parallel_step",
    "unsplit_step",
]
