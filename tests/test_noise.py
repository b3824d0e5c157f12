"""[noise]: seeded draws applied to task times and link bandwidths (leptonsim.noise)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.errors import ScenarioError
from leptonsim.noise import Noise, Spread, draw, realise
from leptonsim.result import run
from leptonsim.scenario import loads
from tests.helpers.scenarios import GENERATED, TINY, refused

ROUNDED = st.integers(0, 1000).map(lambda k: k / 1000)  # in [0, 1], as a file writes it
BASE = GENERATED.format(seed=1, topology="ring", units=3, eff=0.5, kind="layered", tasks=24,
                        scheduler="heft")


def noisy(units: str = "", tasks: str = "", links: str = "", seed: str = "") -> str:
    return (BASE + "[noise]\n" + "".join(f"{k} = {{ {v} }}\n" for k, v in
                                         (("units", units), ("tasks", tasks), ("links", links))
                                         if v) + (f"seed = {seed}\n" if seed else ""))


def test_a_sample_is_the_same_for_its_seed_and_another_sample_differs() -> None:
    s = loads(noisy("sigma = 0.2", "sigma = 0.1", "sigma = 0.3"))[0]
    first, again = run(s).metrics.makespan_s, run(s).metrics.makespan_s
    other = run(replace(s, sample=1)).metrics.makespan_s
    assert first == again and other != first


def test_noise_switched_off_is_the_run_without_it() -> None:
    plain = run(loads(BASE)[0]).metrics.makespan_s
    off = loads(noisy("sigma = 0.0, fraction = 0.5"))[0]
    assert off.noise is None and run(off).metrics.makespan_s == plain


@settings(max_examples=15, deadline=None)
@given(st.floats(1.0, 8.0))
def test_every_unit_a_straggler_by_k_scales_the_schedule_by_k(k: float) -> None:
    """Theorem: every task k times longer and no data to move: each decision HEFT makes
    compares times all scaled by k, so the schedule is the nominal one scaled by k."""
    text = BASE.replace('edge_bytes = "4 MB"', 'edge_bytes = "0 B"')
    plain = run(loads(text)[0]).metrics.makespan_s
    s = loads(text + f"[noise]\nunits = {{ fraction = 1.0, slowdown = {k!r} }}\n")[0]
    assert run(s).metrics.makespan_s == pytest.approx(k * plain, rel=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), ROUNDED, ROUNDED)
def test_the_work_span_bound_holds_for_every_sample(sample: int, sigma: float,
                                                    fraction: float) -> None:
    """The work/span bound max(W / C, CP) <= makespan holds for any task times, so for
    each sample's drawn ones (docs/model.md)."""
    s = loads(noisy(f"sigma = {sigma!r}, fraction = {fraction!r}, slowdown = 3.0",
                    f"sigma = {sigma!r}", f"sigma = {sigma!r}"))[0]
    m = run(replace(s, sample=sample)).metrics
    assert m.makespan_s >= max(m.total_work_s / m.capacity, m.critical_path_s) * (1 - 1e-12)


def test_a_pinned_graph_folds_each_units_factor_into_its_tasks() -> None:
    s = loads(TINY.replace('name = "tiny"', 'name = "tiny"\nseed = 5')
              + "[noise]\nunits = { sigma = 0.3 }\ntasks = { sigma = 0.1 }\n")[0]
    assert s.noise is not None
    cluster, cost = realise(s.noise, s.cluster, s.graph, s.cost)
    d = draw(s.noise, s.cluster.size, s.graph.size, len(s.cluster.links))
    g, base = s.graph, s.cost.task_times(s.graph, s.cluster)
    want = base * (d.tasks * np.where(g.comm, 1.0, d.units[g.pin]))
    assert cluster.units == s.cluster.units  # no unit type per unit
    assert np.array_equal(cost.task_times(g, cluster), want)


def test_unpinned_tasks_give_each_unit_its_own_type_and_links_their_bandwidth() -> None:
    s = loads(noisy("sigma = 0.3", links="fraction = 1.0, slowdown = 4.0"))[0]
    assert s.noise is not None
    cluster, _ = realise(s.noise, s.cluster, s.graph, s.cost)
    assert len(cluster.unit_types) == s.cluster.size
    assert [k.spec.bandwidth * 4 for k in cluster.links] == pytest.approx(
        [k.spec.bandwidth for k in s.cluster.links], rel=1e-15)


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(1.0, 5.0))
@settings(max_examples=30)
def test_a_spreads_sample_mean_is_its_mean(sigma: float, fraction: float, slow: float) -> None:
    """E[exp(sigma Z) x slowdown^B] = exp(sigma^2 / 2)(1 + fraction (slowdown - 1)):
    the mean of 20,000 draws within 6 of its true standard errors (E[X^2] =
    exp(2 sigma^2)(1 + fraction (slowdown^2 - 1)))."""
    spread = Spread(sigma, fraction, slow)
    x = spread.draw(np.random.default_rng(0), 20_000)
    second = np.exp(2 * sigma**2) * (1 + fraction * (slow**2 - 1))
    error = np.sqrt(max(second - spread.mean() ** 2, 0.0) / x.size)
    assert abs(x.mean() - spread.mean()) <= 6 * error + 1e-12


def test_noise_builds_every_replica_and_refuses_a_forced_mirror() -> None:
    two = TINY.replace("count = 2", "count = 4").replace('"full"', '"switch"').replace(
        "pp = 2", 'pp = 2\ndp = 2\ndp_mode = "{mode}"')
    assert loads(two.format(mode="auto"))[0].step.config.dp_mode == "mirrored"  # type: ignore[union-attr]
    on = "[noise]\nunits = { sigma = 0.1 }\n"
    assert loads(two.format(mode="auto") + on)[0].step.config.dp_mode == "full"  # type: ignore[union-attr]
    with pytest.raises(ScenarioError, match="noise"):
        loads(two.format(mode="mirrored") + on)


@pytest.mark.parametrize(("table", "key"), [
    ("units = { sigma = -0.1 }", "noise.units.sigma"),
    ("links = { fraction = 1.5 }", "noise.links.fraction"),
    ("tasks = { slowdown = 0.5 }", "noise.tasks.slowdown"),
])
def test_a_bad_spread_is_one_line_naming_its_key(tmp_path, capsys, table: str, key: str) -> None:  # type: ignore[no-untyped-def]
    refused(tmp_path, capsys, BASE + "[noise]\n" + table + "\n", key, "expected")


def test_noise_seed_defaults_to_the_scenarios() -> None:
    assert loads(noisy("sigma = 0.1"))[0].noise == Noise(Spread(0.1), seed=1)
    assert loads(noisy("sigma = 0.1", seed="9"))[0].noise == Noise(Spread(0.1), seed=9)


def test_run_says_which_sample_it_drew(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from leptonsim.cli import main

    f = tmp_path / "noisy.toml"
    f.write_text(noisy("sigma = 0.1", seed="4"))
    assert main(["run", str(f), "--outputs", "summary", "--out", str(tmp_path / "o")]) == 0
    assert "noise            sample 0 of seed 4" in capsys.readouterr().out
