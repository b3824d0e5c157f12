"""Korthikanti et al., MLSys 2023: Table 2's per-layer activation formulas, evaluated
for Table 3's configurations (seq 2048; a, h, t and micro-batch b per model)."""

from pathlib import Path

import pytest

from leptonsim.parallel.memory import published_layer_bytes
from tests.helpers.scripts import benchmark

ROOT = Path(__file__).resolve().parents[1]


S = 2048
TABLE3 = {"22B": (64, 6144, 8, 4), "175B": (96, 12288, 8, 1),   # a, h, t, b
          "530B": (128, 20480, 8, 1), "1T": (160, 25600, 8, 1)}


@pytest.mark.parametrize("name", TABLE3)
def test_table2_terms_for_table3_models(name: str) -> None:
    a, h, t, b = TABLE3[name]
    sbh = S * b * h
    assert published_layer_bytes(S, b, h, a) == sbh * 34 + 5 * a * S * S * b
    assert published_layer_bytes(S, b, h, a, t) == pytest.approx(
        sbh * 10 + (24 * sbh + 5 * a * S * S * b) / t, rel=1e-12)
    assert published_layer_bytes(S, b, h, a, t, sp=True) == pytest.approx(
        (34 * sbh + 5 * a * S * S * b) / t, rel=1e-12)
    assert published_layer_bytes(S, b, h, a, t, sp=True, recompute="selective") == \
        pytest.approx(34 * sbh / t, rel=1e-12)
    assert published_layer_bytes(S, b, h, a, t, recompute="full") == 2 * sbh


def test_sequence_parallel_and_selective_never_keep_more() -> None:
    for a, h, t, b in TABLE3.values():
        plain = published_layer_bytes(S, b, h, a, t)
        assert published_layer_bytes(S, b, h, a, t, sp=True) < plain
        assert published_layer_bytes(S, b, h, a, t, recompute="selective") < plain


def test_unknown_recompute_is_refused() -> None:
    with pytest.raises(ValueError, match="recompute"):
        published_layer_bytes(S, 1, 1024, 16, recompute="partial")


# -- memory per GPU as the papers' configurations hold it ------------------------------
#
# Each configuration of Korthikanti et al.'s Table 3 / Table 5 (22B, 175B, 530B, 1T) with
# each of the paper's techniques, and each row of Narayanan et al., "Efficient Large-Scale
# Language Model Training on GPU Clusters Using Megatron-LM", SC'21, Table 1 (full
# recompute, as its runs used), is planned through the public path (ls.memory on the row
# benchmarks/published.toml transcribes, split as benchmarks/published.py splits it) and
# its first pipeline stage compared with the published formulas
# (benchmarks/memory_peers.py formula_bytes: ZeRO's 16 bytes per parameter of the first
# stage's L/p layers and embedding; Table 2's bytes per layer times the L layers'
# worth section 4.3 says the first stage holds, with interleaving's 1 + (p-1)/(pm); the
# embedding dropout's mask per in-flight micro-batch and, with p = 1, the output layer).
#
# Where the two differ, and why the 5 % still holds:
# - leptonsim balances its stages by cost over whole transformer layers, the embedding
#   with the first and the head with the last as Megatron-LM places them; a first
#   stage may hold a layer fewer or more than L/p when the embedding's cost moves it;
# - with full recompute the peak also holds the one layer being rebuilt for its
#   backward (Table 2's bytes for one micro-batch), which the paper's stored-activation
#   count leaves out and the reference adds, as a term of the peak it does not tabulate;
# - leptonsim's loss keeps its fp32 softmax over the t-split vocabulary as Megatron-LM's
#   does (4sbv/t), but the final norm's and the head's inputs are whole on every rank
#   (4sbh) where the paper divides them by t: within the tolerance (p = 1 rows only).

MEMORY_PEERS = benchmark("memory_peers")


@pytest.mark.parametrize(("row_id", "technique"), MEMORY_PEERS.cases())
def test_memory_per_gpu_within_5_percent_of_the_published_formula(row_id: str, technique: str) -> None:
    row = MEMORY_PEERS.BY_ID[row_id]
    recompute, sp = MEMORY_PEERS.TECHNIQUES[technique]
    first = MEMORY_PEERS.leptonsim_bytes(row, recompute, sp)
    state, activations = MEMORY_PEERS.formula_bytes(row, recompute, sp)
    assert first.weights_bytes + first.gradients_bytes + first.optimizer_bytes == \
        pytest.approx(state, rel=0.05)
    assert first.total_bytes == pytest.approx(state + activations, rel=0.05)


def test_the_configurations_are_every_row_of_the_tables() -> None:
    """22B, 175B, 530B, 1T with five techniques each; Narayanan's ten rows."""
    cases = MEMORY_PEERS.cases()
    assert len(cases) == 4 * 5 + 10
    assert {t for _, t in cases} == set(MEMORY_PEERS.TECHNIQUES)
