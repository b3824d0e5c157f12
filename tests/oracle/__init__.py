"""The oracle of the parallel splits: each executed for real with the NumPy kernels, so
the tests can check each against the unsplit run.

tensor: Megatron tensor parallelism as leptonsim.parallel.tensor.layer_roles says.
pipeline: stages from leptonsim.parallel.pipeline.partition, micro-batches, a schedule.
data: replicas, a ring all-reduce (ring: in one process or across processes), an update.
"""

from __future__ import annotations

from tests.oracle.common import (
    AllReduce,
    StepResult,
    allreduce_sum,
    no_allreduce,
    step_errors,
    unsplit_step,
)
from tests.oracle.data import allreduce_grads, data_parallel_steps, large_batch_steps
from tests.oracle.pipeline import handoffs, pipeline_step, stage_ranges
from tests.oracle.ring import process_ring_allreduce, ring_allreduce, ring_schedule, sent_elements
from tests.oracle.tensor import layer_modes, shard_params, tensor_parallel_step

__all__ = [
    "AllReduce",
    "StepResult",
    "allreduce_grads",
    "allreduce_sum",
    "data_parallel_steps",
    "handoffs",
    "large_batch_steps",
    "layer_modes",
    "no_allreduce",
    "pipeline_step",
    "process_ring_allreduce",
    "ring_allreduce",
    "ring_schedule",
    "sent_elements",
    "shard_params",
    "stage_ranges",
    "step_errors",
    "tensor_parallel_step",
    "unsplit_step",
]
