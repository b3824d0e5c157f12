"""Outputs that scale (issue 14 item 5): --outputs levels, the streamed trace (.json and
.json.gz), the Gantt chart grouped per stage/replica/node, progress on stderr only."""

from __future__ import annotations

import gzip
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.export import chrome_chunks, chrome_events, chrome_trace, write_chrome_trace
from leptonsim.gantt_rows import MAX_UNIT_ROWS, busy_fractions, grouping
from leptonsim.outputs import SUMMARY_ABOVE, choose, files
from leptonsim.scenario import loads
from leptonsim.trace import Trace

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "scenarios" / "seed_case_study.toml"

WIDE = """
[scenario]
name = "gpt3 small on 128 units"
[hardware]
topology = "two_level"
units = [{{ name = "gpu", count = 128, preset = "a100_80gb" }}]
[hardware.two_level]
units_per_node = 8
intra = {{ preset = "nvlink3" }}
inter = {{ preset = "infiniband_hdr" }}
[workload.model]
name = "gpt3_small"
batch = 64
microbatches = 4
precision = "fp16"
[parallel]
tp = 2
pp = 4
tp_mode = "{tp_mode}"
dp_mode = "{dp_mode}"
"""


def _trace(n: int, units: int = 2) -> Trace:
    """n tasks round-robin on `units` units, back to back, one hop between neighbours."""
    start = np.arange(n, dtype=float) // units
    return Trace([f"t{i}" for i in range(n)], ["compute" if i % 3 else "comm" for i in range(n)],
                 [f"u{u}" for u in range(units)], ["c0"], np.arange(n), np.arange(n) % units,
                 start, start + 0.5, np.array([0]), np.array([1 % n]), np.array([0]),
                 np.array([1e6]), np.array([0.5]), np.array([0.75]))


# ---------------------------------------------------------------- the streamed trace


def test_streamed_trace_reads_back_as_the_in_memory_one(tmp_path: Path) -> None:
    trace = _trace(300, 3)
    plain = write_chrome_trace(trace, tmp_path / "trace.json")
    packed = write_chrome_trace(trace, tmp_path / "trace.json.gz")
    assert json.loads(plain.read_text(encoding="utf-8")) == chrome_trace(trace)
    with gzip.open(packed, "rb") as f:
        assert f.read() == plain.read_bytes()  # the same text, compressed
    again = write_chrome_trace(trace, tmp_path / "again.json.gz")
    assert again.read_bytes() == packed.read_bytes()  # no name, no time in the header


def test_the_writer_consumes_an_iterator_in_bounded_chunks() -> None:
    """Memory does not grow with the events, by construction: events are generated one
    at a time, and every piece of text handed to the file holds at most 4,096 events."""
    trace = _trace(20_000)
    assert inspect.isgenerator(chrome_events(trace))
    pieces = list(chrome_chunks(trace))
    assert max(p.count("\n") for p in pieces) <= 4096
    assert len(pieces) >= 20_000 // 4096
    assert sum(p.count('"ph":"X"') for p in pieces) == 20_001  # every task and the hop


# ---------------------------------------------------------------- levels


@given(st.integers(0, 10 * SUMMARY_ABOVE))
def test_auto_is_summary_exactly_above_the_threshold(tasks: int) -> None:
    assert (choose("auto", tasks) == "summary") == (tasks > SUMMARY_ABOVE)
    assert choose("all", tasks) == "all" and choose("summary", tasks) == "summary"


def test_each_level_adds_to_the_one_below() -> None:
    summary, standard, every = (set(files(lv, grouped=True)) for lv in ("summary", "standard", "all"))
    assert summary == {"summary.json"} and summary < standard < every
    assert every - standard == {"gantt_units.png"}
    assert set(files("all")) == standard  # one row per unit already: nothing more to draw


def _public(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))


def test_run_summary_writes_one_file_and_says_so(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert main(["run", str(SEED), "--out", str(out)]) == 0
    assert _public(out / "chain") == ["gantt.png", "summary.json", "tasks.csv", "trace.json",
                                      "transfers.csv"]
    assert "outputs " not in capsys.readouterr().out  # everything there is was written
    assert main(["run", str(SEED), "--out", str(out), "--outputs", "summary"]) == 0
    report = capsys.readouterr().out
    assert "outputs summary (" in report and "asked); --outputs standard adds" in report
    for variant in ("independent", "chain", "seed_assumptions"):
        assert _public(out / variant) == ["summary.json"]  # no link left dangling


def test_trace_format_gz(tmp_path: Path) -> None:
    assert main(["run", str(SEED), "--out", str(tmp_path), "--trace-format", "json.gz"]) == 0
    names = _public(tmp_path / "chain")
    assert "trace.json.gz" in names and "trace.json" not in names
    with gzip.open(tmp_path / "chain" / "trace.json.gz") as f:
        assert json.load(f)["otherData"]["generator"] == "leptonsim"


# ---------------------------------------------------------------- progress


def test_progress_goes_to_stderr_never_stdout(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SEED), "--out", str(tmp_path), "--progress", "always"]) == 0
    out, err = capsys.readouterr()
    assert "leptonsim:" not in out and "claim: seed §4.3" in out
    for phase in ("building", "simulating", "writing"):
        assert f"leptonsim: {phase} " in err
    assert main(["run", str(SEED), "--out", str(tmp_path)]) == 0  # auto: stderr no terminal
    out, err = capsys.readouterr()
    assert "leptonsim:" not in out + err


# ---------------------------------------------------------------- grouped Gantt


@pytest.fixture(scope="module")
def wide() -> dict[str, object]:
    from leptonsim.result import run

    return {mode: run(loads(WIDE.format(tp_mode=t, dp_mode=d))[0])
            for mode, (t, d) in {"mirrored": ("symmetric", "auto"),
                                 "full": ("full", "full")}.items()}


@pytest.mark.parametrize("mode", ["mirrored", "full"])
@pytest.mark.parametrize("by", ["stage", "replica", "node"])
def test_grouped_rows_count_every_unit_busy_time(wide: dict[str, object], mode: str,
                                                 by: str) -> None:
    """Theorem: a row's fractions, summed over kinds and time, are its units' busy time
    (every unit a simulated one stands for counted) over its units' capacity."""
    result = wide[mode]
    s, trace = result.scenario, result.trace  # type: ignore[attr-defined]
    rows = grouping(s, by)
    assert rows is not None and rows.by == by
    kinds = sorted(set(trace.task_kinds))
    kind_of_task = np.array([kinds.index(k) for k in trace.task_kinds])
    edges, fraction = busy_fractions(trace, rows, kind_of_task, len(kinds), trace.makespan_s)
    every = s.step.every_unit(trace)
    busy = np.bincount(rows.of_unit[every.task_unit], every.task_end - every.task_start,
                       minlength=len(rows.labels))
    units = np.bincount(rows.of_unit, minlength=len(rows.labels))
    got = fraction.sum(axis=(1, 2)) * (edges[1] - edges[0]) * units
    np.testing.assert_allclose(got, busy, rtol=1e-9, atol=1e-12)
    expected = {"stage": 4, "replica": 16, "node": 16}[by]
    assert len(rows.labels) == expected


def test_auto_grouping(wide: dict[str, object]) -> None:
    s = wide["mirrored"].scenario  # type: ignore[attr-defined]
    assert s.cluster.size > MAX_UNIT_ROWS
    rows = grouping(s)
    assert rows is not None and rows.by == "stage"
    assert grouping(s, "unit") is None


def test_grouped_gantt_and_the_units_one_are_written(wide: dict[str, object],
                                                     tmp_path: Path) -> None:
    from leptonsim.result import write_outputs

    written = write_outputs(wide["mirrored"], tmp_path, "all")  # type: ignore[arg-type]
    assert {"gantt.png", "gantt_units.png"} <= {p.name for p in written}
    for name in ("gantt.png", "gantt_units.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 400), st.integers(1, 5))
def test_a_group_always_busy_is_full(n: int, units: int) -> None:
    """Back-to-back tasks on every unit of one group: the fraction is 1 in every bin."""
    from leptonsim.gantt_rows import Grouping

    trace = _trace(n * units, units)
    rows = Grouping("block", ["all"], np.zeros(units, np.int64), {})
    start = np.arange(n * units, dtype=float) // units
    full = Trace(trace.task_names, ["k"] * (n * units), trace.unit_names, [], trace.task,
                 trace.task_unit, start, start + 1.0, *(np.array([], dtype=t)
                                                         for t in (int, int, int, float, float, float)))
    _, fraction = busy_fractions(full, rows, np.zeros(n * units, np.int64), 1, full.makespan_s)
    np.testing.assert_allclose(fraction[0, 0], 1.0, rtol=1e-9)
