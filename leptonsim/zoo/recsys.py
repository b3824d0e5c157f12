"""DLRM-style recommenders: the one builder of a DLRM's layers from its spec
(zoo/dlrm_spec.py)."""

from __future__ import annotations

from leptonsim.models import LayerStack, Model
from leptonsim.ops import Dense, DotInteraction, Embedding, ReLU, SigmoidCrossEntropy
from leptonsim.zoo.dlrm_spec import DLRMS, DLRMSpec


def _mlp(s: LayerStack, name: str, widths: tuple[int, ...], last_relu: bool) -> None:
    for i, width in enumerate(widths):
        s.add(f"{name}.{i}", Dense(width))
        if last_relu or i < len(widths) - 1:
            s.add(f"{name}.{i}.relu", ReLU())


def dlrm(spec: DLRMSpec = DLRMS["dlrm"]) -> Model:
    """Dense features -> bottom MLP (ReLU after every layer); one embedding layer per
    table (sum-pooled over `lookups` indices, sparse updates); the dot interaction of the
    bottom output and the pooled vectors; top MLP (ReLU between layers) -> 1 logit ->
    sigmoid cross-entropy.

    The model's input shape is the dense features'; each table's layer records its own
    index input (lookups,). Without a spec, the zoo's scaled-down `dlrm`."""
    s = LayerStack(spec.name, (spec.dense_features,))
    _mlp(s, "bottom", spec.bottom, last_relu=True)
    for t, rows in enumerate(spec.tables):
        s.add(f"emb.{t}", Embedding(rows, spec.dim, pooling="sum", sparse_update=True,
                                    table_bytes=spec.table_bytes), (spec.lookups,))
    s.add("interaction", DotInteraction(spec.self_interaction, spec.pad_to, spec.fused_interaction),
          (spec.vectors, spec.dim))
    _mlp(s, "top", spec.top, last_relu=False)
    s.add("loss", SigmoidCrossEntropy())
    return s.build()
