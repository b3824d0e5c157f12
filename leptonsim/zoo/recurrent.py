"""Recurrent language model."""

from __future__ import annotations

from leptonsim.models import LayerStack, Model
from leptonsim.ops import LSTM, Dense, Embedding, SoftmaxCrossEntropy


def lstm_lm(
    vocab: int = 10_000, embed: int = 650, hidden: int = 650, layers: int = 2, seq_len: int = 35
) -> Model:
    """Embedding -> stacked LSTM -> dense to the vocabulary -> cross-entropy.

    Defaults are Zaremba et al.'s "medium" Penn Treebank model. Each LSTM layer has
    4 * (h * (i + h) + h) parameters (Keras: one bias per gate).
    """
    s = LayerStack("lstm_lm", (seq_len,))
    s.add("embedding", Embedding(vocab, embed))
    for i in range(layers):
        s.add(f"lstm_{i + 1}", LSTM(hidden))
    s.add("dense", Dense(vocab))
    s.add("loss", SoftmaxCrossEntropy())
    return s.build()
