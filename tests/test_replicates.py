"""Monte-Carlo replicates (leptonsim.replicates) and `leptonsim run --samples N`."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from leptonsim.cli import main
from leptonsim.replicates import needed, replicates, summarise
from leptonsim.result import run
from leptonsim.scenario import loads
from leptonsim.study.executors import InlineExecutor, open_executor
from tests.helpers.scenarios import GENERATED

BASE = GENERATED.format(seed=2, topology="ring", units=3, eff=0.5, kind="layered", tasks=16,
                        scheduler="heft")
NOISY = BASE + "[noise]\nunits = { sigma = 0.2, fraction = 0.2, slowdown = 2.0 }\n" \
               "tasks = { sigma = 0.1 }\nlinks = { sigma = 0.3 }\n"

SAMPLES = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=60)
@given(SAMPLES)
def test_a_summary_is_ordered(x: list[float]) -> None:
    """p5 <= median <= p95 within [min, max], and the mean's interval within them too
    (a resample's mean lies between the smallest and largest replicate)."""
    m = summarise(np.array(x), 0.01, resamples=200)
    lo, hi = min(x), max(x)
    tol = 1e-9 * max(1.0, abs(lo), abs(hi))
    assert lo - tol <= m.p5 <= m.median <= m.p95 <= hi + tol
    assert lo - tol <= m.ci_low <= m.ci_high <= hi + tol


@given(st.floats(1e-3, 1e3), st.floats(1e-3, 1e3), st.floats(1e-3, 0.5))
def test_the_sample_count_is_the_smallest_meeting_the_clt_half_width(s: float, mean: float,
                                                                     eps: float) -> None:
    """n replicates give a 95% half-width z s / sqrt(n) <= eps x mean; n - 1 do not."""
    n, z = needed(s, mean, eps), norm.ppf(0.975)
    assert z * s / math.sqrt(n) <= eps * mean * (1 + 1e-12)
    assert n == 1 or z * s / math.sqrt(n - 1) > eps * mean * (1 - 1e-12)


def test_a_constant_output_needs_one_sample_and_its_interval_is_the_value() -> None:
    m = summarise(np.full(9, 3.5), 0.01)
    assert (m.needed, m.ci_low, m.ci_high, m.std) == (1, 3.5, 3.5, 0.0)


def test_the_bootstrap_interval_covers_the_mean_about_95_percent_of_the_time() -> None:
    """Normal samples of 40: the percentile interval's coverage is close to 95% (a
    little under for n = 40, Efron and Tibshirani ch. 13); 300 trials put 250 or more
    hits at p >= 0.9 beyond 4 standard deviations of doubt."""
    rng = np.random.default_rng(7)
    hits = sum(m.ci_low <= 1.0 <= m.ci_high for m in
               (summarise(rng.normal(1.0, 0.5, 40), 0.01, seed=i, resamples=500)
                for i in range(300)))
    assert 250 <= hits <= 300


def test_replicates_do_not_depend_on_how_many_run_at_once() -> None:
    s = loads(NOISY)[0]
    inline = replicates(s, 6, InlineExecutor(), 1, 0.01)
    with open_executor("process", 2) as pool:
        pooled = replicates(s, 6, pool.executor, pool.slots, 0.01)
    assert pooled.rows == inline.rows
    assert [r.sample for r in inline.rows] == list(range(6))
    assert inline.rows[0].makespan_s == run(s).metrics.makespan_s  # sample 0 is `run`'s
    assert inline.rows[1].makespan_s == run(replace(s, sample=1)).metrics.makespan_s
    assert len({r.makespan_s for r in inline.rows}) > 1 and inline.bound_holds


def test_run_samples_writes_a_row_per_sample_and_the_summary(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "noisy.toml"
    f.write_text(NOISY)
    assert main(["run", str(f), "--samples", "12", "--workers", "1", "--out",
                 str(tmp_path / "out")]) == 0
    report = capsys.readouterr().out
    assert "12 samples" in report and "bootstrap CI" in report
    rows = list(csv.DictReader((tmp_path / "out" / "samples.csv").open()))
    summary = json.loads((tmp_path / "out" / "samples.json").read_text())
    spans = [float(r["makespan_s"]) for r in rows]
    assert len(rows) == 12 == summary["samples"]
    assert summary["outputs"]["makespan_s"]["median"] == pytest.approx(np.median(spans))
    assert (tmp_path / "out" / "samples.png").stat().st_size > 0


@pytest.mark.parametrize(("argv", "words"), [
    (["--samples", "0"], "--samples: expected an integer >= 1"),
    (["--samples", "3", "--precision", "0"], "--precision: expected a fraction"),
])
def test_bad_sample_options_are_one_line(tmp_path, capsys, argv, words) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "noisy.toml"
    f.write_text(NOISY)
    with pytest.raises(SystemExit) as stop:
        main(["run", str(f), *argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and words in err[0]
    assert not (tmp_path / "out").exists()


def test_samples_without_noise_are_refused_naming_the_table(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "plain.toml"
    f.write_text(BASE)
    assert main(["run", str(f), "--samples", "3", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {f}: noise: expected")
    assert not (tmp_path / "out").exists()


def test_dask_gives_the_process_pools_replicates(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`--executor dask` takes the sweep's path: the same rows as the pool."""
    from distributed import LocalCluster

    f = tmp_path / "noisy.toml"
    f.write_text(NOISY)
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=2, protocol="tcp",
                      host="127.0.0.1",
                      dashboard_address=None) as cluster:
        assert main(["run", str(f), "--samples", "5", "--executor", "dask", "--scheduler",
                     cluster.scheduler_address, "--out", str(tmp_path / "dask")]) == 0
    assert main(["run", str(f), "--samples", "5", "--workers", "1", "--out",
                 str(tmp_path / "inline")]) == 0
    assert (tmp_path / "dask" / "samples.csv").read_bytes() == \
        (tmp_path / "inline" / "samples.csv").read_bytes()
