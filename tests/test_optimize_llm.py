"""`leptonsim optimize` on a modern LLM: Llama 3 70B on 64 H100s is found a split that
fits in 80 GB, from a search space with ZeRO stages and sequence parallelism (issue 13)."""

from __future__ import annotations

import numpy as np

from leptonsim.optimize.search import search
from leptonsim.scenario import load
from leptonsim.scenario.model import build_model

SCENARIO = "scenarios/optimize_llama3_70b.toml"


def test_llama3_70b_on_64_h100_gets_a_split_that_fits_and_runs() -> None:
    (s,) = load(SCENARIO)
    model = build_model({"transformer": {"base": "llama3_70b", "seq": 4096}})
    cluster = s.cluster
    result = search(model, cluster, 64, top=1, dtype_bytes=2, max_tp=8)
    space, fits = result.space, result.estimate.fits
    assert {1, 2, 3} <= set(space.zero[fits].tolist()) and {0, 1} <= set(space.sp[fits].tolist())
    # 70 B of bf16 Adam state is 1.1 TB: replicated on every GPU it cannot fit, sharded
    # over all 64 (ZeRO-3) it can
    assert not fits[(space.dp == 64) & (space.zero == 0)].any()
    assert fits[(space.dp == 64) & (space.zero == 3)].any()
    built = [c for c in result.candidates if not c.unbuilt]
    assert built and all(np.isfinite(c.simulated) for c in built)
    winner = result.winner
    assert result.estimate.memory_bytes[winner.index] <= cluster.units[0].memory_bytes
    assert space.tp[winner.index] > 1 and space.zero[winner.index] > 0
