"""The GPU model: GEMMs priced by shape, the rest at achievable memory bandwidth.

A task (or layer column) holds FLOPs, bytes, the GEMMs among its FLOPs (graph.GemmRows)
and the kernels it launches. Its time on a unit of peak P (at the workload's
precision), large-GEMM efficiency E, SM count s, memory bandwidth B, bandwidth
efficiency E_B and per-kernel overhead o is

    C = (flops - sum_g flops_g) / (P E) + sum_g t_g        compute
    M = bytes / (B E_B)                                     memory
    t = max(C, M) + a min(C, M) + o kernels                 a = 0 "max", 1 "sum"

Each GEMM g = (m, n, k), `batch` products per launch, `count` launches, runs as
output tiles of Tm x Tn, one tile per SM at a time, the tiles in waves over the SMs
(NVIDIA, "Matrix Multiplication Background User's Guide", DU-09799-001, 2023, Sections
2.1 and 3: tile quantisation pads m and n up to whole tiles, wave quantisation pays
for a whole last wave however few tiles it holds):

    tiles  = batch ceil(m / Tm) ceil(n / Tn)
    waves  = ceil(tiles / s)
    t_g    = count min_T  waves 2 Tm Tn (k + K0) / (P E eta_T / s)

A GEMM of few output tiles and a long k (a weight gradient: m x n filters, k the
batch's pixels) would leave most SMs idle; cuBLAS and CUTLASS split k over several
tiles' worth of SMs and reduce the partial sums (CUTLASS "split-K"; Osama et al.,
"Stream-K: Work-centric Parallel Decomposition for Dense Matrix-Matrix Multiplication on
the GPU", PPoPP 2023, which balances the k iterations evenly over the SMs). So t_g is
the fastest over j = 1, 2, 4, ... <= s slices of k / j (each its own K0):

    t_g    = count min_{T, j}  ceil(tiles j / s) 2 Tm Tn (k / j + K0) / (P E eta_T / s)

ASSUMPTION: the reduction of the j partial tiles is not priced (its m n j words are
small beside the operands exactly where a split pays: k much longer than m and n).
cuBLAS picks among tile shapes (the guide's Section 2.3: 256x128 and 128x256 the most
efficient, down to 64x64 the least); t_g takes the fastest of them, each at its
relative efficiency eta_T: its operand reuse against the largest tile's, at fp16's
operand feed, and 1 for every tile whose reuse feeds a precision that asks less of it
(FP32 SIMT: `operand_demand`). With s = 0 (SM count unknown) there are no tiles and no
waves: t_g = count batch 2 m n (k + K0) / (P E). Either way the rate climbs towards
P E as the GEMM grows: through the quantisation losses, which fade as tiles per SM
grow, and through k / (k + K0), the share of a tile's time spent in its main loop
rather than filling and draining the pipeline. A GEMM never runs faster than its FLOPs
at P E: E is the fraction achieved on large GEMMs.

Everything that is not a GEMM (the rest of the FLOPs, every byte) is costed as the
roofline does, but at the achievable bandwidth B E_B. The overlap rule `a` says how
much of the shorter of C and M shows: 0 is the roofline (max, the two overlap
perfectly), 1 no overlap (sum), as Calculon's "no_overlap" processing mode, the one
its A100 system files use (Isaev et al., "Calculon: a methodology and tool for
high-level co-design of systems and large language models", SC'23, 2023; calculon
systems/a100_80g.json) and as llm-analysis does across the separate kernels of a
layer (its layer time adds attention, MLP and layer norms, each max(compute, memory)).
"sum" is the default: a task of leptonsim is a layer's phase, several kernels whose
memory-bound parts do not hide behind their GEMMs. Launch overhead is per kernel.

Host dispatch. An eager framework spends host time on every op it launches (Python, the
dispatcher, the launch call) while the device runs what was queued before: CUDA kernel
launches are asynchronous, so the host runs ahead and the device waits only when its
kernels are shorter than their dispatch. A task of K kernels, host dispatch h each,
lasts max(t, K h): the device's time, or the host's where that is longer (a run of
small kernels, such as an unfused optimizer's, is dispatch-bound). h = 0 (the default)
is a device fed without the host in the way: CUDA graphs, XLA, scripted kernels.
ASSUMPTION: the queue the host builds up under long kernels never carries over to the
next task (the bound is per task, not over the step).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..graph import GemmRows, TaskGraph
from ..hardware import ComputeUnit
from .base import TaskCost

OVERLAPS = {"max": 0.0, "sum": 1.0}
"""The overlap rules by name, as the blend a of t = max(C, M) + a min(C, M)."""
DEFAULT_OVERLAP = "sum"

TILES = np.array([(256, 128), (128, 256), (128, 128), (256, 64), (64, 256), (128, 64),
                  (64, 128), (64, 64)], dtype=float)
"""cuBLAS's tile shapes (Tm, Tn) on tensor cores, most to least efficient (NVIDIA,
Matrix Multiplication Background User's Guide, Section 2.3)."""

_REUSE = TILES.prod(axis=1) / TILES.sum(axis=1)
TILE_EFFICIENCY = _REUSE / _REUSE.max()
"""eta_T: a tile's rate relative to the largest. A tile loads (Tm + Tn) k operands for
2 Tm Tn k FLOPs, so its operand reuse is Tm Tn / (Tm + Tn). ASSUMPTION: the largest
tile sits at the ridge of the SMs' operand feed, so a smaller one runs in proportion
to its reuse (128x128: 0.75, 64x64: 0.375), the guide's ordering made quantitative.
These are fp16's; `tile_efficiency` gives them at any precision."""

OPERAND_BYTES = {"fp64": 8, "fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1}
"""Bytes of one GEMM operand element at each precision (tf32 operands are stored as
fp32 words: NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020, "TF32")."""
RIDGE_PRECISION = "fp16"
"""The precision whose largest tile TILE_EFFICIENCY's ASSUMPTION puts at the ridge."""


def operand_demand(unit: ComputeUnit, precision: str | None) -> float:
    """f: the operand feed a GEMM at `precision` needs per unit of tile reuse, as a
    fraction of the fp16 tensor cores' (peak x operand bytes, each over fp16's), at
    most 1. A tile of reuse r needs peak x bytes / r of operand bandwidth, so at f < 1
    a tile runs at full rate once r / r_max >= f. FP32 on a V100 (SIMT, 15.7 of 125
    TFLOP/s, 4-byte words) is f = 0.25: every cuBLAS tile feeds it; TF32 on an A100
    (half fp16's rate at twice the bytes) and fp8 on an H100 (twice the rate at half
    the bytes) are f = 1, like fp16. 1 where the precision or the fp16 peak is unknown."""
    if precision not in OPERAND_BYTES or not unit.peaks:
        return 1.0
    ridge = dict(unit.peaks).get(RIDGE_PRECISION)
    if ridge is None:
        return 1.0
    demand = unit.peak(precision) * OPERAND_BYTES[precision]
    return min(1.0, demand / (ridge * OPERAND_BYTES[RIDGE_PRECISION]))


def tile_efficiency(unit: ComputeUnit, precision: str | None) -> np.ndarray:
    """eta_T at `precision`: min(1, eta_T / f), f = operand_demand (fp16: TILE_EFFICIENCY)."""
    return np.minimum(1.0, TILE_EFFICIENCY / operand_demand(unit, precision))


K_FILL = 64.0
"""K0, the pipeline fill and drain of a tile in units of k. ASSUMPTION: a multistage
tensor-core main loop (CUTLASS's, cuBLAS's on Ampere) loads 2 k-slices of 32 before
its first MMA and stores its tile after its last: about 64 of k spent outside the
loop, so k = 64 runs at half the rate of a long-k GEMM."""


def blend(overlap: str | float) -> float:
    """The a of an overlap rule: "max" 0, "sum" 1, or a number in [0, 1]."""
    if isinstance(overlap, str):
        if overlap not in OVERLAPS:
            raise ValueError(f"overlap must be one of {', '.join(OVERLAPS)} or a number in "
                             f"[0, 1], got {overlap!r}")
        return OVERLAPS[overlap]
    if isinstance(overlap, bool) or not 0.0 <= float(overlap) <= 1.0:
        raise ValueError(f"overlap must be 'max', 'sum' or a number in [0, 1], got {overlap!r}")
    return float(overlap)


def gemm_seconds(rows: GemmRows, unit: ComputeUnit, precision: str | None = None) -> np.ndarray:
    """t_g of every GEMM row on `unit` (the formula in the module docstring)."""
    rate = unit.peak(precision) * unit.efficiency
    m, n = rows.m.astype(float), rows.n.astype(float)
    k, batch, count = rows.k + K_FILL, rows.batch.astype(float), rows.count.astype(float)
    if unit.sms == 0:
        return count * batch * 2.0 * m * n * k / rate
    best = np.full(len(rows), np.inf)
    splits = 2.0 ** np.arange(int(np.log2(unit.sms)) + 1)  # 1, 2, 4, ... <= sms
    etas = tile_efficiency(unit, precision)
    for (tm, tn), eta in zip(TILES, etas, strict=True):  # 8 shapes, O(rows) memory
        tiles = batch * np.ceil(m / tm) * np.ceil(n / tn)
        per_tile = 2.0 * tm * tn * unit.sms / (rate * eta)
        for s in splits:  # split-K: s slices of k / s each, each with its own fill
            waves = np.ceil(tiles * s / unit.sms)
            np.minimum(best, waves * per_tile * (rows.k / s + K_FILL), out=best)
    return count * best


def gemm_efficiency(rows: GemmRows, unit: ComputeUnit, precision: str | None = None
                    ) -> np.ndarray:
    """Per GEMM row, the fraction of the unit's peak it achieves: flops / (t_g P)."""
    return rows.flops() / (gemm_seconds(rows, unit, precision) * unit.peak(precision))


class GpuCost(TaskCost):
    """The GPU model (module docstring) at the peak of `precision` (the unit's default
    when None) with the overlap rule `overlap` ("max", "sum" or a blend in [0, 1]), and
    `host_dispatch` seconds of host time per kernel (module docstring, "Host dispatch")."""

    name = "gpu"

    def __init__(self, precision: str | None = None,
                 overlap: str | float = DEFAULT_OVERLAP, host_dispatch: float = 0.0) -> None:
        if host_dispatch < 0:
            raise ValueError(f"host_dispatch must be >= 0 s, got {host_dispatch}")
        self.precision, self.overlap, self.blend = precision, overlap, blend(overlap)
        self.host_dispatch = host_dispatch

    def seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit,
                kinds: Sequence[str] | None = None) -> np.ndarray:
        return self.work_seconds(flops, nbytes, unit, kinds)

    def work_seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit,
                     kinds: Sequence[str] | None = None, gemms: GemmRows | None = None,
                     kernels: np.ndarray | None = None) -> np.ndarray:
        rate = unit.peak(self.precision) * unit.efficiency
        compute = np.array(flops, dtype=float, ndmin=1) / rate
        if gemms is not None and len(gemms):
            # each GEMM's shaped time replaces its FLOPs' share at the flat rate
            np.add.at(compute, gemms.task, gemm_seconds(gemms, unit, self.precision)
                      - gemms.flops() / rate)
        memory = np.asarray(nbytes, dtype=float) / (unit.memory_bandwidth
                                                    * unit.bandwidth_efficiency)
        launches = 1.0 if kernels is None else np.asarray(kernels, dtype=float)
        compute = compute.reshape(np.shape(flops))
        device = (np.maximum(compute, memory) + self.blend * np.minimum(compute, memory)
                  + unit.overhead_s * launches)
        return np.maximum(device, self.host_dispatch * launches)

    def compute_times(self, graph: TaskGraph, unit: ComputeUnit) -> np.ndarray:
        return self.work_seconds(graph.flops, graph.nbytes, unit, graph.kinds, graph.gemms,
                                 graph.kernels)
