"""Hugging Face config.json import (zoo/hf.py): the bundled published configs, the
round trip of any spec through a llama-type config, and one-line errors naming file and key.
Every fixture built (zoo/transformer.py) has its checkpoint's published parameter count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.errors import ScenarioError
from leptonsim.zoo.hf import ConfigError, read_config, spec_from_config
from leptonsim.zoo.spec import TransformerSpec
from leptonsim.zoo.transformer import transformer

DATA = Path(__file__).parent / "data" / "hf"


def _decoder_params(s: TransformerSpec) -> int:
    """Parameters of a bias-free RMSNorm SwiGLU decoder (Llama, Mistral, Mixtral):
    V h (2 if untied) + L (h (2 q + 2 kv) + E 3 h f + h E (router, if E) + 2 h) + h."""
    q, kv = s.heads * s.head_size, s.kv_group_count * s.head_size
    experts = s.experts or 1
    router = s.hidden * s.experts
    block = s.hidden * (2 * q + 2 * kv) + experts * 3 * s.hidden * s.ffn_size + router + 2 * s.hidden
    return s.vocab * s.hidden * (1 if s.tied_embeddings else 2) + s.layers * block + s.hidden


# Published parameter counts (the model cards / safetensors totals of the fixtures' repos).
PUBLISHED = {"llama2_7b": 6_738_415_616, "llama3_8b": 8_030_261_248,
             "mistral_7b": 7_241_732_096, "mixtral_8x7b": 46_702_792_704}


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_decoder_fixture_has_the_published_parameter_count(model: str) -> None:
    assert _decoder_params(read_config(DATA / model / "config.json")) == PUBLISHED[model]


# Hugging Face `num_parameters()` of each fixture's model class (the model cards' totals):
# Qwen2-7B 7.62B, pythia-160m 162,322,944 (embed_out untied), GPT2Model and BertModel
# (with the pooler) as transformers counts them.
BUILT = {**PUBLISHED, "qwen2_7b": 7_615_616_512, "pythia": 162_322_944,
         "gpt2": 124_439_808, "bert_base_uncased": 109_482_240}


@pytest.mark.parametrize("model", sorted(BUILT))
def test_every_fixture_builds_to_its_published_parameter_count(model: str) -> None:
    assert transformer(read_config(DATA / model / "config.json")).params() == BUILT[model]


EXPECTED = {
    "llama3_8b": dict(layers=32, hidden=4096, heads=32, kv_heads=8, ffn=14336, vocab=128256,
                      seq=8192, norm="rmsnorm", activation="swiglu", position="rope",
                      bias=False, tied_embeddings=False),
    "mixtral_8x7b": dict(experts=8, top_k=2, kv_heads=8, ffn=14336, seq=32768),
    "qwen2_7b": dict(layers=28, hidden=3584, heads=28, kv_heads=4, qkv_bias=True, bias=False,
                     vocab=152064, ffn=18944),
    "gpt2": dict(layers=12, hidden=768, heads=12, vocab=50257, seq=1024, max_positions=1024,
                 ffn=0, tied_embeddings=True, bias=True, norm="layernorm", position="learned"),
    "pythia": dict(layers=12, hidden=768, position="rope", tied_embeddings=False, bias=True,
                   vocab=50304, seq=2048, activation="gelu"),
    "bert_base_uncased": dict(causal=False, post_norm=True, embedding_norm=True, pooler=True,
                              type_vocab=2, seq=512, vocab=30522, final_norm=False),
}


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_fixture_imports_with_the_right_fields(model: str) -> None:
    spec = read_config(DATA / model / "config.json")
    assert spec.name == model
    assert {k: getattr(spec, k) for k in EXPECTED[model]} == EXPECTED[model]


def _as_llama_config(s: TransformerSpec) -> dict:
    return {"model_type": "llama", "hidden_size": s.hidden, "num_hidden_layers": s.layers,
            "num_attention_heads": s.heads, "num_key_value_heads": s.kv_heads,
            "head_dim": s.head_dim, "intermediate_size": s.ffn, "vocab_size": s.vocab,
            "max_position_embeddings": s.seq, "tie_word_embeddings": s.tied_embeddings,
            "hidden_act": "silu"}


@st.composite
def llama_specs(draw: st.DrawFn) -> TransformerSpec:
    kv = draw(st.integers(1, 8))
    heads = kv * draw(st.integers(1, 8))
    head_dim = draw(st.sampled_from([0, 64, 128]))
    hidden = heads * draw(st.integers(1, 256)) if not head_dim else draw(st.integers(1, 9000))
    seq = draw(st.integers(1, 1 << 17))
    return TransformerSpec(
        name="m", layers=draw(st.integers(1, 128)), hidden=hidden, heads=heads,
        kv_heads=draw(st.sampled_from([0, kv])), head_dim=head_dim,
        ffn=draw(st.integers(1, 60000)), vocab=draw(st.integers(1, 300000)), seq=seq,
        max_positions=seq, tied_embeddings=draw(st.booleans()), norm="rmsnorm",
        activation="swiglu", position="rope", bias=False)


@settings(max_examples=200, deadline=None)
@given(llama_specs())
def test_any_llama_spec_round_trips_through_a_config(spec: TransformerSpec) -> None:
    assert spec_from_config(_as_llama_config(spec), "m") == spec


def _error(tmp_path: Path, text: str) -> str:
    (tmp_path / "m").mkdir()
    file = tmp_path / "m" / "config.json"
    file.write_text(text)
    with pytest.raises(ConfigError) as e:
        read_config(file)
    assert isinstance(e.value, ScenarioError)
    assert e.value.in_file("scenario.toml") is e.value  # it keeps naming the config file
    return e.value.line().replace(str(file), "FILE")


LLAMA = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4, "vocab_size": 100}


def test_unknown_architecture_lists_the_known(tmp_path: Path) -> None:
    assert _error(tmp_path, json.dumps({**LLAMA, "model_type": "t5"})) == (
        "FILE: model_type: expected one of llama, mistral, mixtral, qwen2, gpt2, gpt_neox, "
        "bert, found 't5'")


def test_missing_required_size(tmp_path: Path) -> None:
    config = {k: v for k, v in LLAMA.items() if k != "hidden_size"}
    assert _error(tmp_path, json.dumps(config)) == (
        "FILE: hidden_size: expected an integer >= 1 (a required size), found nothing")


def test_size_of_the_wrong_type(tmp_path: Path) -> None:
    assert _error(tmp_path, json.dumps({**LLAMA, "num_hidden_layers": "32"})) == (
        "FILE: num_hidden_layers: expected an integer, found '32'")


def test_invalid_json(tmp_path: Path) -> None:
    assert _error(tmp_path, '{"model_type": "llama",') == (
        "FILE: expected valid JSON, found 'Expecting property name enclosed in double "
        "quotes at line 1'")


def test_impossible_sizes_name_the_spec_field(tmp_path: Path) -> None:
    assert _error(tmp_path, json.dumps({**LLAMA, "num_key_value_heads": 3})) == (
        "FILE: kv_heads: expected a divisor of heads (4), found 3")


def test_architecture_falls_back_to_the_class_name() -> None:
    config = {k: v for k, v in LLAMA.items() if k != "model_type"}
    config["architectures"] = ["MistralForCausalLM"]
    assert spec_from_config(config, "m").ffn == 14336  # MistralConfig's default
