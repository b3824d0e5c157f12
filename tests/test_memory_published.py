"""Korthikanti et al., MLSys 2023: Table 2's per-layer activation formulas, evaluated
for Table 3's configurations (seq 2048; a, h, t and micro-batch b per model)."""

import pytest

from leptonsim.parallel.memory import published_layer_bytes

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
