"""DLRM-style recommender."""

from __future__ import annotations

from leptonsim.models import LayerStack, Model
from leptonsim.ops import Dense, DotInteraction, Embedding, ReLU, SigmoidCrossEntropy


def _mlp(s: LayerStack, name: str, widths: tuple[int, ...], last_relu: bool) -> None:
    for i, width in enumerate(widths):
        s.add(f"{name}.{i}", Dense(width))
        if last_relu or i < len(widths) - 1:
            s.add(f"{name}.{i}.relu", ReLU())


def dlrm(
    dense_features: int = 13,
    bottom: tuple[int, ...] = (512, 256, 64),
    tables: int = 8,
    rows: int = 1_000_000,
    dim: int = 64,
    lookups: int = 1,
    top: tuple[int, ...] = (512, 256, 1),
) -> Model:
    """Dense features -> bottom MLP; `tables` embedding lookups (sum-pooled over
    `lookups` indices, sparse updates); pairwise dot interaction; top MLP -> 1 logit.

    The model's input shape is the dense features'; each table's layer records its own
    index input (lookups,). Defaults resemble DLRM's Criteo configuration, scaled down
    to 8 tables of a million 64-wide rows (2 GB of fp32 embeddings).
    """
    if not bottom or bottom[-1] != dim:
        raise ValueError(f"dlrm: the bottom MLP must end in the embedding dim {dim}, got {bottom}")
    if not top or top[-1] != 1:
        raise ValueError(f"dlrm: the top MLP must end in 1 logit, got {top}")
    s = LayerStack("dlrm", (dense_features,))
    _mlp(s, "bottom", bottom, last_relu=True)
    for t in range(tables):
        s.add(f"emb.{t}", Embedding(rows, dim, pooling="sum", sparse_update=True), (lookups,))
    s.add("interaction", DotInteraction(), (tables + 1, dim))
    _mlp(s, "top", top, last_relu=False)
    s.add("loss", SigmoidCrossEntropy())
    return s.build()
