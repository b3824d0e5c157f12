"""Transformers: BERT encoders (post-LN) and GPT decoders (pre-LN, tied embeddings).

A layer has attention (4h^2 + 4h), a 4h-wide feed-forward block (8h^2 + 5h) and two
LayerNorms (4h): 12h^2 + 13h parameters. Dropout (p = `dropout`, 0.1 as GPT-2 and BERT
train) sits where GPT-2, Megatron-LM and BERT put it: on the embeddings, on the
attention probabilities (the attention op's own), after attention's output projection
and after the MLP, before their residual adds (add_dropout); its 1-byte masks are part
of the activation memory Korthikanti et al. (MLSys 2023, section 4.1) count. Attention
is FlashAttention's by default (`attention = "unfused"` for the S x S form; GPT's is
causal), and `with_kernels` sets a model's kernel choices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from leptonsim.models import Layer, LayerStack, Model
from leptonsim.ops import (
    GELU,
    Add,
    Dense,
    Dropout,
    Embedding,
    LayerNorm,
    MultiHeadSelfAttention,
    SoftmaxCrossEntropy,
    Tanh,
)
from leptonsim.ops.attention import Implementation

FUSIONS = ("bias_gelu", "add_norm")


def with_kernels(model: Model, attention: Implementation | None = None,
                 fused: Iterable[str] = ()) -> Model:
    """`model` with every attention layer's implementation set to `attention` (None:
    as built) and the fusions of `fused`: "bias_gelu" makes each GELU that takes a
    Dense's output run in that GEMM's epilogue, "add_norm" each LayerNorm that takes
    an Add's output run in the add's kernel (ops/activation.py, ops/norm.py)."""
    fused = set(fused)
    unknown = fused - set(FUSIONS)
    if unknown:
        raise ValueError(f"unknown fusion {sorted(unknown)[0]!r}; expected {', '.join(FUSIONS)}")
    out: list[Layer] = []
    into = {GELU: ("bias_gelu", "dense"), LayerNorm: ("add_norm", "add")}  # fusion, producer
    for layer in model.layers:
        op = layer.op
        fusion, producer = into.get(type(op), ("", ""))
        before = out[-1] if out else None
        if attention is not None and isinstance(op, MultiHeadSelfAttention):
            op = replace(op, implementation=attention)
        elif (fusion in fused and before is not None and before.kind == producer
              and before.output_shape == layer.input_shape):
            op = replace(op, fused=True)  # type: ignore[type-var]
        out.append(Layer(layer.name, op, layer.input_shape))
    return Model(model.name, model.input_shape, tuple(out))


def add_dropout(s: LayerStack, name: str, p: float) -> None:
    """A Dropout(p) layer named `name` next on the stack, or nothing when p is 0. The
    builders call it after the embeddings, after attention and after the MLP; the
    attention probabilities' dropout is the attention op's own (its `dropout`)."""
    if p:
        s.add(name, Dropout(p))


def _feed_forward(s: LayerStack, name: str, hidden: int, ffn: int, dropout: float) -> None:
    s.add(f"{name}.fc", Dense(ffn))
    s.add(f"{name}.gelu", GELU())
    s.add(f"{name}.proj", Dense(hidden))
    add_dropout(s, f"{name}.dropout", dropout)


def bert(
    name: str,
    layers: int,
    hidden: int,
    heads: int,
    ffn: int,
    *,
    vocab: int = 30_522,
    max_positions: int = 512,
    type_vocab: int = 2,
    seq_len: int = 128,
    pooler: bool = True,
    attention: Implementation = "flash",
    dropout: float = 0.1,
) -> Model:
    """A BERT encoder as HuggingFace's BertModel counts it, ending at the pooler.

    seq_len defaults to 128, the length of most of BERT's pre-training steps. The
    pooler reads only the [CLS] row; that slice is a free view, so its dense layer
    simply records input shape (hidden,).
    """
    if seq_len > max_positions:
        raise ValueError(f"bert: seq_len {seq_len} exceeds max_positions {max_positions}")
    s = LayerStack(name, (seq_len,))
    tokens = (seq_len,)
    s.add("embeddings.word", Embedding(vocab, hidden), tokens)
    s.add("embeddings.position", Embedding(max_positions, hidden), tokens)
    s.add("embeddings.token_type", Embedding(type_vocab, hidden), tokens)
    s.add("embeddings.add", Add(3))
    s.add("embeddings.ln", LayerNorm())
    add_dropout(s, "embeddings.dropout", dropout)
    for i in range(layers):
        s.add(f"layer.{i}.attention", MultiHeadSelfAttention(
            heads, implementation=attention, dropout=dropout))
        add_dropout(s, f"layer.{i}.attention.dropout", dropout)
        s.add(f"layer.{i}.attention.add", Add())
        s.add(f"layer.{i}.attention.ln", LayerNorm())
        _feed_forward(s, f"layer.{i}.ffn", hidden, ffn, dropout)
        s.add(f"layer.{i}.ffn.add", Add())
        s.add(f"layer.{i}.ffn.ln", LayerNorm())
    if pooler:
        s.add("pooler.dense", Dense(hidden), (hidden,))
        s.add("pooler.tanh", Tanh())
    return s.build()


def bert_base() -> Model:
    """BERT-base: 109,482,240 parameters with the pooler."""
    return bert("bert_base", 12, 768, 12, 3072)


def bert_large() -> Model:
    """BERT-large: 335,141,888 parameters with the pooler."""
    return bert("bert_large", 24, 1024, 16, 4096)


def gpt(
    layers: int,
    hidden: int,
    vocab: int,
    seq_len: int,
    heads: int,
    *,
    name: str = "",
    final_layernorm: bool = True,
    attention: Implementation = "flash",
    dropout: float = 0.1,
) -> Model:
    """A GPT decoder of `layers` pre-LN blocks over seq_len tokens, LM head tied.

    Parameters: 12 l h^2 + 13 l h + (V + s) h - Megatron's
    12 l h^2 (1 + 13/(12h) + (V + s)/(12 l h)) - plus 2h for the final LayerNorm,
    which that formula leaves out; pass final_layernorm=False to match it exactly.
    """
    s = LayerStack(name or f"gpt_l{layers}_h{hidden}", (seq_len,))
    tokens = (seq_len,)
    s.add("wte", Embedding(vocab, hidden), tokens)
    s.add("wpe", Embedding(seq_len, hidden), tokens)
    s.add("embed.add", Add())
    add_dropout(s, "embed.dropout", dropout)
    for i in range(layers):
        s.add(f"h.{i}.ln_1", LayerNorm())
        s.add(f"h.{i}.attn", MultiHeadSelfAttention(heads, implementation=attention, causal=True,
                                                    dropout=dropout))
        add_dropout(s, f"h.{i}.attn.dropout", dropout)
        s.add(f"h.{i}.attn.add", Add())
        s.add(f"h.{i}.ln_2", LayerNorm())
        _feed_forward(s, f"h.{i}.mlp", hidden, 4 * hidden, dropout)
        s.add(f"h.{i}.mlp.add", Add())
    if final_layernorm:
        s.add("ln_f", LayerNorm())
    s.add("lm_head", Dense(vocab, use_bias=False, tied=True))
    s.add("loss", SoftmaxCrossEntropy())
    return s.build()


def gpt_params(layers: int, hidden: int, vocab: int, seq_len: int) -> int:
    """Megatron's parameter formula in integer form: 12lh^2 + 13lh + (V + s)h."""
    return 12 * layers * hidden**2 + 13 * layers * hidden + (vocab + seq_len) * hidden


def gpt2_small() -> Model:
    """GPT-2 small (124M): 124,439,808 parameters."""
    return gpt(12, 768, 50_257, 1024, 12, name="gpt2_small")


def gpt3_175b() -> Model:
    """GPT-3 175B: l=96, h=12288, V=51200, s=2048, 96 heads."""
    return gpt(96, 12_288, 51_200, 2048, 96, name="gpt3_175b")
