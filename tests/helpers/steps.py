"""Step graphs on small clusters for the parallelism tests: a unit, a stack of Dense
layers, a transformer block and a run from model to trace."""

from __future__ import annotations

from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate, two_level
from leptonsim.models import LayerStack, Model
from leptonsim.ops import Dense, Flatten, LayerNorm, MultiHeadSelfAttention
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.step import build_step
from leptonsim.sim import simulate

UNIT = ComputeUnit("gpu", peak_flops=100e12, memory_bandwidth=2e12, memory_bytes=80e9,
                   efficiency=0.5)
FREE = LinkSpec(latency_s=0.0, bandwidth=1e30)  # communication costs (almost) nothing


def dense_stack(layers: int, width: int = 128, reader: bool = False) -> Model:
    """`layers` Dense layers of `width`; with `reader`, after a free Flatten that reads
    the data, so every Dense computes its input gradient (a model's first layer has
    none) and equal layers make equal pipeline stages."""
    s = LayerStack("stack", (width,))
    if reader:
        s.add("read", Flatten())
    for i in range(layers):
        s.add(f"fc{i}", Dense(width))
    return s.build()


def blocks(n: int = 2, heads: int = 4, seq: int = 8, hidden: int = 32) -> Model:
    """n transformer blocks without residual adds: ln, attention, ln, fc, proj."""
    s = LayerStack("blocks", (seq, hidden))
    for i in range(n):
        s.add(f"ln{i}a", LayerNorm())
        s.add(f"attn{i}", MultiHeadSelfAttention(heads))
        s.add(f"ln{i}b", LayerNorm())
        s.add(f"fc{i}", Dense(4 * hidden))
        s.add(f"proj{i}", Dense(hidden))
    return s.build()


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
