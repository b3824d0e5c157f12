"""An embedding table's sparse SGD step as NVIDIA's DLRM runs it: the gradient rows of
every lookup, uncoalesced, scaled and index-added into the table.

NVIDIA DeepLearningExamples, PyTorch/Recommendation/DLRM (commit 4154bda6, the README's
training-performance code), with plain SGD on the tables (torch.optim.SGD, main.py):

- the tables' backward returns an uncoalesced sparse COO gradient, one fp32 row of
  values per lookup and nothing sorted or deduplicated: on one GPU the fused joint
  embedding's gatherGPUFusedBwdTorch (dlrm/cuda_src/gather_gpu_fused_pytorch_impl.cu),
  on several at::embedding_sparse_backward (dlrm/cuda_src/sparse_gather/gather_gpu.cu,
  a reshape of the incoming gradient); the autograd functions take fp32
  (custom_fwd(cast_inputs=torch.float32)). Its values are written by the backward (or
  the all-to-all that brought them), which is costed there, not here.
- SGD's `param.add_(grad, alpha=-lr)` on a dense table and a sparse gradient is PyTorch's
  add_out_dense_sparse_cuda (aten/src/ATen/native/sparse/cuda/SparseCUDATensorMath.cu):
  for an uncoalesced gradient it scales the values into a new tensor
  (`values.mul(value)`: read and write every value) and `index_add_`s them into the table
  (read every value; read, add and write one table row per lookup, duplicates and all,
  as atomic adds in whole 32-byte sectors: ops/embedding.py, gathered_row_bytes).
- under mixed precision the GradScaler first unscales the values in place
  (torch.cuda.amp.GradScaler.unscale_, _amp_foreach_non_finite_check_and_unscale_:
  read and write every value).

No index sort or unique runs in this path (the source's code has none: a sort would
come with coalescing, which only SparseAdam does, --Adam_embedding_optimizer). So the
step is memory-bound, per lookup of a `dim`-wide row: 3 x 4 dim bytes of values, 2
gathered table rows, and 2 x 4 dim more under mixed precision; one add per value, one
multiply per value (two under mixed precision).
"""

from __future__ import annotations

from leptonsim.ops.base import Cost

VALUE_BYTES = 4  # the gradient's values are fp32 (custom_fwd(cast_inputs=torch.float32))


def sgd_cost(lookups: int, dim: int, gathered_row: float, mixed_precision: bool) -> Cost:
    """The sparse SGD step of one table over `lookups` gradient rows (module docstring):
    `gathered_row` is the DRAM bytes of one random table row."""
    values = lookups * dim
    passes = 3 + (2 if mixed_precision else 0)  # mul read+write, index_add read; unscale
    flops = values * (3 if mixed_precision else 2)
    return Cost(float(flops), float(values * VALUE_BYTES * passes + 2 * lookups * gathered_row),
                kernels=3 if mixed_precision else 2)
