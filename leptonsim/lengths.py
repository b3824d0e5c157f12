"""Sequence-length distributions, and what sequence binning makes of them.

A dataset's sequences are not all as long as the model's maximum: at 512 tokens half of
BERT's Wikipedia tokens are padding (Krell et al., "Efficient Sequence Packing without
Cross-contamination", arXiv 2107.02027, 2021). Sequence binning (NVIDIA LDDL, README
"Sequence Binning"; DeepLearningExamples BERT phase 2 with a bin size of 64) splits the
lengths into bins of `bin_size` tokens, (i - 1) * bin_size + 1 .. i * bin_size; every
training iteration draws one bin with the probability of its sequences in the dataset,
all ranks read mini-batches of that bin, and each mini-batch is padded to its longest
sequence only. So a step's expected time is the bins' times weighted by their
probabilities, each at the padded length of its mini-batches (`binned`).

A distribution is exact (counts per length, as a dataset's histogram states them), so
every figure here is deterministic. Datasets ship in presets/lengths.toml with sources.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Bin", "LengthDistribution", "binned", "dataset", "dataset_names"]


@dataclass(frozen=True, eq=False)
class LengthDistribution:
    """An exact discrete distribution of sequence lengths: `counts[i]` sequences (or a
    weight) of i + 1 tokens, lengths 1 .. len(counts)."""

    counts: NDArray[np.float64]

    def __post_init__(self) -> None:
        c = np.asarray(self.counts, dtype=np.float64)
        if c.ndim != 1 or c.size == 0 or not np.all(np.isfinite(c)) or np.any(c < 0) or c.sum() <= 0:
            raise ValueError("counts: expected a non-empty list of weights >= 0, not all 0")
        object.__setattr__(self, "counts", c)

    @property
    def max_length(self) -> int:
        return int(self.counts.size)

    @property
    def probabilities(self) -> NDArray[np.float64]:
        """P(length = i + 1) for each i."""
        return self.counts / self.counts.sum()

    def mean(self) -> float:
        return float(self.probabilities @ np.arange(1, self.max_length + 1))

    def padding_fraction(self) -> float:
        """The share of a batch padded to max_length that is padding."""
        return 1.0 - self.mean() / self.max_length


@dataclass(frozen=True)
class Bin:
    """One bin: lengths lo .. hi, the probability a draw falls in it, and the expected
    length its mini-batches are padded to (their longest sequence)."""

    lo: int
    hi: int
    probability: float
    padded: float


def expected_longest(p: NDArray[np.float64], lo: int, batch: int) -> float:
    """E[max of `batch` independent draws] of lengths lo, lo + 1, ... with probabilities
    p (summing to 1): sum over L of P(max >= L) = 1 - F(L - 1)^batch, F the CDF."""
    below = np.concatenate(([0.0], np.cumsum(p)[:-1]))  # F(L - 1) for L = lo, lo + 1, ...
    return lo + float(np.sum(1.0 - np.clip(below, 0.0, 1.0) ** batch)) - 1.0


def binned(dist: LengthDistribution, bin_size: int, batch: int) -> tuple[Bin, ...]:
    """The bins of `bin_size` tokens that hold sequences (the last one ends at
    max_length), each with its probability and the expected padded length of a
    mini-batch of `batch` sequences drawn from it. bin_size >= max_length is no binning:
    one bin, padded to the longest of the batch."""
    if bin_size < 1 or batch < 1:
        raise ValueError(f"bin_size and batch: expected integers >= 1, found {bin_size}, {batch}")
    p, out = dist.probabilities, []
    for lo in range(1, dist.max_length + 1, bin_size):
        hi = min(lo + bin_size - 1, dist.max_length)
        mass = float(p[lo - 1:hi].sum())
        if mass > 0:
            out.append(Bin(lo, hi, mass, expected_longest(p[lo - 1:hi] / mass, lo, batch)))
    return tuple(out)


def _catalog() -> dict[str, dict[str, Any]]:
    text = files("leptonsim.presets").joinpath("lengths.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def dataset_names() -> list[str]:
    """The datasets presets/lengths.toml states (wikipedia_512, ...)."""
    return list(_catalog())


def dataset(name: str) -> LengthDistribution:
    """A dataset's length distribution by name (presets/lengths.toml, sourced there)."""
    catalog = _catalog()
    if name not in catalog:
        raise KeyError(f"no length distribution {name!r}; known: {', '.join(catalog)}")
    entry = catalog[name]
    dist = LengthDistribution(np.asarray(entry["counts"], dtype=np.float64))
    if dist.max_length != entry["max_length"]:
        raise ValueError(f"{name}: {dist.max_length} counts for max_length {entry['max_length']}")
    return dist
