"""leptonsim optimize: the space, the analytic estimate against the simulator, the search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.errors import SimulationError
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate
from leptonsim.models import LayerStack
from leptonsim.ops import Dense, LayerNorm, MultiHeadSelfAttention
from leptonsim.optimize import Estimator, enumerate_space, search
from leptonsim.optimize.estimate import balanced_ranges
from leptonsim.parallel.pipeline import partition
from leptonsim.parallel.step import build_step
from leptonsim.parallel.tensor import split_gcd
from leptonsim.result import run
from leptonsim.scenario import load
from leptonsim.sim import simulate
from tests.helpers.steps import dense_stack

ROOT = Path(__file__).resolve().parents[1]
UNIT = ComputeUnit("gpu", 100e12, 2e12, memory_bytes=80e9, efficiency=0.5,
                   idle_power_w=50, busy_power_w=300, price_per_hour=2.0)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([1, 2, 4, 6, 8, 12, 16]), st.sampled_from([8, 24, 64, 96]),
       st.integers(4, 40))
def test_every_configuration_is_valid_and_distinct(units, batch, layers):
    sp = enumerate_space(units, batch, layers)
    assert np.all(sp.dp * sp.pp * sp.tp == units)
    assert np.all(batch % (sp.dp * sp.microbatches) == 0)
    assert np.all(sp.pp * sp.chunks <= layers)
    rows = {tuple(int(getattr(sp, f)[i]) for f in ("dp", "pp", "tp", "microbatches", "schedule",
                                                     "chunks", "recompute", "layout", "zero"))
            for i in range(len(sp))}
    assert len(rows) == len(sp)


def block(heads: int, ffn: int, hidden: int = 48):
    s = LayerStack("block", (8, hidden))
    for i in range(2):
        s.add(f"ln{i}", LayerNorm())
        s.add(f"attn{i}", MultiHeadSelfAttention(heads))
        s.add(f"fc{i}", Dense(ffn))
        s.add(f"proj{i}", Dense(hidden))
    return s.build()


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([1, 2, 3, 4, 6, 12]), st.sampled_from([6, 8, 12, 16, 36, 64]),
       st.sampled_from([2, 4, 6, 8, 12, 16]))
def test_the_space_holds_only_tensor_splits_that_exist(heads, ffn, units):
    model = block(heads, ffn)
    sp = enumerate_space(units, 48, len(model.layers), split=split_gcd(model))
    assert np.all((heads % sp.tp == 0) & (ffn % sp.tp == 0))
    every = {t for t in range(1, units + 1) if units % t == 0 and heads % t == 0 and ffn % t == 0}
    assert set(sp.tp.tolist()) == every


def test_optimize_never_ranks_a_split_that_cannot_exist():
    """12 heads on 8 units: tp 8 (1.5 heads per rank) was estimated and ranked."""
    cluster = fully_connected(replicate(UNIT, 8, "gpu"), LinkSpec(2e-6, 50e9))
    found = search(block(12, 64), cluster, 16, top=2)
    assert set(found.space.tp.tolist()) == {1, 2, 4}
    assert all("tp8" not in c.label for c in found.candidates)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=1, max_size=40), st.integers(1, 40))
def test_balanced_ranges_are_as_good_as_the_exact_partition(costs, stages):
    stages = min(stages, len(costs))
    arr = np.array(costs)
    ranges = balanced_ranges(arr, stages)
    assert [a for a, _ in ranges][0] == 0 and ranges[-1][1] == len(costs)
    assert all(z > a for a, z in ranges) and all(ranges[i][1] == ranges[i + 1][0]
                                                  for i in range(len(ranges) - 1))
    best = max(arr[a:z].sum() for a, z in partition(costs, stages))
    assert max(arr[a:z].sum() for a, z in ranges) == pytest.approx(best, rel=1e-9)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([1, 2, 4]), st.sampled_from([1, 2, 4, 8]))
def test_estimate_equals_simulation_for_an_uncontended_uniform_pipeline(pp, m):
    """Uniform stages, free links, no data parallelism: both give (m+p-1)(t_f+t_b) + update."""
    model = dense_stack(8, width=512, reader=True)
    cluster = fully_connected(replicate(UNIT, pp, "gpu"), LinkSpec(0.0, 1e30))
    sp = enumerate_space(pp, 8 * m, len(model.layers))
    pick = np.flatnonzero((sp.pp == pp) & (sp.microbatches == m) & (sp.schedule == 0)
                          & ~sp.recompute)
    est = Estimator(model, cluster, 8 * m)(sp.take(pick))
    step = build_step(model, sp.config(int(pick[0]), 8 * m), cluster)
    assert est.step_s[0] == pytest.approx(simulate(step.graph, cluster, "static").makespan_s,
                                          rel=1e-6)


def test_search_ranks_by_simulated_objective_and_respects_memory():
    cluster = fully_connected(replicate(UNIT, 4, "gpu"), LinkSpec(2e-6, 50e9))
    found = search(dense_stack(8, width=512), cluster, 64, top=4)
    sims = [c.simulated for c in found.candidates]
    assert sims == sorted(sims) and np.isfinite(sims[0])
    assert found.estimate.fits[found.winner.index]
    tiny = ComputeUnit("gpu", 100e12, 2e12, memory_bytes=1e3, efficiency=0.5)
    with pytest.raises(SimulationError, match="no configuration"):
        search(dense_stack(8, width=512), fully_connected(replicate(tiny, 2, "gpu"), LinkSpec(0, 1e9)), 8)


def test_energy_and_cost_objectives_pick_by_their_own_measure():
    cluster = fully_connected(replicate(UNIT, 4, "gpu"), LinkSpec(2e-6, 50e9))
    for objective, key in (("energy", "energy_j"), ("cost", "cost_usd")):
        found = search(dense_stack(8, width=512), cluster, 64, objective=objective, top=3)
        values = [getattr(c, key) for c in found.candidates]
        assert values == sorted(values)


def test_optimize_command_writes_ranking_and_table(tmp_path: Path, capsys) -> None:
    assert main(["optimize", str(ROOT / "scenarios" / "optimize_bert_large.toml"),
                 "--top", "2", "--out", str(tmp_path), "--export",
                 str(tmp_path / "winner.toml"), "--progress", "always"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("leptonsim: estimating ") and err.count("leptonsim: simulating ") >= 2
    assert "winner:" in out and "against" in out
    ranking = json.loads((tmp_path / "ranking.json").read_text())
    assert len(ranking["candidates"]) == 2 and ranking["why"]
    header = (tmp_path / "configurations.csv").read_text().splitlines()[0]
    assert header.startswith("layout,dp,pp,tp,microbatches,schedule")
    # the exported winner runs as the split that won, to the step time it was ranked by
    (winner,) = load(tmp_path / "winner.toml")
    best = ranking["candidates"][0]
    cfg = winner.step.config
    assert winner.variant == "optimized"
    assert f"dp{cfg.dp} pp{cfg.pp} tp{cfg.tp} m{cfg.microbatches} " in best["label"] + " "
    assert run(winner).metrics.makespan_s == pytest.approx(best["step_s"], rel=1e-9)


@given(st.lists(st.sampled_from(["dp2", "big", "x.y"]), unique=True, max_size=3))
def test_without_variants_keeps_everything_else(names: list[str]) -> None:
    from leptonsim.optimize.export import without_variants
    from leptonsim.scenario import parse

    base = (ROOT / "scenarios" / "seed_cnn_data_parallel.toml").read_text().split("[variants.")[0]
    tables = "".join(f'\n[variants."{n}"]  # a note\n"parallel.dp" = 1\n' for n in names)
    text = base + tables + "\n[claims]\nmakespan = \"1 s\"\n"
    assert parse(without_variants(text)) == {k: v for k, v in parse(text).items()
                                             if k != "variants"}
