"""Failures and checkpoints over a training run (leptonsim.failures, `leptonsim failures`)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.failures import (
    FailureModel,
    best_interval,
    daly_interval,
    expected_wall_s,
    simulate,
    young_interval,
)
from tests.helpers.scenarios import GENERATED, refused

H = 3600.0


def job(mtbf_h: float, delta_s: float, restart_s: float = 600.0, step_s: float = 0.0
        ) -> FailureModel:
    """One component of MTBF mtbf_h; a checkpoint of delta_s (bytes at 1 B/s)."""
    return FailureModel(1, 0, 0, mtbf_h * H, checkpoint_bytes=delta_s, storage_bandwidth=1.0,
                        restart_s=restart_s, step_s=step_s)


def test_the_simulated_wall_time_is_dalys_complete_cost() -> None:
    """The renewal process's expected time of S checkpointed intervals is Daly's (2006)
    S M e^{R/M} (e^{(tau + delta)/M} - 1): the mean of 4,000 replicates within 4 standard
    errors, at three intervals."""
    m = job(10, 360)
    taus = np.array([20.0, 80.0, 300.0]) * 60
    out = simulate(m, taus, 4000, seed=3, work_s=200 * H)
    for tau, wall in zip(taus, out.wall_s, strict=True):
        want = expected_wall_s(math.ceil(200 * H / tau), tau, 360, 600, m.mtbf_s)
        assert abs(wall.mean() - want) <= 4 * wall.std() / math.sqrt(wall.size)


@pytest.mark.parametrize(("mtbf_h", "delta_s"), [(5, 600), (10, 360)])
def test_in_dalys_regime_the_simulated_optimum_is_within_the_formulas_accuracy(
        mtbf_h: float, delta_s: float) -> None:
    """delta << M: Daly's perturbation series (FGCS 2006, eq. 37) puts the optimum at
    sqrt(2 delta M)(1 - (2/3) sqrt(delta / 2M) + O(delta / M)), so Young's first-order
    formula is accurate to sqrt(delta / 2M), and errs long. The optimum found by
    simulation (3,000 replicates of 40 M of work; its resolution, seed to seed, is about
    2%) lies within that accuracy of Young's, and below it by at least a third of the
    second-order term, as the series says."""
    m = job(mtbf_h, delta_s)
    best = best_interval(m, 3000, seed=1, work_s=40 * mtbf_h * H)
    first = math.sqrt(delta_s / (2 * mtbf_h * H))
    assert abs(best.tau_s / best.young_s - 1) <= first + 0.02
    assert best.tau_s < best.young_s * (1 - first / 3)
    assert abs(best.tau_s / best.daly_s - 1) <= 0.04


@settings(max_examples=25, deadline=None)
@given(st.floats(0.5, 1e3), st.floats(1.0, 3600.0), st.floats(0.0, 3600.0),
       st.floats(0.01, 3.0))
def test_goodput_is_in_0_1_for_a_run_of_steps(mtbf_h: float, delta: float, restart: float,
                                             share: float) -> None:
    """Intervals up to 3 MTBFs (longer ones take e^{tau/M} tries each)."""
    out = simulate(job(mtbf_h, delta, restart), share * mtbf_h * H, 20, seed=0, work_s=50 * H)
    assert ((out.goodput > 0) & (out.goodput <= 1)).all()
    assert (out.useful_s == 50 * H).all()


@settings(max_examples=25, deadline=None)
@given(st.floats(1.0, 100.0), st.floats(1.0, 600.0), st.floats(1.5, 10.0))
def test_goodput_rises_with_the_mtbf(mtbf_h: float, delta: float, more: float) -> None:
    """Daly's expected time falls as M grows (d/dM of M e^{R/M}(e^{s/M} - 1) < 0), and
    so does the simulated one: goodput at M x more, with the same draws scaled, beats
    goodput at M, at Young's interval for M (500 replicates of 500 h of work)."""
    tau = young_interval(delta, mtbf_h * H)
    low = simulate(job(mtbf_h, delta), tau, 500, seed=2, work_s=500 * H).goodput.mean()
    high = simulate(job(mtbf_h * more, delta), tau, 500, seed=2, work_s=500 * H).goodput.mean()
    assert high > low
    a, b = (expected_wall_s(100, tau, delta, 600, M * H) for M in (mtbf_h, mtbf_h * more))
    assert b < a


def test_a_horizon_counts_interruptions_at_the_jobs_rate() -> None:
    """A 30-day run of 16,384 GPUs at the Llama 3 rates: the interruptions are Poisson of
    mean rate x (30 days - time lost to none), within 4 standard deviations."""
    m = FailureModel(16384, 2048, 0, 82944 * H, 16283.5 * H, job_mtbf_s=27.574 * H,
                     checkpoint_bytes=5.7e12, storage_bandwidth=8e14, restart_s=600)
    out = simulate(m, 600.0, 200, seed=4, horizon_s=30 * 86400)
    mean = 30 * 86400 / m.mtbf_s
    assert abs(out.interruptions.mean() - mean) <= 4 * math.sqrt(mean / 200)
    assert ((out.goodput > 0.8) & (out.goodput < 1)).all()


def test_young_and_daly_agree_to_first_order() -> None:
    assert young_interval(300, 24 * H) == pytest.approx(120 * 60)
    assert daly_interval(300, 24 * H) / 60 == pytest.approx(117, abs=0.5)  # Daly's Fig. 3
    assert daly_interval(3 * H, 1 * H) == 1 * H


FAILING = GENERATED.format(seed=0, topology="ring", units=4, eff=0.5, kind="layered",
                           tasks=8, scheduler="heft")


def test_the_command_reports_goodput_and_writes_json(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "f.toml"
    f.write_text(FAILING + '[failures]\nunit_mtbf_h = 100.0\ncheckpoint = "10 GB"\n'
                 'storage_bandwidth = "1 GB/s"\nrestart = "5 min"\nsteps = 100000\n'
                 'step_time = "10 s"\n'
                 'replicates = 50\ninterval = "20 min"\n')
    assert main(["failures", str(f), "--out", str(tmp_path / "out")]) == 0
    report = capsys.readouterr().out
    assert "goodput" in report and "Young" in report and "given interval 20 min" in report
    data = json.loads((tmp_path / "out" / "failures.json").read_text())[0]
    assert data["young_interval_s"] == pytest.approx(math.sqrt(2 * 10 * 100 / 4 * H))  # 4 units
    assert 0 < data["goodput"]["mean"] <= 1 and data["replicates"] == 50


@pytest.mark.parametrize(("table", "key"), [
    ('unit_mtbf_h = 0.0\nstorage_bandwidth = "1 GB/s"\ndays = 1\ncheckpoint = "1 GB"',
     "failures.unit_mtbf_h"),
    ('unit_mtbf_h = 10.0\nstorage_bandwidth = "1 GB/s"\ndays = 1\ncheckpoint = "10 GB"\n'
     'interval = "5 s"', "failures.interval"),
    ('storage_bandwidth = "1 GB/s"\ndays = 1\ncheckpoint = "1 GB"', "failures"),
    ('preset = "lama3"\nstorage_bandwidth = "1 GB/s"\ndays = 1\ncheckpoint = "1 GB"',
     "failures.preset"),
])
def test_bad_failures_are_one_line_naming_the_key(tmp_path, capsys, table: str, key: str) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "bad.toml"
    f.write_text(FAILING + "[failures]\n" + table + "\n")
    out = tmp_path / "out"
    assert main(["failures", str(f), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {f}: {key}: "), err
    assert not out.exists()


def test_run_ignores_the_failures_table(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    refused(tmp_path, capsys, FAILING + "[failures]\nunit_mtbf_h = -1.0\n"
            'storage_bandwidth = "1 GB/s"\ndays = 1\n', "failures.unit_mtbf_h", "expected")


@pytest.mark.parametrize(("table", "key"), [
    ('unit_mtbf_h = 1.0\nstorage_bandwidth = "1 GB/s"\ndays = 1\ncheckpoint = "100 TB"',
     "failures.storage_bandwidth"),
    ('unit_mtbf_h = 1.0\nstorage_bandwidth = "1 GB/s"\ndays = 1\ncheckpoint = "1 GB"\n'
     'restart = "20 h"', "failures.restart"),
    ('unit_mtbf_h = 0.000001\nstorage_bandwidth = "1 TB/s"\ndays = 3000\ncheckpoint = "1 GB"',
     "failures.days"),
    ('unit_mtbf_h = 10.0\nstorage_bandwidth = "1 TB/s"\nsteps = 9007199254740991\n'
     'step_time = "1 h"\ncheckpoint = "1 GB"', "failures.steps"),
])
def test_a_run_that_could_not_finish_is_refused_before_simulating(tmp_path, capsys, table: str,  # type: ignore[no-untyped-def]
                                                                 key: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(FAILING + "[failures]\n" + table + "\n")
    assert main(["failures", str(f), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {f}: {key}: "), err
