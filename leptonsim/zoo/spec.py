"""A transformer described by its sizes, as peers' model files and Hugging Face
`config.json` files describe one (hidden, heads, layers, sequence, vocabulary...).

`TransformerSpec` is the one description every transformer of leptonsim comes from:
the zoo's entries, a scenario's `[workload.model] transformer = {...}`, and an imported
Hugging Face config (zoo/hf.py) are all specs, and zoo/transformer.py builds the layer
list of one. A spec checks itself: a size that cannot work (heads not divisible by
kv_heads, a zero width) is a `SpecError` naming the field.

Defaults are GPT-2's conventions (learned positions, LayerNorm, GELU, biases, tied
embeddings, causal); Llama-style models set norm = "rmsnorm", activation = "swiglu",
position = "rope", bias = False, tied_embeddings = False.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, get_args

from ..errors import LeptonError
from ..ops.attention import IMPLEMENTATIONS, Implementation

Norm = Literal["layernorm", "rmsnorm"]
Activation = Literal["gelu", "swiglu"]
Position = Literal["learned", "rope"]
NORMS: tuple[Norm, ...] = get_args(Norm)
ACTIVATIONS: tuple[Activation, ...] = get_args(Activation)
POSITIONS: tuple[Position, ...] = get_args(Position)


class SpecError(LeptonError, ValueError):
    """A model size that cannot work: the field, what it must be, what it is."""

    def __init__(self, key: str, expected: str, found: object) -> None:
        self.key, self.expected, self.found = key, expected, found
        super().__init__(f"{key}: expected {expected}, found {found!r}")


class Sizes:
    """What every size spec (TransformerSpec, zoo.dlrm_spec.DLRMSpec) shares: its field
    names, the keys a scenario table may set."""

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]


def positive(key: str, value: object) -> None:
    """SpecError unless `value` is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(key, "an integer >= 1", value)


@dataclass(frozen=True)
class TransformerSpec(Sizes):
    """A decoder (or, with `causal = False`, an encoder) stack of `layers` blocks.

    Attention has `heads` query heads of `head_dim` (hidden // heads by default) and
    `kv_heads` key/value heads (heads by default: multi-head; 1: multi-query; between:
    grouped-query, Ainslie et al. 2023). The MLP is `ffn` wide (4 hidden by default):
    GELU is fc -> gelu -> proj, SwiGLU is silu(gate) * up -> down (Shazeer 2020), three
    matrices. With `experts` > 0 every `moe_every`-th block's MLP is a mixture of
    `experts` MLPs of width `expert_ffn` (ffn by default), `top_k` of them per token,
    plus `shared_experts` always-on ones (DeepSeekMoE), routed by a hidden x experts
    gate; `capacity_factor` bounds the tokens an expert takes (0: no bound, dropless).
    """

    name: str
    layers: int
    hidden: int
    heads: int
    vocab: int
    seq: int
    kv_heads: int = 0           # 0: heads
    head_dim: int = 0           # 0: hidden // heads
    ffn: int = 0                # 0: 4 hidden
    norm: Norm = "layernorm"
    activation: Activation = "gelu"
    position: Position = "learned"
    max_positions: int = 0      # learned positions' table size; 0: seq
    tied_embeddings: bool = True
    causal: bool = True
    attention: Implementation = "flash"
    bias: bool = True           # biases of every projection and MLP matrix
    qkv_bias: bool | None = None  # Q, K, V biases alone (Qwen2); None: as `bias`
    final_norm: bool = True
    dropout: float = 0.0        # p of every dropout (GPT-2, BERT, Megatron: 0.1; Llama: 0)
    # encoders (BERT): post-LN blocks, a LayerNorm on the embeddings, token types, pooler
    post_norm: bool = False
    embedding_norm: bool = False
    type_vocab: int = 0
    pooler: bool = False
    span_head: bool = False     # SQuAD's start/end logits over every token (HF BertForQA)
    # mixture of experts
    experts: int = 0
    top_k: int = 2
    expert_ffn: int = 0         # 0: ffn
    shared_experts: int = 0
    capacity_factor: float = 0.0
    moe_every: int = 1

    def __post_init__(self) -> None:
        for key in ("layers", "hidden", "heads", "vocab", "seq"):
            positive(key, getattr(self, key))
        for key in ("kv_heads", "head_dim", "ffn", "max_positions", "type_vocab", "experts",
                    "expert_ffn", "shared_experts"):
            if getattr(self, key) < 0:
                raise SpecError(key, "an integer >= 0", getattr(self, key))
        _choice("norm", self.norm, NORMS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("position", self.position, POSITIONS)
        _choice("attention", self.attention, IMPLEMENTATIONS)
        if not 0 <= self.dropout < 1:
            raise SpecError("dropout", "a probability in [0, 1)", self.dropout)
        if self.heads % self.kv_group_count:
            raise SpecError("kv_heads", f"a divisor of heads ({self.heads})", self.kv_heads)
        if not self.head_dim and self.hidden % self.heads:
            raise SpecError("heads", f"a divisor of hidden ({self.hidden}), or a head_dim",
                            self.heads)
        if self.position == "learned" and self.max_positions and self.max_positions < self.seq:
            raise SpecError("max_positions", f"at least seq ({self.seq})", self.max_positions)
        if self.experts:
            positive("moe_every", self.moe_every)
            if not 1 <= self.top_k <= self.experts:
                raise SpecError("top_k", f"1..experts ({self.experts})", self.top_k)
            if self.capacity_factor < 0:
                raise SpecError("capacity_factor", "a number >= 0 (0: no bound)",
                                self.capacity_factor)

    @property
    def kv_group_count(self) -> int:
        """Key/value heads (heads when kv_heads is 0)."""
        return self.kv_heads or self.heads

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def ffn_size(self) -> int:
        return self.ffn or 4 * self.hidden

    @property
    def expert_ffn_size(self) -> int:
        return self.expert_ffn or self.ffn_size

    @property
    def positions(self) -> int:
        """Rows of the learned position table (0 with rope)."""
        return 0 if self.position == "rope" else self.max_positions or self.seq

    def is_moe_layer(self, i: int) -> bool:
        """Whether block i's MLP is a mixture of experts (the last of each moe_every)."""
        return self.experts > 0 and (i + 1) % self.moe_every == 0


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(key, f"one of {', '.join(choices)}", value)
