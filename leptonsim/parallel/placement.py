"""Embedding tables placed on units by size, for a DLRM's hybrid parallelism.

The greedy rule DLRM implementations use: tables sorted largest first, each onto the
unit with the least bytes so far, a unit closed once it holds ceil(T / P) tables so the
all-to-all stays balanced. It is NVIDIA DeepLearningExamples' `distribute_to_buckets`
(PyTorch/Recommendation/DLRM/dlrm/utils/distributed.py, commit 4154bda6; README,
"Embedding table placement and load balancing"), a longest-processing-time-first
heuristic (Graham, "Bounds on Multiprocessing Timing Anomalies", SIAM J. Appl. Math.
17(2), 1969) with a cap on tables per unit. NVIDIA's code also, above 4 GPUs, keeps GPU 0
for the bottom MLP (run there over the global batch) and places the tables on the
others: embeddings = "sharded_bottom_first" does so (recsys.table_owners places them on
P - 1 units), "sharded" keeps the bottom MLP data-parallel and places the tables on all
P. With T a multiple of P and equal tables, each unit gets T / P tables: the round-robin
split is the special case.
"""

from __future__ import annotations

from collections.abc import Sequence


def place_tables(sizes: Sequence[float], units: int) -> list[list[int]]:
    """Each unit's tables (indices into `sizes`, bytes each), greedy largest first onto
    the least-loaded open unit (ties: the lower index, as a stable sort gives), at most
    ceil(T / units) tables per unit."""
    if units < 1:
        raise ValueError(f"tables need at least one unit, got {units}")
    cap = -(-len(sizes) // units)
    own: list[list[int]] = [[] for _ in range(units)]
    load = [0.0] * units
    for t in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        u = min((v for v in range(units) if len(own[v]) < cap), key=lambda v: load[v])
        own[u].append(t)
        load[u] += sizes[t]
    return own
