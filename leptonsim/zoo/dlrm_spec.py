"""A DLRM described by its sizes (Naumov et al., "Deep Learning Recommendation Model for
Personalization and Recommendation Systems", arXiv:1906.00091, 2019, section 2): dense
features through a bottom MLP; one embedding table per categorical feature, each sum-
pooling `lookups` rows of `dim`; the pairwise dot interaction of the bottom output and
the pooled vectors; a top MLP to one logit.

`DLRMSpec` is the one description every DLRM of leptonsim comes from (the zoo's entries
and a scenario's `[workload.model] dlrm = {...}`); zoo/recsys.py builds its layer list.
A spec checks itself: a size that cannot work is a `SpecError` naming the field.

The sourced entries are NVIDIA DeepLearningExamples' DLRM for PyTorch
(github.com/NVIDIA/DeepLearningExamples, PyTorch/Recommendation/DLRM, commit 4154bda6,
the README's "Training performance results"): dlrm/scripts/main.py's defaults
(embedding_dim 128, bottom_mlp_sizes 512,256,128, top_mlp_sizes 1024,1024,512,256,1,
13 numerical features, interaction_op cuda_dot: the fused interaction kernel), its
interaction output padded to a multiple of 8 (dlrm/nn/interactions.py `padding_size`:
128 + 27 x 26 / 2 = 479 -> 480), and the README's embedding tables "stored in FP32
format" under mixed precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .spec import Sizes, SpecError, positive


@dataclass(frozen=True)
class DLRMSpec(Sizes):
    """A DLRM: `tables` gives each embedding table's rows (its categorical feature's
    cardinality), all `dim` wide; the bottom MLP ends in `dim`, the top MLP in 1.

    The interaction takes the n = len(tables) + 1 vectors' pairwise dot products: the
    strictly lower triangle (n(n-1)/2, DLRM's and NVIDIA's), or with `self_interaction`
    the diagonal too (n(n+1)/2); concatenated with the bottom output and zero-padded up to
    a multiple of `pad_to`; `fused_interaction` is NVIDIA's cuda_dot kernel (ops/
    interaction.py), else a batched GEMM and a gather. `table_bytes` is the element size tables are stored and
    gathered in (0: the step's precision; NVIDIA: 4, fp32 even under AMP)."""

    name: str
    tables: tuple[int, ...]
    dim: int = 128
    dense_features: int = 13
    bottom: tuple[int, ...] = (512, 256, 128)
    top: tuple[int, ...] = (1024, 1024, 512, 256, 1)
    lookups: int = 1            # indices per table per sample (1: Criteo's one-hot features)
    self_interaction: bool = False
    pad_to: int = 1             # the interaction output rounded up to a multiple (NVIDIA: 8)
    fused_interaction: bool = False  # NVIDIA's cuda_dot kernel (main.py's default)
    table_bytes: int = 0        # 0: the step's precision

    def __post_init__(self) -> None:
        for key in ("dim", "dense_features", "lookups", "pad_to"):
            positive(key, getattr(self, key))
        if isinstance(self.table_bytes, bool) or self.table_bytes not in (0, 1, 2, 4, 8):
            raise SpecError("table_bytes", "0 (the precision's), 1, 2, 4 or 8", self.table_bytes)
        _widths("tables", self.tables)
        _widths("bottom", self.bottom)
        _widths("top", self.top)
        if self.bottom[-1] != self.dim:
            raise SpecError("bottom", f"widths ending in the embedding dim {self.dim}",
                            list(self.bottom))
        if self.top[-1] != 1:
            raise SpecError("top", "widths ending in 1 (the logit)", list(self.top))

    @property
    def vectors(self) -> int:
        """Vectors the interaction takes: the bottom MLP's output and one per table."""
        return len(self.tables) + 1

    @property
    def rows(self) -> int:
        """Embedding rows over every table."""
        return sum(self.tables)


def _widths(key: str, values: object) -> None:
    if not isinstance(values, tuple) or not values or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise SpecError(key, "a non-empty list of integers >= 1", values)


# Criteo Terabyte's 26 categorical cardinalities after NVIDIA's preprocessing, which
# replaces the values seen fewer than FL (the frequency threshold) times by one value
# per feature (README, "Preprocessing"): "small" is FL=15, "large" FL=3 (README,
# "Results": small 15 GB, large 82 GB).
CRITEO_FL15 = (  # PyTorch/Recommendation/DLRM/tests/feature_specs/criteo_f15.yaml, cat_0..cat_25
    7912889, 33823, 17139, 7339, 20046, 4, 7105, 1382, 63, 5554114, 582469, 245828, 11,
    2209, 10667, 104, 4, 968, 15, 8165896, 2675940, 7156453, 302516, 12022, 97, 35)
CRITEO_FL3 = (  # TensorFlow2/Recommendation/DLRM_and_DCNv2/dataloading/generate_feature_spec.py
    # (criteo_t3_synthetic, "85 GiB embedding tables"): the only FL=3 cardinalities the
    # repository publishes; 177,944,291 rows x 128 fp32 = 84.9 GiB, against the PyTorch
    # README's "82 GB" (its checkpoint: 81.9), so possibly a slightly different run.
    45833188, 36747, 1572176, 345139, 11, 2209, 11268, 128, 4, 975, 15, 48937457, 17246,
    11316796, 40094537, 452104, 12607, 105, 36, 7414, 20244, 4, 7115, 1442, 63, 29275261)

NVIDIA: dict[str, Any] = {"dim": 128, "dense_features": 13, "bottom": (512, 256, 128),
          "top": (1024, 1024, 512, 256, 1), "pad_to": 8, "fused_interaction": True,
          "table_bytes": 4}  # main.py, above
DLRMS = {
    "dlrm_criteo_small": DLRMSpec("dlrm_criteo_small", CRITEO_FL15, **NVIDIA),
    "dlrm_criteo_large": DLRMSpec("dlrm_criteo_large", CRITEO_FL3, **NVIDIA),
    # a scaled-down DLRM: 8 tables of a million 64-wide rows (2 GB of fp32 embeddings)
    "dlrm": DLRMSpec("dlrm", (1_000_000,) * 8, dim=64, bottom=(512, 256, 64), top=(512, 256, 1)),
}
