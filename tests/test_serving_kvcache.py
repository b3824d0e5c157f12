"""The paged KV cache's bookkeeping and the arrival processes' moments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.serve.kvcache import BlockManager, blocks_for
from leptonsim.serve.requests import arrivals

ops = st.lists(st.tuples(st.sampled_from(["grow", "release"]), st.integers(0, 5),
                         st.integers(0, 400)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40), st.integers(1, 32), ops)
def test_blocks_held_never_exceed_capacity_and_add_up(capacity: int, size: int,
                                                      steps: list) -> None:
    kv = BlockManager(capacity, size)
    for op, rid, tokens in steps:
        if op == "release":
            kv.release(rid)
            continue
        before, fits = kv.held.get(rid, 0), kv.fits(tokens, rid)
        assert kv.grow(rid, tokens) == fits
        # a grant holds exactly ceil(tokens / size) blocks, and never shrinks
        assert kv.held.get(rid, 0) == (max(before, blocks_for(tokens, size)) if fits else before)
        assert 0 <= kv.used <= capacity
        assert kv.used == sum(kv.held.values())


@pytest.mark.parametrize(("kind", "cv"), [("poisson", 1.0), ("gamma", 0.5), ("gamma", 3.0),
                                          ("fixed", 0.0)])
def test_arrival_gaps_have_the_asked_rate_and_burstiness(kind: str, cv: float) -> None:
    """20,000 gaps: the mean gap's standard error is cv / (rate sqrt(n)), at most 2.1 %
    of 1 / rate, so 10 % is beyond 4.7 standard errors; the sample cv likewise."""
    gaps = np.diff(arrivals({"kind": kind, "rate": 25.0, "cv": cv}, 20_001, 5))
    assert gaps.mean() == pytest.approx(1 / 25.0, rel=0.10)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, abs=0.10 * max(cv, 1.0))
