"""The sweep's directory: the manifest refuses rows of another scenario or price, the
lock refuses a second sweep, a corrupt results.csv is one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from leptonsim.cli import main
from leptonsim.study import StudyError, loads_sweep
from leptonsim.study.runner import sweep_store
from tests.helpers.study import (
    BASE,
    GRID,
    ROOT,
    SLOW,
    one_line_refusal,
    rows_of,
    run_inline,
    spawn_sweep,
    study,
    wait_for_rows,
)

TEXT = study("[sweep]\n" + GRID)


def sweep_cli(file: Path, out: Path, *extra: str) -> list[str]:
    return ["sweep", str(file), "--out", str(out), "--workers", "1", *extra]


def test_resume_after_the_scenario_was_edited_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file, out = tmp_path / "study.toml", tmp_path / "o"
    file.write_text(TEXT)
    assert main(sweep_cli(file, out)) == 0
    before = (out / "results.csv").read_bytes()
    file.write_text(TEXT.replace('latency = "5 us"', 'latency = "50 us"'))  # not a swept key
    err = one_line_refusal(sweep_cli(file, out), capsys)
    assert "another version of the scenario" in err and "choose another --out" in err
    assert (out / "results.csv").read_bytes() == before  # nothing appended, nothing lost
    file.write_text(TEXT.replace('latency = "5 us"', "latency = 5e-6"))  # the same value
    assert main(sweep_cli(file, out)) == 0
    assert "6 already done, 0 run" in capsys.readouterr().out


def test_an_edited_variant_is_named_and_an_added_one_is_run(tmp_path: Path) -> None:
    variants = "[variants.a]\n'schedule.scheduler' = 'heft'\n"
    run_inline(study(variants + "[sweep]\n" + GRID), tmp_path)
    grown = study(variants + "[variants.b]\n'schedule.scheduler' = 'greedy'\n[sweep]\n" + GRID)
    outcome = loads_sweep(grown, "study.toml")
    with sweep_store(outcome, tmp_path) as store:
        assert len(store.existing) == 6  # variant a's rows are still valid
    run_inline(grown, tmp_path)
    assert len(rows_of(tmp_path / "results.sorted.csv")) == 12
    edited = grown.replace("'schedule.scheduler' = 'greedy'", "'schedule.scheduler' = 'static'")
    with pytest.raises(StudyError, match="variant 'b'"):
        run_inline(edited, tmp_path)


@pytest.mark.parametrize("first, second, found", [
    (["--price", "2"], ["--price", "3"], "computed with --price 2.0, not --price 3.0"),
    (["--price", "2"], [], "computed with --price 2.0, not no --price"),
    ([], ["--price", "2"], "computed with no --price, not --price 2.0"),
])
def test_resume_with_another_price_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              first: list[str], second: list[str],
                                              found: str) -> None:
    file, out = tmp_path / "study.toml", tmp_path / "o"
    file.write_text(TEXT)
    assert main(sweep_cli(file, out, *first)) == 0
    assert found in one_line_refusal(sweep_cli(file, out, *second), capsys)
    assert main(sweep_cli(file, out, *first)) == 0


def test_manifest_records_what_rows_depend_on(tmp_path: Path) -> None:
    run_inline(TEXT, tmp_path, price_per_unit_hour=1.5)
    manifest = json.loads((tmp_path / "sweep.json").read_text())
    assert manifest["price_per_unit_hour"] == 1.5 and list(manifest["scenario"]) == [""]
    assert len(manifest["scenario"][""]) == 64  # SHA-256 hex digest


def test_rows_without_a_manifest_are_refused(tmp_path: Path) -> None:
    run_inline(TEXT, tmp_path)
    (tmp_path / "sweep.json").unlink()  # as written by an older leptonsim
    with pytest.raises(StudyError, match="has rows but no sweep.json"):
        run_inline(TEXT, tmp_path)


@pytest.mark.parametrize("junk", [b"\xff\xfe\x00garbage\n", b"point_id,variant\n\xc3\x28,x\n"])
def test_a_corrupt_results_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            junk: bytes) -> None:
    file, out = tmp_path / "study.toml", tmp_path / "o"
    file.write_text(TEXT)
    out.mkdir()
    (out / "results.csv").write_bytes(junk)
    err = one_line_refusal(sweep_cli(file, out), capsys)
    assert "results.csv" in err and "choose another --out" in err
    assert (out / "results.csv").read_bytes() == junk


def test_out_naming_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "study.toml"
    file.write_text(TEXT)
    err = one_line_refusal(sweep_cli(file, file), capsys)
    assert "--out: expected a writable directory, found a file" in err  # files.check_output


def test_a_second_sweep_on_a_locked_directory_is_refused_at_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file, out = tmp_path / "study.toml", tmp_path / "o"
    file.write_text(TEXT)
    with sweep_store(loads_sweep(TEXT, str(file)), out):
        err = one_line_refusal(sweep_cli(file, out), capsys)
        assert "another sweep" in err and "is writing to it" in err
        assert not (out / "results.sorted.csv").exists()
    assert main(sweep_cli(file, out)) == 0  # the lock went with its holder


def test_two_real_sweeps_on_one_out_never_duplicate_a_row(tmp_path: Path) -> None:
    file, out = tmp_path / "slow.toml", tmp_path / "out"
    file.write_text(SLOW)
    first = spawn_sweep(file, out, "--workers", "2")
    wait_for_rows(out / "results.csv", first, 2)
    os.kill(first.pid, signal.SIGSTOP)  # stopped, it keeps its lock: no race with its finish
    try:
        second = subprocess.run([sys.executable, "-m", "leptonsim", "sweep", str(file), "--out",
                                 str(out), "--workers", "2"], cwd=ROOT, capture_output=True,
                                text=True)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2 and len(second.stderr.splitlines()) == 1, second.stderr
    assert "another sweep (pid " in second.stderr
    assert first.wait(timeout=300) == 0
    ids = [r["point_id"] for r in rows_of(out / "results.csv")]
    assert len(ids) == 40 == len(set(ids))


def test_the_base_check_is_unchanged_by_the_store(tmp_path: Path) -> None:
    """A sweep without a [sweep] table is still a scenario error, before DIR is made."""
    file = tmp_path / "plain.toml"
    file.write_text(BASE)
    assert main(sweep_cli(file, tmp_path / "o")) == 2
    assert not (tmp_path / "o").exists()
