"""Korthikanti et al., MLSys 2023: Table 2's per-layer activation formulas, evaluated
for Table 3's configurations (seq 2048; a, h, t and micro-batch b per model)."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import leptonsim as ls
from leptonsim.parallel.memory import published_layer_bytes

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
# benchmarks/published.toml transcribes, built by benchmarks/published.py as the
# benchmark builds it) and its first pipeline stage compared with the published formula:
#
# - model state: 16 bytes per parameter (fp16 weights and gradients, fp32 master copy and
#   Adam's two moments: Rajbhandari et al., "ZeRO", SC'20, section 3.1, 2 + 2 + 12 Psi),
#   over the first stage's parameters: its L/p layers of 12h^2 + 13h (Narayanan et al.
#   section 5.1's count) over t, and the word embedding Vh over t (Megatron's
#   vocabulary-parallel embedding) with the positions' sh whole.
# - activations: Table 2's bytes per layer times L layers (section 4.3: the first stage
#   holds p micro-batches of L/p layers with 1F1B; interleaved with m chunks, times
#   1 + (p-1)/(pm)), plus section 4.3's extras: the embedding dropout's mask, sbh per
#   in-flight micro-batch (/t with sp), and with p = 1 the output layer on the same
#   stage, 4sbh/t (1 + v/h).
#
# Where the two differ, and why the 5 % still holds:
# - leptonsim balances its stages by cost at op granularity, so a first stage holds
#   the embedding and about L/p layers, not exactly L/p (stage boundaries can fall
#   inside a layer);
# - with full recompute the peak also holds the one layer being rebuilt for its
#   backward (Table 2's bytes for one micro-batch), which the paper's stored-activation
#   count leaves out; the reference adds it, as a term of the peak the paper does not
#   tabulate;
# - leptonsim keeps the loss's logits at the activation precision on every rank (the
#   loss is replicated), the paper counts them in fp32 split over t (4sbv/t): within
#   the tolerance at these vocabularies.

TECHNIQUES = {"none": ("none", False), "sp": ("none", True), "selective": ("selective", False),
              "sp+selective": ("selective", True), "full": ("full", False)}


def _published() -> tuple[ModuleType, list[dict], dict, dict]:
    spec = importlib.util.spec_from_file_location("published", ROOT / "benchmarks" / "published.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("published", module)
    spec.loader.exec_module(module)
    rows, platforms, stand_ins = module.load()
    return module, rows, platforms, stand_ins


PUBLISHED, ROWS, PLATFORMS, STAND_INS = _published()
BY_ID = {r["id"]: r for r in ROWS}
CASES = [(r["id"], t) for r in ROWS if r["id"].startswith("korthikanti") and r["id"].endswith("-full")
         for t in TECHNIQUES] + [(r["id"], "full") for r in ROWS if r["id"].startswith("narayanan")]


def formula_bytes(row: dict, recompute: str, sp: bool) -> tuple[float, float]:
    """(model state, activations) of the first stage by the published formulas."""
    L, h, a, v, s = row["layers"], row["hidden"], row["heads"], row["vocab"], row["seq"]
    t, p, b, m = row["tp"], row["pp"], row["microbatch"], row.get("chunks", 1)
    params = L // p * (12 * h * h + 13 * h) / t + v * h / t + s * h
    microbatches = row["batch"] // (row["gpus"] // (t * p)) // b
    held = min(p, microbatches) * (1 + (p - 1) / (p * m) if m > 1 else 1)
    layer = published_layer_bytes(s, b, h, a, t, sp=sp, recompute=recompute)
    activations = L // p * layer * held + s * b * h * held / (t if sp else 1)
    if p == 1:
        activations += 4 * s * b * h / t * (1 + v / h)
    if recompute == "full":
        activations += published_layer_bytes(s, b, h, a, t, sp=sp)
    return 16 * params, activations


@pytest.mark.parametrize(("row_id", "technique"), CASES)
def test_memory_per_gpu_within_5_percent_of_the_published_formula(row_id: str, technique: str) -> None:
    row = BY_ID[row_id]
    recompute, sp = TECHNIQUES[technique]
    hw, _ = PUBLISHED.hardware(row, PLATFORMS[row["platform"]], STAND_INS)
    keys = PUBLISHED.split(row, big=False) | {"recompute": recompute, "sp": sp}
    _, first = ls.memory(PUBLISHED.model_of(row), hw, **keys)[0]
    state, activations = formula_bytes(row, recompute, sp)
    assert first.weights_bytes + first.gradients_bytes + first.optimizer_bytes == \
        pytest.approx(state, rel=0.05)
    assert first.total_bytes == pytest.approx(state + activations, rel=0.05)
