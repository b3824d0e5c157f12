"""One-at-a-time sensitivity (leptonsim.sensitivity, `leptonsim sensitivity`)."""

from __future__ import annotations

import csv

import pytest

from leptonsim.cli import main
from leptonsim.scenario import documents, parse
from leptonsim.sensitivity import parameters, tornado
from leptonsim.study.executors import InlineExecutor

CHAIN = """
[scenario]
name = "chain"
[hardware]
topology = "full"
[[hardware.units]]
name = "cpu"
count = 1
peak = "1 TFLOP/s"
memory_bandwidth = "100 GB/s"
efficiency = 0.5
[hardware.link]
latency = "1 us"
bandwidth = "10 GB/s"
[workload.generator]
kind = "chain"
tasks = 10
duration = "1 s"
"""


def doc() -> dict:  # type: ignore[type-arg]
    return documents(parse(CHAIN))[0][1]


def test_a_chain_of_fixed_tasks_on_one_unit_is_moved_by_its_efficiency_alone() -> None:
    """Ten 1 s tasks in a chain on one unit of efficiency E take 10 / E s, whatever its
    peak, bandwidth or links: E x 0.9 and E x 1.1 give 10 / 0.45 and 10 / 0.55 s, and
    every other parameter swings nothing."""
    nominal, swings = tornado(doc(), "makespan_s", 0.1, InlineExecutor())
    assert nominal == pytest.approx(20.0)
    first, rest = swings[0], swings[1:]
    assert first.path == "hardware.units[0].efficiency"
    assert (first.low, first.high) == (pytest.approx(10 / 0.45), pytest.approx(10 / 0.55))
    assert rest and all(s.width == 0 for s in rest)


def test_parameters_are_the_positive_floats_of_hardware_and_noise() -> None:
    d = doc()
    paths = parameters(d)
    assert ("hardware", "units", 0, "efficiency") in paths
    assert ("hardware", "units", 0, "count") not in paths  # an integer: not continuous
    assert all(p[0] in ("hardware", "noise") for p in paths)


def test_the_command_writes_the_table_and_the_tornado(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "chain.toml"
    f.write_text(CHAIN)
    assert main(["sensitivity", str(f), "--workers", "1", "--out", str(tmp_path / "o")]) == 0
    rows = list(csv.DictReader((tmp_path / "o" / "sensitivity.csv").open()))
    assert rows[0]["parameter"] == "hardware.units[0].efficiency"
    assert float(rows[0]["swing"]) == pytest.approx(10 / 0.45 - 10 / 0.55)
    assert (tmp_path / "o" / "tornado.png").stat().st_size > 0
    assert "hardware.units[0].efficiency" in capsys.readouterr().out


def test_a_bad_delta_is_one_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "chain.toml"
    f.write_text(CHAIN)
    with pytest.raises(SystemExit) as stop:
        main(["sensitivity", str(f), "--delta", "1.5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "--delta" in err[0]
