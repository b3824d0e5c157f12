"""Small wired networks the precision study and the tests' split oracle execute.

gpt_block is one pre-LN GPT block (LayerNorm, attention, residual add, LayerNorm,
Dense(ffn), GELU, Dense(hidden), residual add), optionally ending in a vocabulary
head and its loss; mlp_stack is a plain Dense/activation stack ending in a loss.
"""

from __future__ import annotations

from collections.abc import Sequence

from leptonsim.kernels.network import Network, network
from leptonsim.models import LayerStack
from leptonsim.ops import GELU, Add, Dense, LayerNorm, MultiHeadSelfAttention, ReLU, SoftmaxCrossEntropy, Tanh


def gpt_block(seq: int = 4, hidden: int = 8, heads: int = 2, ffn: int | None = None,
              vocab: int | None = None) -> Network:
    """A pre-LN block on (seq, hidden) states; with `vocab`, a head and a loss follow.

    ffn defaults to 4 * hidden. Without `vocab` the output is the block's (seq, hidden)
    states and a backward pass needs a `dy`.
    """
    s = LayerStack("gpt_block", (seq, hidden))
    s.add("ln_1", LayerNorm())
    s.add("attn", MultiHeadSelfAttention(heads))
    s.add("attn.add", Add())
    s.add("ln_2", LayerNorm())
    s.add("mlp.fc", Dense(ffn or 4 * hidden))
    s.add("mlp.gelu", GELU())
    s.add("mlp.proj", Dense(hidden))
    s.add("mlp.add", Add())
    if vocab is not None:
        s.add("head", Dense(vocab))
        s.add("loss", SoftmaxCrossEntropy())
    return network(s.build(), {"attn.add": ("attn", "input"), "mlp.add": ("mlp.proj", "attn.add")})


def mlp_stack(features: int = 6, widths: Sequence[int] = (8, 8, 8, 8), classes: int = 4) -> Network:
    """Dense layers of `widths` with alternating Tanh / ReLU, then a classifier and its loss."""
    s = LayerStack("mlp_stack", (features,))
    for i, width in enumerate(widths):
        s.add(f"fc{i}", Dense(width))
        s.add(f"fc{i}.act", Tanh() if i % 2 == 0 else ReLU())
    s.add("logits", Dense(classes))
    s.add("loss", SoftmaxCrossEntropy())
    return network(s.build())
