"""MFU and MBU of a serving run: how much of the units' peak FLOP/s and HBM bandwidth
the service's work uses over the run's span.

    MFU = model FLOPs / (units x peak FLOP/s at the precision x span)
    MBU = bytes read / (replicas x HBM bandwidth x span), per unit

Model FLOPs (Chowdhery et al., "PaLM", 2022, appendix B: the FLOPs the model needs,
not those a recompute repeats): a request of p prompt and o output tokens feeds
L = p + o - 1 tokens (the last token is never fed back), each through every layer's
GEMMs (2 FLOPs per weight), and meets L (L + 1) / 2 query-key pairs causally, 4 d
FLOPs per pair per head per layer; each of its o tokens is emitted by the LM head
(2 V H). Bytes read (Databricks, "LLM Inference Performance Engineering: Best
Practices", 2023, MBU): every iteration reads the unit's weights and the K and V of
every context token of its batch once, as the iteration cost model prices them
(iteration.py). The span is the throughput's (metrics.summary): first arrival to last
finish, idle time included, so both fall as load falls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .engine import Iterations
from .iteration import Shard
from .metrics import PerRequest

if TYPE_CHECKING:
    from ..scenario.serving import Service


def model_flops(per: PerRequest, shard: Shard) -> float:
    """The FLOPs the requests' prefill and decode tokens need, unsplit (tp 1)."""
    spec = shard.spec
    whole = Shard(spec, 1, shard.value_bytes)
    weights = sum(n * k for _, n, k in whole.layer_gemms(1))  # per layer
    fed = (per["prompt_tokens"] + per["output_tokens"] - 1).astype(float)
    pairs = fed * (fed + 1) / 2
    per_pair = 4.0 * spec.heads * spec.head_size
    return float(spec.layers * (2.0 * weights * fed.sum() + per_pair * pairs.sum())
                 + 2.0 * spec.vocab * spec.hidden * per["output_tokens"].sum())


def bytes_read(log: Iterations, weights: float, kv_per_token: float) -> float:
    """Bytes one unit reads over the run, summed over replicas: its weights and the
    K and V of each iteration's context."""
    context = float(np.frombuffer(log.context).sum()) if len(log.context) else 0.0
    return len(log.start) * weights + context * kv_per_token


def utilisation(service: Service, per: PerRequest, log: Iterations,
                span: float) -> dict[str, float]:
    """{"mfu": ..., "mbu": ...} of the run, fractions of peak; NaN over an empty span."""
    if not span > 0:
        return {"mfu": float("nan"), "mbu": float("nan")}
    shard, unit = service.cost.shard, service.cost.unit
    units = service.replicas * shard.tp
    peak = unit.peak(service.table["precision"])
    read = bytes_read(log, service.memory.weights, shard.kv_bytes_per_token())
    return {"mfu": model_flops(per, shard) / (units * peak * span),
            "mbu": read / (service.replicas * unit.memory_bandwidth * span)}
