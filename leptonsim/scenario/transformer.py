"""`[workload.model] transformer = {...}`: a transformer by its sizes (zoo/spec.py), from
nothing, from a zoo transformer (`base`) or from a Hugging Face config.json (`config`),
with any size changed. A 126-layer model is one line: `layers = 126`.

The keys are TransformerSpec's fields, so the schema, the docs and the builder cannot
disagree; `attention` is the model-wide [workload.model] key (it sets every attention
layer, of zoo models too), so it is not repeated here.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

from ..errors import ScenarioError
from ..limits import check_size
from ..zoo import SPECS, get_spec
from ..zoo.hf import read_config
from ..zoo.spec import SpecError, TransformerSpec
from .spec_fields import Schema, field_schema

KEY = "workload.model.transformer"
SIZES = ("layers", "hidden", "heads", "vocab", "seq")  # what a spec from nothing needs
_LEFT_TO_THE_MODEL = {"attention"}

DESCRIPTIONS = {
    "name": "Model name in reports (default: the base's, or 'transformer')",
    "layers": "Transformer blocks",
    "hidden": "Hidden size h",
    "heads": "Query heads a",
    "vocab": "Vocabulary size V",
    "seq": "Sequence length s of a training sample (tokens)",
    "kv_heads": "Key/value heads (grouped-query attention; 1: multi-query); 0: heads",
    "head_dim": "Size of a head; 0: hidden / heads",
    "ffn": "MLP width; 0: 4 x hidden",
    "norm": "layernorm or rmsnorm",
    "activation": "MLP: gelu (fc, GELU, proj) or swiglu (gate and up, SiLU-gated, down)",
    "position": "Positions: learned (a table of max_positions rows) or rope (rotary)",
    "max_positions": "Rows of a learned position table; 0: seq",
    "tied_embeddings": "The LM head shares the word embedding's weights",
    "causal": "A decoder (causal attention, LM head and loss); false: an encoder",
    "bias": "Biases on every projection and MLP matrix",
    "qkv_bias": "Biases on Q, K and V alone (Qwen2), whatever bias says",
    "final_norm": "A norm after the last block",
    "dropout": "Dropout probability on the embeddings, attention probabilities and after "
               "attention and MLP (GPT-2, BERT, Megatron-LM: 0.1); 0: none (Llama)",
    "span_head": "An encoder's SQuAD head: start and end logits over every token (a "
                 "dense layer of 2) and their cross-entropy",
    "post_norm": "Post-norm blocks (BERT): the norm after each residual add",
    "embedding_norm": "A norm on the embeddings (BERT)",
    "type_vocab": "Token-type embedding rows (BERT: 2); 0: none",
    "pooler": "BERT's pooler: a dense layer and tanh on the first token",
    "experts": "Mixture of experts: experts per MoE layer; 0: dense MLPs",
    "top_k": "Experts each token is routed to",
    "expert_ffn": "Width of an expert's MLP; 0: ffn",
    "shared_experts": "Always-on experts beside the routed ones (DeepSeekMoE)",
    "capacity_factor": "Tokens an expert takes, over the mean; 0: no bound (dropless)",
    "moe_every": "Every n-th block is a mixture of experts (1: all)",
}


def _fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(TransformerSpec) if f.name not in _LEFT_TO_THE_MODEL]


def transformer_schema(table: Any) -> Schema:
    hints = typing.get_type_hints(TransformerSpec)
    fields = {f.name: {**field_schema(hints[f.name]), "description": DESCRIPTIONS[f.name]}
              for f in _fields()}
    return table(
        "A transformer by its sizes (docs/scenarios.md): from a zoo transformer (base), a "
        "Hugging Face config.json (config) or nothing (then layers, hidden, heads, vocab and "
        "seq are needed); every other key changes that size", {
            "base": {"enum": sorted(SPECS), "x-any-case": True,
                     "description": "A zoo transformer to start from, in any case"},
            "config": {"type": "string", "description": "A Hugging Face config.json to start "
                                                        "from, relative to the scenario file "
                                                        "(read locally, never downloaded)"},
            **fields})


def build_spec(table: dict[str, Any], file: str = "<string>") -> TransformerSpec:
    """The spec of a `transformer` table; a ScenarioError names the key otherwise."""
    if "base" in table and "config" in table:
        raise ScenarioError(f"{KEY}.config", "one starting point: base or config",
                            table["config"], hint="remove one of them")
    sizes = {k: v for k, v in table.items() if k not in ("base", "config")}
    if "base" in table:
        start: TransformerSpec | None = get_spec(table["base"])
    elif "config" in table:
        root = Path(file).parent if not file.startswith("<") else Path()
        start = read_config(root / table["config"])
    else:
        start = None
        missing = [k for k in SIZES if k not in sizes]
        if missing:
            raise ScenarioError(f"{KEY}.{missing[0]}", f"the {missing[0]} of a transformer "
                                "without a base or config", "<nothing>",
                                hint=f"give {', '.join(SIZES)}, or a base")
    if "layers" in sizes:  # before a spec of them is built
        check_size("blocks", sizes["layers"], f"{KEY}.layers")
    try:
        if start is None:
            return TransformerSpec(**{"name": "transformer", **sizes})
        return dataclasses.replace(start, **sizes)
    except SpecError as err:
        raise ScenarioError(f"{KEY}.{err.key}", err.expected, err.found) from None
