"""Length distributions and sequence binning (leptonsim/lengths.py): the sourced
Wikipedia histogram's own figures, and theorems of the binned expectation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leptonsim import lengths
from leptonsim.lengths import LengthDistribution, binned, expected_longest

counts = st.lists(st.integers(0, 50), min_size=1, max_size=40).filter(lambda c: sum(c) > 0)


def test_wikipedia_512_states_the_papers_figures() -> None:
    # Krell et al. 2021: "over 16M sequences", padding "in excess of 50 %" at 512.
    wiki = lengths.dataset("wikipedia_512")
    assert wiki.max_length == 512
    assert wiki.counts.sum() > 16e6
    assert 0.50 < wiki.padding_fraction() < 0.51


def test_an_unknown_dataset_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="wikipedia_512"):
        lengths.dataset("no_such_data")
    assert "wikipedia_512" in lengths.dataset_names()


@pytest.mark.parametrize("bad", [[], [0, 0], [1, -1], [np.nan]])
def test_counts_that_are_no_distribution_are_refused(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="counts"):
        LengthDistribution(np.asarray(bad, dtype=np.float64))


@given(counts, st.integers(1, 50), st.integers(1, 8))
def test_bins_partition_the_probability_and_pad_inside_themselves(
        c: list[int], size: int, batch: int) -> None:
    bins = binned(LengthDistribution(np.asarray(c, dtype=np.float64)), size, batch)
    assert sum(b.probability for b in bins) == pytest.approx(1.0)
    for b in bins:
        assert b.hi - b.lo < size and (b.lo - 1) % size == 0
        assert b.lo <= b.padded + 1e-9 and b.padded <= b.hi + 1e-9


@given(counts, st.integers(1, 50))
def test_one_draw_pads_to_the_bins_mean_and_more_draws_pad_longer(c: list[int], size: int) -> None:
    dist = LengthDistribution(np.asarray(c, dtype=np.float64))
    one, two = binned(dist, size, 1), binned(dist, size, 2)
    p = dist.probabilities
    for b1, b2 in zip(one, two, strict=True):
        inside = p[b1.lo - 1:b1.hi] / b1.probability
        assert b1.padded == pytest.approx(inside @ np.arange(b1.lo, b1.hi + 1))
        assert b2.padded >= b1.padded - 1e-9


@given(st.lists(st.integers(1, 3), min_size=1, max_size=4), st.integers(1, 3))
def test_expected_longest_equals_enumeration(weights: list[int], batch: int) -> None:
    """E[max] by the CDF formula equals the mean over every draw of `batch` lengths."""
    p = np.asarray(weights, dtype=np.float64) / sum(weights)
    lo = 5
    exact = sum(np.prod([p[i] for i in draw]) * (lo + max(draw))
                for draw in itertools.product(range(len(p)), repeat=batch))
    assert expected_longest(p, lo, batch) == pytest.approx(exact)


def test_no_binning_is_one_bin_and_a_point_mass_pads_to_itself() -> None:
    wiki = lengths.dataset("wikipedia_512")
    (whole,) = binned(wiki, 512, 16)
    assert (whole.lo, whole.hi, whole.probability) == (1, 512, pytest.approx(1.0))
    point = LengthDistribution(np.asarray([0, 0, 7.0]))
    assert [(b.lo, b.hi, b.padded) for b in binned(point, 2, 9)] == [(3, 3, 3.0)]


def test_bins_of_64_on_wikipedia() -> None:
    """Eight bins; the last holds the 512-token sequences (a quarter of all), so its
    micro-batches are padded to 512; every other bin pads within 5 tokens of its top."""
    bins = binned(lengths.dataset("wikipedia_512"), 64, 16)
    assert [b.hi for b in bins] == list(range(64, 513, 64))
    assert bins[-1].padded == pytest.approx(512.0)
    assert bins[-1].probability > 0.25
    assert all(b.hi - 5 < b.padded for b in bins)
    with pytest.raises(ValueError, match="bin_size"):
        binned(lengths.dataset("wikipedia_512"), 0, 16)
