"""Import a Hugging Face `config.json` (a local file, never downloaded) as a `TransformerSpec`.

The architecture is the config's `model_type` (else its first `architectures` entry).
A key the config leaves out takes the default of the Hugging Face config class
(huggingface/transformers, src/transformers/models/<type>/configuration_<type>.py:
LlamaConfig, MistralConfig, MixtralConfig, Qwen2Config, GPT2Config, GPTNeoXConfig,
BertConfig), except the four sizes every published config states (hidden, layers, heads,
vocabulary), which are required: a config without them is not describing a model.
GPT-NeoX's `rotary_pct` and `use_parallel_residual` change neither parameter counts nor
FLOPs of the GEMMs, so they are read past.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import TableError
from .spec import SpecError, TransformerSpec


class ConfigError(TableError):
    """A mistake in a Hugging Face config.json: it names that file and the key."""


# Per architecture: the spec's fixed conventions, the config's key names for
# (hidden, layers, heads, vocab, positions, ffn), and the HF class's defaults.
_LLAMA_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
               "max_position_embeddings", "intermediate_size")
_LLAMA_STYLE = dict(norm="rmsnorm", activation="swiglu", position="rope", bias=False)
ARCHITECTURES: dict[str, dict[str, Any]] = {
    # LlamaConfig: max_position_embeddings 2048, intermediate_size 11008, untied
    "llama": dict(keys=_LLAMA_KEYS, style=_LLAMA_STYLE, positions=2048, ffn=11008, tied=False),
    # MistralConfig: max_position_embeddings 4096 * 32, intermediate_size 14336
    "mistral": dict(keys=_LLAMA_KEYS, style=_LLAMA_STYLE, positions=4096 * 32, ffn=14336,
                    tied=False),
    # MixtralConfig: as Mistral, num_local_experts 8, num_experts_per_tok 2
    "mixtral": dict(keys=_LLAMA_KEYS, style=_LLAMA_STYLE, positions=4096 * 32, ffn=14336,
                    tied=False, experts=8, top_k=2),
    # Qwen2Config: max_position_embeddings 32768, intermediate_size 22016; Q, K, V biased
    "qwen2": dict(keys=_LLAMA_KEYS, style={**_LLAMA_STYLE, "qkv_bias": True},
                  positions=32768, ffn=22016, tied=False),
    # GPT2Config: n_positions 1024, n_inner None (4 n_embd), tied
    "gpt2": dict(keys=("n_embd", "n_layer", "n_head", "vocab_size", "n_positions", "n_inner"),
                 style={}, positions=1024, ffn=0, tied=True),
    # GPTNeoXConfig: max_position_embeddings 2048, intermediate_size 24576, untied embed_out
    "gpt_neox": dict(keys=_LLAMA_KEYS, style=dict(position="rope"), positions=2048,
                     ffn=24576, tied=False),
    # BertConfig: max_position_embeddings 512, intermediate_size 3072, type_vocab_size 2
    "bert": dict(keys=_LLAMA_KEYS, style=dict(causal=False, post_norm=True,
                                              embedding_norm=True, pooler=True,
                                              final_norm=False),
                 positions=512, ffn=3072, tied=True, type_vocab=2),
}
_CLASS_NAMES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
                "MixtralForCausalLM": "mixtral", "Qwen2ForCausalLM": "qwen2",
                "GPT2LMHeadModel": "gpt2", "GPTNeoXForCausalLM": "gpt_neox",
                "BertForMaskedLM": "bert", "BertModel": "bert"}


def read_config(path: str | Path) -> TransformerSpec:
    """The spec of the config.json at `path`, named by `_name_or_path` or its directory."""
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except OSError as e:
        raise ConfigError("", "a readable config.json", e.strerror or str(e),
                          file=str(path)) from None
    except json.JSONDecodeError as e:
        raise ConfigError("", "valid JSON", f"{e.msg} at line {e.lineno}",
                          file=str(path)) from None
    if not isinstance(config, dict):
        raise ConfigError("", "a JSON object", type(config).__name__, file=str(path))
    name = config.get("_name_or_path") or path.resolve().parent.name
    try:
        return spec_from_config(config, str(name).split("/")[-1])
    except ConfigError as e:
        raise ConfigError(e.path, e.expected, e.found, file=str(path), hint=e.hint) from None


def spec_from_config(config: dict, name: str) -> TransformerSpec:
    """The spec a Hugging Face config dict describes (ConfigError naming the key if not)."""
    arch = _architecture(config)
    a = ARCHITECTURES[arch]
    hk, lk, nk, vk, pk, fk = a["keys"]
    positions = _size(config, pk, a["positions"])
    experts = _size(config, "num_local_experts", a.get("experts", 0))
    fields: dict[str, Any] = dict(
        name=name, hidden=_size(config, hk), layers=_size(config, lk), heads=_size(config, nk),
        vocab=_size(config, vk), seq=positions, max_positions=positions,
        ffn=_size(config, fk, a["ffn"]),
        kv_heads=_size(config, "num_key_value_heads", 0),
        head_dim=_size(config, "head_dim", 0),
        tied_embeddings=_flag(config, "tie_word_embeddings", a["tied"]),
        type_vocab=_size(config, "type_vocab_size", a.get("type_vocab", 0)),
        experts=experts, dropout=_dropout(config, arch), **a["style"])
    if experts:
        fields["top_k"] = _size(config, "num_experts_per_tok", a.get("top_k", 2))
    _check_activation(config, arch)
    try:
        return TransformerSpec(**fields)
    except SpecError as e:
        raise ConfigError(e.key, e.expected, e.found, file="<config>") from None


def _architecture(config: dict) -> str:
    arch = config.get("model_type")
    if arch is None:
        names = config.get("architectures") or []
        arch = _CLASS_NAMES.get(names[0]) if isinstance(names, list) and names else None
        if arch is None:
            raise ConfigError("model_type", f"one of {', '.join(ARCHITECTURES)}",
                              "<nothing>", file="<config>")
    if arch not in ARCHITECTURES:
        raise ConfigError("model_type", f"one of {', '.join(ARCHITECTURES)}", arch,
                          file="<config>")
    return str(arch)


def _size(config: dict, key: str, default: int | None = None) -> int:
    value = config.get(key)
    if value is None:
        if default is None:
            raise ConfigError(key, "an integer >= 1 (a required size)", "<nothing>",
                              file="<config>")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, "an integer", value, file="<config>")
    return value


# The config key of the residual (hidden) dropout, and the HF class's default for it.
_DROPOUT = {"gpt2": ("resid_pdrop", 0.1), "bert": ("hidden_dropout_prob", 0.1),
            "gpt_neox": ("hidden_dropout", 0.0)}


def _dropout(config: dict, arch: str) -> float:
    key, default = _DROPOUT.get(arch, ("attention_dropout", 0.0))
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, "a probability", value, file="<config>")
    return float(value)


def _flag(config: dict, key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(key, "true or false", value, file="<config>")
    return value


def _check_activation(config: dict, arch: str) -> None:
    """Llama-family MLPs are SiLU-gated (SwiGLU); the others' GELU variants all cost alike."""
    key = "activation_function" if arch == "gpt2" else "hidden_act"
    act = config.get(key)
    gated = ARCHITECTURES[arch]["style"].get("activation") == "swiglu"
    allowed = ("silu",) if gated else ("gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh")
    if act is not None and act not in allowed:
        raise ConfigError(key, f"one of {', '.join(allowed)}", act, file="<config>")
