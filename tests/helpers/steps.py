"""Step graphs on small clusters for the parallelism tests: a unit, a transformer
block and a run from model to trace."""

from __future__ import annotations

from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate, two_level
from leptonsim.models import LayerStack, Model
from leptonsim.ops import Dense, LayerNorm, MultiHeadSelfAttention
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.step import build_step
from leptonsim.sim import simulate

UNIT = ComputeUnit("gpu", peak_flops=100e12, memory_bandwidth=2e12, memory_bytes=80e9,
                   efficiency=0.5)
FREE = LinkSpec(latency_s=0.0, bandwidth=1e30)  # communication costs (almost) nothing


def transformer_block(heads: int = 4, seq: int = 16, hidden: int = 64,
                      ffn: int | None = None) -> Model:
    s = LayerStack("block", (seq, hidden))
    s.add("ln1", LayerNorm())
    s.add("attn", MultiHeadSelfAttention(heads))
    s.add("ln2", LayerNorm())
    s.add("fc", Dense(4 * hidden if ffn is None else ffn))
    s.add("proj", Dense(hidden))
    return s.build()


def run(model: Model, cfg: ParallelConfig, link: LinkSpec = FREE, per_node: int | None = None):
    """The step graph, its cluster and its statically scheduled trace."""
    units = replicate(UNIT, cfg.units, "gpu")
    cluster = (fully_connected(units, link) if per_node is None
               else two_level(units, per_node, link, link))
    step = build_step(model, cfg, cluster)
    return step, cluster, simulate(step.graph, cluster, "static")
