"""The transformer zoo (zoo/llm.py, zoo/transformer.py): exact published parameter counts,
`leptonsim model` printing them, and the builder's count as a closed form for any spec."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.scenario import load
from leptonsim.zoo import get_model, get_spec, transformer
from leptonsim.zoo.llm import GPT3_TABLE
from leptonsim.zoo.spec import SpecError, TransformerSpec

# Issue 13's table: the checkpoints' parameter counts (Hugging Face model cards).
EXACT = {
    "llama2_7b": 6_738_415_616,
    "llama2_70b": 68_976_648_192,
    "llama3_8b": 8_030_261_248,
    "llama3_70b": 70_553_706_496,
    "llama3_405b": 405_853_388_800,
    "mistral_7b": 7_241_732_096,
    "mixtral_8x7b": 46_702_792_704,
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_zoo_llm_has_its_exact_published_count(name: str) -> None:
    assert get_model(name).params() == EXACT[name]


@pytest.mark.parametrize("name", sorted(EXACT))
def test_leptonsim_model_prints_the_exact_count(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", name.upper(), "--totals"]) == 0
    assert f"Total params: {EXACT[name]:,}" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "published"), [(r[0], r[1]) for r in GPT3_TABLE]
                         + [("gpt3_175b", 175.0e9)])
def test_gpt3_family_is_within_the_rounding_of_brown_table_2_1(name: str, published: float) -> None:
    """Table 2.1 gives two or three significant figures (350M, 1.3B, 13.0B)."""
    assert abs(get_model(name).params() / published - 1) < 0.02


def _closed_form(s: TransformerSpec) -> int:
    """The module docstring's count of zoo/transformer.py, written out once more."""
    h, q, kv, f = s.hidden, s.heads * s.head_size, s.kv_group_count * s.head_size, s.ffn_size
    qkv_bias = s.bias if s.qkv_bias is None else s.qkv_bias
    norm = h if s.norm == "rmsnorm" else 2 * h
    attn = 2 * h * q + 2 * h * kv + qkv_bias * (q + 2 * kv) + s.bias * h
    mats = 3 if s.activation == "swiglu" else 2
    mlp = mats * h * f + s.bias * ((mats - 1) * f + h)  # gate and up are one 2f-wide Dense
    embeddings = (s.vocab + s.positions + s.type_vocab) * h
    head = s.vocab * h if s.causal and not s.tied_embeddings else 0
    tail = norm * (s.final_norm + s.embedding_norm) + s.pooler * (h * h + h)
    return embeddings + head + tail + s.layers * (attn + mlp + 2 * norm)


specs = st.builds(
    lambda groups, per, d, layers, f, norm, act, pos, tied, bias, qkv: TransformerSpec(
        "t", layers, 8 * groups, groups * per, 50, 16, kv_heads=groups, head_dim=d, ffn=f,
        norm=norm, activation=act, position=pos, tied_embeddings=tied, bias=bias, qkv_bias=qkv),
    st.integers(1, 4), st.integers(1, 3), st.integers(1, 8), st.integers(1, 3),
    st.integers(1, 40), st.sampled_from(["layernorm", "rmsnorm"]),
    st.sampled_from(["gelu", "swiglu"]), st.sampled_from(["learned", "rope"]), st.booleans(),
    st.booleans(), st.none() | st.booleans())


@settings(max_examples=60, deadline=None)
@given(specs)
def test_builder_count_is_the_closed_form_for_any_spec(spec: TransformerSpec) -> None:
    assert transformer(spec).params() == _closed_form(spec)


@settings(max_examples=30, deadline=None)
@given(specs, st.integers(2, 6))
def test_grouped_query_attention_saves_exactly_the_key_value_projections(
        spec: TransformerSpec, shrink: int) -> None:
    """Fewer K, V heads remove 2 h d (+ 2 d biased) per dropped head and layer, nothing else."""
    full = TransformerSpec(**{**spec.__dict__, "kv_heads": spec.heads * shrink,
                              "heads": spec.heads * shrink})
    grouped = TransformerSpec(**{**full.__dict__, "kv_heads": spec.heads})
    qkv_bias = full.bias if full.qkv_bias is None else full.qkv_bias
    per_head = 2 * full.hidden * full.head_size + 2 * full.head_size * qkv_bias
    dropped = full.kv_group_count - grouped.kv_group_count
    assert transformer(full).params() - transformer(grouped).params() == (
        full.layers * dropped * per_head)


def test_zoo_specs_start_scenarios_and_names_are_case_insensitive() -> None:
    assert get_spec("Llama3_70B").kv_heads == 8
    with pytest.raises(KeyError, match="did you mean 'llama3_8b'"):
        get_spec("llama3_9b")


def test_heads_not_divisible_by_kv_heads_names_the_field() -> None:
    with pytest.raises(SpecError, match=r"kv_heads: expected a divisor of heads \(32\), found 6"):
        TransformerSpec("t", 2, 4096, 32, 100, 16, kv_heads=6)


def test_the_bundled_llama3_405b_scenario_is_at_most_25_lines() -> None:
    """Issue 13's target: Llama 3 405B on 1,024 H100s (TP 8 x PP 16, ZeRO-1, sequence
    parallelism) written in at most 25 lines, and it builds to the zoo's exact model."""
    path = Path(__file__).resolve().parents[1] / "scenarios" / "llama3_405b.toml"
    assert len(path.read_text().splitlines()) <= 25
    (scenario,) = load(path)
    assert scenario.step.model.params() == EXACT["llama3_405b"]
    assert (scenario.step.config.tp, scenario.step.config.pp, scenario.cluster.size) == (8, 16, 1024)
