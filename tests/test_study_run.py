"""Running sweeps: rows, executors (in-process, process pool, Dask), resume after a kill."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from leptonsim.cli import main as study_main
from leptonsim.errors import ScenarioError
from leptonsim.study import (
    InlineExecutor,
    StudyError,
    add_sweep_command,
    columns,
    load_sweep,
    loads_sweep,
    open_executor,
    run_sweep,
)
from tests.helpers.study import BASE, GRID, ROOT, SLOW, rows_of, run_inline, spawn_sweep, study, wait_for_rows

PRICED = BASE.replace('busy_power = "300 W"', 'busy_power = "300 W"\nprice_per_hour = 2.0')


def test_rows_have_every_column_and_consistent_values(tmp_path: Path) -> None:
    run_inline(study("[sweep]\n" + GRID, PRICED), tmp_path)
    rows = rows_of(tmp_path / "results.sorted.csv")
    assert list(rows[0]) == list(columns(["hardware.units[0].count", "hardware.link.bandwidth"]))
    assert [r["hardware.link.bandwidth"] for r in rows[:3]] == ["10000000000.0", "20000000000.0",
                                                                "30000000000.0"]
    for r in rows:
        units, makespan = int(r["units"]), float(r["makespan_s"])
        assert units == int(r["hardware.units[0].count"]) and r["variant"] == ""
        busy, idle = float(r["compute_s"]), float(r["idle_s"])
        assert idle == pytest.approx(units * makespan - busy, abs=1e-12)
        assert float(r["bubble_s"]) == 0.0
        assert float(r["energy_j"]) >= 50 * units * makespan * (1 - 1e-9)  # idle power floor
        assert float(r["cost_usd"]) == pytest.approx(makespan / 3600 * units * 2.0)
        assert float(r["speedup"]) <= float(r["total_work_s"]) / float(r["work_span_lower_bound_s"]) + 1e-9
        for c in ("seed_parallel_time_s", "graham_bound_s", "amdahl_speedup", "gustafson_speedup"):
            assert float(r[c]) > 0


def test_price_option_fills_units_without_a_price(tmp_path: Path) -> None:
    text = study("[sweep]\n" + GRID)
    run_inline(text, tmp_path / "none")
    assert {r["cost_usd"] for r in rows_of(tmp_path / "none" / "results.csv")} == {""}
    run_inline(text, tmp_path / "priced", price_per_unit_hour=3.0)
    for r in rows_of(tmp_path / "priced" / "results.csv"):
        assert float(r["cost_usd"]) == pytest.approx(float(r["makespan_s"]) / 3600
                                                     * int(r["units"]) * 3.0)


def test_variants_times_points_in_point_order(tmp_path: Path) -> None:
    text = study("[variants.b]\n'schedule.scheduler' = 'greedy'\n[variants.a]\n"
                 "'schedule.scheduler' = 'heft'\n[sweep.parameters]\n"
                 "'hardware.units[0].count' = [2, 1]\n")
    run_inline(text, tmp_path)
    got = [(r["hardware.units[0].count"], r["variant"])
           for r in rows_of(tmp_path / "results.sorted.csv")]
    assert got == [("2", "a"), ("2", "b"), ("1", "a"), ("1", "b")]


def test_process_pool_and_in_process_give_identical_rows(tmp_path: Path) -> None:
    text = study("[sweep]\n" + GRID, PRICED)
    run_inline(text, tmp_path / "inline")
    with open_executor("process", workers=2) as pool:
        run_sweep(loads_sweep(text, "study.toml"), tmp_path / "pool", pool.executor,
                  slots=pool.slots)
    ref = (tmp_path / "inline" / "results.sorted.csv").read_bytes()
    assert (tmp_path / "pool" / "results.sorted.csv").read_bytes() == ref
    lines = sorted((tmp_path / "pool" / "results.csv").read_text().splitlines())
    assert lines == sorted((tmp_path / "inline" / "results.csv").read_text().splitlines())


def test_resume_discards_a_partial_line_and_skips_finished_points(tmp_path: Path) -> None:
    text = study("[sweep]\n" + GRID)
    run_inline(text, tmp_path / "ref")
    full = (tmp_path / "ref" / "results.csv").read_text().splitlines(keepends=True)
    out = tmp_path / "resumed"
    out.mkdir()
    (out / "sweep.json").write_bytes((tmp_path / "ref" / "sweep.json").read_bytes())
    kept = "".join(full[:3])  # header and two finished rows
    (out / "results.csv").write_text(kept + full[3][:25])  # a row cut short by kill -9
    outcome = run_sweep(loads_sweep(text, "study.toml"), out, InlineExecutor())
    assert (outcome.total, outcome.resumed, outcome.computed) == (6, 2, 4)
    after = (out / "results.csv").read_text()
    assert after.startswith(kept)  # finished rows untouched, partial line gone
    ids = [r["point_id"] for r in rows_of(out / "results.csv")]
    assert len(ids) == 6 == len(set(ids))
    assert (out / "results.sorted.csv").read_bytes() == \
        (tmp_path / "ref" / "results.sorted.csv").read_bytes()
    again = run_sweep(loads_sweep(text, "study.toml"), out, InlineExecutor())
    assert (again.resumed, again.computed) == (6, 0)


def test_results_of_another_sweep_are_not_mixed_in(tmp_path: Path) -> None:
    run_inline(study("[sweep]\n" + GRID), tmp_path)
    other = study("[sweep.parameters]\n'hardware.link.latency' = [0, 1e-6]\n")
    with pytest.raises(StudyError, match="columns are those of another sweep"):
        run_inline(other, tmp_path)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_combination_that_cannot_be_built_names_its_point(tmp_path: Path, workers: int) -> None:
    text = study("[sweep.parameters]\n'hardware.units[0].count' = [4, 6]\n").replace(
        'topology = "switch"', 'topology = "two_level"\ntwo_level = { units_per_node = 4, '
        'intra = { bandwidth = 1e9 }, inter = { bandwidth = 1e9 } }')
    with pytest.raises(ScenarioError) as info, open_executor("process", workers) as pool:
        run_sweep(loads_sweep(text, "study.toml"), tmp_path, pool.executor, slots=1)
    line = info.value.line()
    assert line.startswith("study.toml: hardware.two_level.units_per_node: expected a divisor")
    assert "at sweep point" in line and "'hardware.units[0].count' = 6" not in line
    assert "hardware.units[0].count = 6" in line
    if workers == 1:  # in order: the good point ran first and is kept
        assert len(rows_of(tmp_path / "results.csv")) == 1


@pytest.mark.parametrize("how, workers", [("kill -9", "1"), ("Ctrl-C", "2")])
def test_interrupted_sweep_resumes_without_redoing_or_losing_points(
        tmp_path: Path, how: str, workers: str) -> None:
    file = tmp_path / "slow.toml"
    file.write_text(SLOW)
    out = tmp_path / "out"
    proc = spawn_sweep(file, out, "--workers", workers)
    wait_for_rows(out / "results.csv", proc, 3)
    os.killpg(proc.pid, signal.SIGKILL if how == "kill -9" else signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if how == "Ctrl-C":
        assert proc.returncode == 130 and "run the same command again to resume" in err
        assert "Traceback" not in err
    else:
        assert proc.returncode == -signal.SIGKILL
    before = (out / "results.csv").read_bytes()
    done = before[:before.rfind(b"\n") + 1]
    finished = done.count(b"\n") - 1
    assert 3 <= finished < 40
    rerun = subprocess.run([sys.executable, "-m", "leptonsim", "sweep", str(file), "--out",
                            str(out), "--workers", "2"], cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"40 points ({finished} already done, {40 - finished} run)" in rerun.stdout
    assert (out / "results.csv").read_bytes().startswith(done)  # finished rows kept as they were
    ids = [r["point_id"] for r in rows_of(out / "results.csv")]
    assert len(ids) == 40 == len(set(ids))  # each point exactly once: nothing recomputed
    assert len(rows_of(out / "results.sorted.csv")) == 40


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_sweep_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_sweep_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _cli(["sweep", "--help"])
    text = capsys.readouterr().out
    for option in ("--out", "--workers", "--executor", "--scheduler", "--price", "--progress",
                   "--plot", "resume"):
        assert option in text


def test_cli_writes_results_plots_and_progress(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "study.toml"
    file.write_text(study("[sweep]\n" + GRID))
    assert _cli(["sweep", str(file), "--out", str(tmp_path / "o"), "--workers", "1",
                 "--progress", "--plot", "--price", "1.5"]) == 0
    out, err = capsys.readouterr()
    assert "6 points (0 already done, 6 run)" in out
    assert "6/6" in err  # the tqdm bar, forced on although stderr is not a terminal
    assert (tmp_path / "o" / "plots" / "scaling.svg").exists()
    assert _cli(["sweep", str(file), "--out", str(tmp_path / "o"), "--price", "1.5"]) == 0
    out, err = capsys.readouterr()
    assert "6 already done, 0 run" in out and err == ""  # no bar off a terminal


def test_dask_without_dask_installed_is_one_line_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "study.toml"
    file.write_text(study("[sweep]\n" + GRID))
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    code = study_main(["sweep", str(file), "--out", str(tmp_path / "o"), "--executor", "dask",
                       "--scheduler", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "pip install 'leptonsim[dask]'" in err


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_dask_local_cluster_gives_the_process_pool_rows(tmp_path: Path, dask_scheduler: str) -> None:
    file = tmp_path / "study.toml"
    file.write_text(study("[sweep]\n" + GRID, PRICED))
    assert dask_scheduler.startswith("tcp://127.0.0.1:")
    assert _cli(["sweep", str(file), "--out", str(tmp_path / "dask"), "--executor", "dask",
                 "--scheduler", dask_scheduler]) == 0
    assert _cli(["sweep", str(file), "--out", str(tmp_path / "pool"), "--workers", "2"]) == 0
    assert (tmp_path / "dask" / "results.sorted.csv").read_bytes() == \
        (tmp_path / "pool" / "results.sorted.csv").read_bytes()
    assert len(load_sweep(file)) == len(rows_of(tmp_path / "dask" / "results.csv")) == 6
