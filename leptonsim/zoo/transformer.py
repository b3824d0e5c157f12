"""Transformers built from their sizes: one builder, `transformer(spec)`, for every
decoder (GPT, Llama, Mistral, Mixtral, Qwen) and encoder (BERT) of leptonsim.

A pre-norm block (GPT-2, Llama) is norm -> attention -> add, norm -> MLP -> add; a
post-norm block (BERT) is attention -> add -> norm, MLP -> add -> norm. The MLP is
fc -> GELU -> proj, or for SwiGLU one GEMM to the gate and up halves (2 ffn wide, as
Megatron-LM fuses them) -> SwiGLU -> down; a mixture-of-experts block's MLP is one MoE
op. Parameter counts follow (Hugging Face's counts, which tests assert):
  attention   H (q + 2 kv) + q H (+ q + 2 kv, + H biases), q = heads d, kv = kv_heads d
  MLP         GELU: 2 H F (+ F + H); SwiGLU: 3 H F (+ 2F + H)
  norms       LayerNorm 2H, RMSNorm H
  embeddings  V H (+ positions H, + types H); an untied LM head V H more.
GPT-2's layer: 12h^2 + 13h. Dropout (p = spec.dropout; GPT-2, BERT and Megatron-LM
train with 0.1, Llama with none) sits where they put it: on the embeddings, on the
attention probabilities (the attention op's own), and after attention's output
projection and after the MLP, before their residual adds; its 1-byte masks are part of
the activation memory Korthikanti et al. (MLSys 2023, section 4.1) count.
Attention is FlashAttention's by default (`attention = "unfused"` for the S x S form),
and `with_kernels` sets a model's kernel choices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from leptonsim.models import Layer, LayerStack, Model
from leptonsim.ops import (
    GELU,
    Add,
    BatchNorm,
    Dense,
    Dropout,
    Embedding,
    LayerNorm,
    MoE,
    MultiHeadSelfAttention,
    ReLU,
    RMSNorm,
    SoftmaxCrossEntropy,
    SwiGLU,
    Tanh,
)
from leptonsim.ops.attention import Implementation
from leptonsim.ops.base import Op
from leptonsim.zoo.spec import TransformerSpec

FUSIONS = ("bias_gelu", "add_norm", "bn_add_relu")
INTO = {GELU: ("bias_gelu", ("dense",)), LayerNorm: ("add_norm", ("add",)),
        RMSNorm: ("add_norm", ("add",)), ReLU: ("bn_add_relu", ("batchnorm", "add")),
        Add: ("bn_add_relu", ("batchnorm",))}
"""Consumer op -> (its fusion, the kinds of producer it fuses into)."""


def with_kernels(model: Model, attention: Implementation | None = None,
                 fused: Iterable[str] = ()) -> Model:
    """`model` with every attention layer's implementation set to `attention` (None:
    as built) and the fusions of `fused`: "bias_gelu" makes each GELU that takes a
    Dense's output run in that GEMM's epilogue, "add_norm" each LayerNorm that takes
    an Add's output run in the add's kernel (ops/activation.py, ops/norm.py);
    "bn_add_relu" each ReLU that takes a BatchNorm's or an Add's output, and each Add
    that takes a BatchNorm's, run in that op's kernel, which then writes no output, and
    a ReLU after a BatchNorm has its gradient computed in the BatchNorm's backward
    (XLA's fusion of the elementwise ops around its expanded BatchNorm: docs/model.md)."""
    fused = set(fused)
    unknown = fused - set(FUSIONS)
    if unknown:
        raise ValueError(f"unknown fusion {sorted(unknown)[0]!r}; expected {', '.join(FUSIONS)}")
    out: list[Layer] = []
    for layer in model.layers:
        op = layer.op
        fusion, producers = INTO.get(type(op), ("", ()))
        before = out[-1] if out else None
        if attention is not None and isinstance(op, MultiHeadSelfAttention):
            op = replace(op, implementation=attention)
        elif (fusion in fused and before is not None and before.kind in producers
              and before.output_shape == layer.input_shape):
            op = replace(op, fused=True)  # type: ignore[type-var]
            if fusion == "bn_add_relu":
                out[-1], op = _fuse_elementwise(before, op)
        out.append(Layer(layer.name, op, layer.input_shape))
    return Model(model.name, model.input_shape, tuple(out))


def _fuse_elementwise(before: Layer, op: Op) -> tuple[Layer, Op]:
    """The producer (a BatchNorm or an Add) feeding `op` (a fused ReLU or Add) in its
    kernel: it writes no output; a ReLU's gradient moves into a BatchNorm's backward."""
    producer = replace(before.op, feeds=True)  # type: ignore[type-var]
    if isinstance(op, ReLU) and isinstance(producer, BatchNorm):
        producer, op = replace(producer, relu_grad=True), replace(op, grad_fused=True)
    return replace(before, op=producer), op


def transformer(spec: TransformerSpec) -> Model:
    """The layer list of `spec` (zoo/spec.py), from token ids (seq,) to the loss (a
    decoder's LM head and cross-entropy) or, for an encoder, its last hidden states (and
    pooler)."""
    s = LayerStack(spec.name, (spec.seq,))
    tokens = (spec.seq,)
    _embeddings(s, spec, tokens)
    for i in range(spec.layers):
        _block(s, spec, i)
    if spec.final_norm:
        s.add("final_norm", _norm(spec))
    if spec.pooler:
        s.add("pooler.dense", Dense(spec.hidden), (spec.hidden,))
        s.add("pooler.tanh", Tanh())
    if spec.span_head:  # start and end logits per token (HF BertForQuestionAnswering)
        s.add("span_head", Dense(2), (spec.seq, spec.hidden))
        s.add("loss", SoftmaxCrossEntropy())
    if spec.causal:
        s.add("lm_head", Dense(spec.vocab, use_bias=False, tied=spec.tied_embeddings))
        s.add("loss", SoftmaxCrossEntropy())
    return s.build()


def _embeddings(s: LayerStack, spec: TransformerSpec, tokens: tuple[int, ...]) -> None:
    lookups = [("word", spec.vocab), ("position", spec.positions), ("type", spec.type_vocab)]
    used = [(name, rows) for name, rows in lookups if rows]
    for name, rows in used:
        s.add(f"embed.{name}", Embedding(rows, spec.hidden), tokens)
    if len(used) > 1:
        s.add("embed.add", Add(len(used)))
    if spec.embedding_norm:
        s.add("embed.norm", _norm(spec))
    _dropout(s, "embed.dropout", spec)


def _block(s: LayerStack, spec: TransformerSpec, i: int) -> None:
    name = f"layer.{i}"
    post = spec.post_norm
    for part, add_part in (("attn", _attention), ("mlp", _mlp)):
        if not post:
            s.add(f"{name}.{part}_norm", _norm(spec))
        add_part(s, spec, f"{name}.{part}", i)
        _dropout(s, f"{name}.{part}.dropout", spec)
        s.add(f"{name}.{part}.add", Add())
        if post:
            s.add(f"{name}.{part}_norm", _norm(spec))


def _attention(s: LayerStack, spec: TransformerSpec, name: str, i: int) -> None:
    s.add(name, MultiHeadSelfAttention(
        spec.heads, use_bias=spec.bias, implementation=spec.attention, causal=spec.causal,
        kv_heads=spec.kv_heads if spec.kv_group_count != spec.heads else 0,
        head_dim=spec.head_dim if spec.head_size * spec.heads != spec.hidden else 0,
        rope=spec.position == "rope",
        qkv_bias=None if spec.qkv_bias is None or spec.qkv_bias == spec.bias else spec.qkv_bias,
        dropout=spec.dropout))


def _mlp(s: LayerStack, spec: TransformerSpec, name: str, i: int) -> None:
    if spec.is_moe_layer(i):
        s.add(name, MoE(spec.experts, spec.top_k, spec.expert_ffn_size, spec.activation,
                        spec.shared_experts, spec.capacity_factor))
    elif spec.activation == "swiglu":
        s.add(f"{name}.gate_up", Dense(2 * spec.ffn_size, use_bias=spec.bias))
        s.add(f"{name}.act", SwiGLU())
        s.add(f"{name}.down", Dense(spec.hidden, use_bias=spec.bias))
    else:
        s.add(f"{name}.fc", Dense(spec.ffn_size, use_bias=spec.bias))
        s.add(f"{name}.act", GELU())
        s.add(f"{name}.proj", Dense(spec.hidden, use_bias=spec.bias))


def _dropout(s: LayerStack, name: str, spec: TransformerSpec) -> None:
    if spec.dropout:
        s.add(name, Dropout(spec.dropout))


def _norm(spec: TransformerSpec) -> LayerNorm:
    return RMSNorm() if spec.norm == "rmsnorm" else LayerNorm()


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
    return transformer(TransformerSpec(
        name, layers, hidden, heads, vocab, seq_len, ffn=ffn, max_positions=max_positions,
        type_vocab=type_vocab, pooler=pooler, attention=attention, causal=False, dropout=dropout,
        post_norm=True, embedding_norm=True, final_norm=False))


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
    return transformer(TransformerSpec(
        name or f"gpt_l{layers}_h{hidden}", layers, hidden, heads, vocab, seq_len,
        attention=attention, final_norm=final_layernorm, dropout=dropout))


def gpt_params(layers: int, hidden: int, vocab: int, seq_len: int) -> int:
    """Megatron's parameter formula in integer form: 12lh^2 + 13lh + (V + s)h."""
    return 12 * layers * hidden**2 + 13 * layers * hidden + (vocab + seq_len) * hidden


def gpt2_small() -> Model:
    """GPT-2 small (124M): 124,439,808 parameters."""
    return gpt(12, 768, 50_257, 1024, 12, name="gpt2_small")


def gpt3_175b() -> Model:
    """GPT-3 175B: l=96, h=12288, V=51200, s=2048, 96 heads."""
    return gpt(96, 12_288, 51_200, 2048, 96, name="gpt3_175b")
