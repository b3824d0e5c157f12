from __future__ import annotations

import csv
import dataclasses
import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from leptonsim.export import (
    TASK_CSV_COLUMNS,
    TRANSFER_CSV_COLUMNS,
    atomic_write,
    chrome_trace,
    write_chrome_trace,
    write_tasks_csv,
    write_transfers_csv,
)
from leptonsim.gantt_phases import PHASES
from leptonsim.plots import LINK_SHARE, MAX_CHANNEL_ROWS, MIN_CHANNEL_ROWS, gantt, save_figure
from leptonsim.trace import Trace
from tests.helpers.traces import base, make_trace, traces

UNITS_PID, LINKS_PID = 1, 2


@pytest.fixture
def small() -> Trace:
    return make_trace(
        [(0, 0, 0.0, 1e-3), (1, 1, 2e-3, 3.5e-3), (2, 0, 1e-3, 4e-3), (3, 1, 4e-3, 5e-3)],
        [
            (0, 1, 0, 1024.0, 1e-3, 2e-3),
            (2, 3, 1, 4096.0, 4e-3, 4.5e-3),
            (2, 3, 0, 4096.0, 4.2e-3, 4.7e-3),  # overlaps the next hop on channel 0
            (0, 3, 0, 8.0, 4.4e-3, 4.9e-3),
        ],
        channels=3,  # channel 2 carries nothing
    )


def thread_names(doc: dict[str, Any]) -> dict[tuple[int, int], str]:
    out: dict[tuple[int, int], str] = {}
    for e in doc["traceEvents"]:
        if e["ph"] == "M" and e["name"] == "thread_name":
            key = (e["pid"], e["tid"])
            assert key not in out, f"tid {key} named twice"
            out[key] = e["args"]["name"]
    return out


def check_chrome(trace: Trace, doc: dict[str, Any]) -> None:
    """Every task and hop exactly once, with exact ts/dur, on a track named for it."""
    doc = json.loads(json.dumps(doc, allow_nan=False))  # valid JSON, survives a round trip
    assert set(doc) == {"traceEvents", "displayTimeUnit", "otherData"}
    assert doc["displayTimeUnit"] == "ms"
    names = thread_names(doc)
    procs = {
        e["pid"]: e["args"]["name"]
        for e in doc["traceEvents"]
        if e["ph"] == "M" and e["name"] == "process_name"
    }
    links_pid = LINKS_PID  # after the one process "units", which a view splits per node
    want = {UNITS_PID: "units"} if len(trace.task) else {}
    assert procs == want | ({links_pid: "links"} if len(trace.xfer_channel) else {})

    # exactly the units and channels that carry an event have a named track (overflow
    # lanes are "<name> #k"): issue 17's 1,024 declared tracks for 128 busy ones
    unit_tracks = {base(n) for (pid, _), n in names.items() if pid == UNITS_PID}
    link_tracks = {base(n) for (pid, _), n in names.items() if pid == links_pid}
    assert unit_tracks == {trace.unit_names[u] for u in trace.task_unit.tolist()}
    if len(trace.xfer_channel):
        assert link_tracks == {trace.channel_names[c] for c in trace.xfer_channel.tolist()}
    sort_idx = [
        (e["pid"], e["tid"]) for e in doc["traceEvents"] if e["name"] == "thread_sort_index"
    ]
    assert sorted(sort_idx) == sorted(names)

    expected_tasks = Counter(
        (r.name, r.kind, trace.unit_names[r.unit], r.start_s * 1e6, (r.end_s - r.start_s) * 1e6)
        for r in trace.task_rows()
    )
    expected_xfers = Counter(
        (
            f"{trace.task_names[r.src_task]}→{trace.task_names[r.dst_task]}",
            trace.channel_names[r.channel],
            r.nbytes,
            r.start_s * 1e6,
            (r.end_s - r.start_s) * 1e6,
        )
        for r in trace.transfer_rows()
    )
    got_tasks: Counter[tuple[Any, ...]] = Counter()
    got_xfers: Counter[tuple[Any, ...]] = Counter()
    lanes: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for e in doc["traceEvents"]:
        if e["ph"] != "X":
            assert e["ph"] in "MstfC"  # metadata, dependency arrows, counters
            continue
        track = base(names[(e["pid"], e["tid"])])
        lanes.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
        if e["pid"] == UNITS_PID:
            assert e["args"]["unit"] == track
            assert e["name"] == trace.task_names[e["args"]["task"]]
            got_tasks[(e["name"], e["cat"], track, e["ts"], e["dur"])] += 1
        else:
            assert e["pid"] == links_pid and e["cat"] == "transfer"
            got_xfers[(e["name"], track, float(e["args"]["bytes"]), e["ts"], e["dur"])] += 1
    assert got_tasks == expected_tasks
    assert got_xfers == expected_xfers
    # no two slices on one track overlap (Perfetto would drop them)
    for spans in lanes.values():
        spans.sort()
        for (_, end_a), (start_b, _) in zip(spans, spans[1:], strict=False):
            assert start_b >= end_a - 1e-6 * max(1.0, abs(end_a))


def test_chrome_trace_small(small: Trace, tmp_path: Path) -> None:
    doc = chrome_trace(small)
    check_chrome(small, doc)
    names = thread_names(doc)
    # overlapping hops on channel 0 spill to an overflow track right after it
    assert names[(LINKS_PID, 1)] == "nvlink0 gpu0→gpu1"
    assert names[(LINKS_PID, 2)] == "nvlink0 gpu0→gpu1 #2"
    assert names[(LINKS_PID, 3)] == "nvlink0 gpu1→gpu0"
    assert doc["otherData"]["makespan_s"] == 5e-3
    ev = next(e for e in doc["traceEvents"] if e.get("name") == "t2")
    assert ev == {
        "name": "t2",
        "cat": "opt",
        "ph": "X",
        "pid": UNITS_PID,
        "tid": 1,
        "ts": 1e-3 * 1e6,
        "dur": (4e-3 - 1e-3) * 1e6,
        "args": {"task": 2, "unit": "gpu0"},
    }
    hop = next(e for e in doc["traceEvents"] if e.get("name") == "t0→t1")
    assert hop["args"]["bytes"] == 1024


def test_write_chrome_trace_is_byte_identical(small: Trace, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_chrome_trace(small, a)
    write_chrome_trace(small, b)
    assert a.read_bytes() == b.read_bytes()
    assert json.loads(a.read_text(encoding="utf-8")) == chrome_trace(small)
    assert json.dumps(chrome_trace(small)) == json.dumps(chrome_trace(small))
    assert list(tmp_path.iterdir()) != [] and not list(tmp_path.glob(".*.tmp"))


def test_empty_trace(tmp_path: Path) -> None:
    trace = make_trace([], [], n_names=0, units=1, channels=0)
    doc = chrome_trace(trace)
    check_chrome(trace, doc)
    assert not [e for e in doc["traceEvents"] if e["ph"] == "X"]
    save_figure(gantt(trace, "empty"), tmp_path / "empty.png")


def test_bad_trace_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"trace.task_unit has index 5, outside 0..1"):
        chrome_trace(make_trace([(0, 5, 0.0, 1.0)], []))
    with pytest.raises(ValueError, match=r"trace.task_end\[0\] = 0.5 s is before"):
        chrome_trace(make_trace([(0, 0, 1.0, 0.5)], []))
    with pytest.raises(ValueError, match="non-finite"):
        chrome_trace(make_trace([(0, 0, 0.0, float("nan"))], []))


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_tasks_csv_round_trip(small: Trace, tmp_path: Path) -> None:
    path = write_tasks_csv(small, tmp_path / "tasks.csv")
    header, rows = read_csv(path)
    assert tuple(header) == TASK_CSV_COLUMNS
    assert len(rows) == len(small.task)
    col = {name: [r[i] for r in rows] for i, name in enumerate(header)}
    assert [int(v) for v in col["task"]] == small.task.tolist()
    assert [int(v) for v in col["unit"]] == small.task_unit.tolist()
    assert [float(v) for v in col["start_s"]] == small.task_start.tolist()
    assert [float(v) for v in col["end_s"]] == small.task_end.tolist()
    assert col["name"] == [small.task_names[t] for t in small.task.tolist()]
    assert col["kind"] == [small.task_kinds[t] for t in small.task.tolist()]
    assert col["unit_name"] == [small.unit_names[u] for u in small.task_unit.tolist()]


def test_transfers_csv_round_trip(small: Trace, tmp_path: Path) -> None:
    path = write_transfers_csv(small, tmp_path / "xfers.csv")
    header, rows = read_csv(path)
    assert tuple(header) == TRANSFER_CSV_COLUMNS
    col = {name: [r[i] for r in rows] for i, name in enumerate(header)}
    assert [int(v) for v in col["src_task"]] == small.xfer_src_task.tolist()
    assert [int(v) for v in col["dst_task"]] == small.xfer_dst_task.tolist()
    assert [int(v) for v in col["channel"]] == small.xfer_channel.tolist()
    assert [float(v) for v in col["nbytes"]] == small.xfer_bytes.tolist()
    assert [float(v) for v in col["start_s"]] == small.xfer_start.tolist()
    assert [float(v) for v in col["end_s"]] == small.xfer_end.tolist()
    assert col["channel_name"] == [small.channel_names[c] for c in small.xfer_channel.tolist()]


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    def boom(f: Any) -> None:
        f.write("partial")
        raise RuntimeError("writer failed")

    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="writer failed"):
        atomic_write(target, boom)
    assert list(tmp_path.iterdir()) == []

    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError, match="writer failed"):
        atomic_write(target, boom)
    assert target.read_text(encoding="utf-8") == "old"
    assert list(tmp_path.iterdir()) == [target]

    atomic_write(target, lambda f: f.write("new"))
    assert target.read_text(encoding="utf-8") == "new"
    atomic_write(target, lambda f: f.write(b"\x00bin"), binary=True)
    assert target.read_bytes() == b"\x00bin"
    assert list(tmp_path.iterdir()) == [target]


def test_gantt_png_and_svg(small: Trace, tmp_path: Path) -> None:
    fig = gantt(small, "two GPUs")
    assert fig.axes[-1].get_xlabel() == "time (ms)"  # makespan 5 ms
    assert len(fig.axes) == 2  # units + links
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == [
        "nvlink0 gpu0→gpu1",
        "nvlink0 gpu1→gpu0",
    ]  # channel 2 carried nothing
    png = save_figure(fig, tmp_path / "g.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = save_figure(fig, tmp_path / "g.svg")
    head = svg.read_bytes()[:500]
    assert b"<svg" in head or b"<?xml" in head
    assert b"</svg>" in svg.read_bytes()[-100:]
    with pytest.raises(ValueError, match="expected a .png or .svg"):
        save_figure(fig, tmp_path / "g.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png", "g.svg"]


def test_gantt_of_two_units_and_every_phase_shows_its_rows_and_whole_legend() -> None:
    """A legend taller than two rows once squeezed the rows to slivers (issue 17)."""
    kinds = ["conv2d", "conv2d.bwd", "ring_allreduce", "ring_allgather", "all_to_all",
             "cp_ring", "optimizer", "input", "task"]
    tasks = [(i, i % 2, float(i), i + 1.0) for i in range(len(kinds))]
    trace = make_trace(tasks, [(0, 1, 0, 1.0, 1.0, 2.0)])
    names = ["F.d0.conv.k0.t0", "B.d0.conv.k0.t0"] + [f"t{i}" for i in range(2, len(kinds))]
    trace = dataclasses.replace(trace, task_kinds=kinds, task_names=names)
    fig = gantt(trace, "two units, every phase")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied" is a warning
        fig.draw_without_rendering()
    units, links = fig.axes
    inches = fig.get_figheight()
    for ax, rows in ((units, 2), (links, 1)):  # every row readable: at least 0.2 in
        assert ax.get_position().height * inches / rows >= 0.2
    legend = units.get_legend()
    assert [t.get_text() for t in legend.get_texts()][:-1] == list(PHASES)
    box = legend.get_window_extent().transformed(fig.transFigure.inverted())
    assert box.y0 >= 0 and box.y1 <= 1 and box.x1 <= 1
    assert box.x0 >= max(a.get_position().x1 for a in fig.axes)  # beside the rows


def test_gantt_legend_lists_only_the_phases_drawn() -> None:
    """A kind the step graph does not name is "other"; a zero-length task draws
    nothing, so its phase (optimizer here) is not in the legend."""
    trace = make_trace([(0, 0, 0.0, 1.0), (1, 1, 1.0, 2.0), (2, 0, 2.0, 2.0)], [])
    trace = dataclasses.replace(trace, task_kinds=["fwd", "dense.bwd", "optimizer"])
    labels = [t.get_text() for t in gantt(trace, "x").axes[0].get_legend().get_texts()]
    assert labels == ["backward", "other", "makespan 2 s"]


def test_gantt_time_units() -> None:
    assert gantt(make_trace([(0, 0, 0.0, 2.0)], []), "s").axes[-1].get_xlabel() == "time (s)"
    assert gantt(make_trace([(0, 0, 0.0, 5e-6)], []), "us").axes[-1].get_xlabel() == "time (us)"


def test_gantt_caps_channels_and_says_so() -> None:
    n_chan = MAX_CHANNEL_ROWS + 10
    xfers = [(0, 1, c, 1.0, 0.0, 1.0 + c) for c in range(n_chan)]
    trace = make_trace([(0, 0, 0.0, 1.0), (1, 1, 1.0, 2.0)], xfers, channels=n_chan)
    fig = gantt(trace, "many links")
    assert fig.get_suptitle() == "many links"
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert len(labels) == MIN_CHANNEL_ROWS  # two unit rows: the panel's floor
    assert labels[0] == trace.channel_names[n_chan - MIN_CHANNEL_ROWS]  # least busy dropped
    assert f"links: the {MIN_CHANNEL_ROWS} busiest of {n_chan} shown" in fig.axes[0].get_title(
        loc="left")


def test_gantt_notes_units_that_ran_nothing() -> None:
    trace = make_trace([(0, 0, 0.0, 1.0), (1, 2, 0.0, 1.0)], [], units=4)
    assert gantt(trace, "x").axes[0].get_title(loc="left") == (
        "units: 2 of 4 ran no task (idle, or simulated through another unit of their group)")
    assert gantt(make_trace([(0, 0, 0.0, 1.0), (1, 1, 0.0, 1.0)], []), "x").axes[0].get_title(
        loc="left") == ""  # every unit ran: nothing to note


@pytest.mark.parametrize("units", [16, 64])
def test_gantt_link_panel_never_dominates(units: int) -> None:
    """Above its floor of rows the link panel takes at most LINK_SHARE of the height,
    however many links carried traffic (issue 17: 40 link rows under 128 unit rows)."""
    n_chan = 4 * MAX_CHANNEL_ROWS
    xfers = [(0, 1, c, 1.0, 0.0, 1.0) for c in range(n_chan)]
    tasks = [(u % 2, u, 0.0, 1.0) for u in range(units)]
    fig = gantt(make_trace(tasks, xfers, units=units, channels=n_chan), "wide")
    top, links = (ax.get_position().height for ax in fig.axes)
    shown = len(fig.axes[1].get_yticks())
    assert shown == MIN_CHANNEL_ROWS or links / (top + links) <= LINK_SHARE
    assert shown > MIN_CHANNEL_ROWS or units == 16  # 64 unit rows leave room for more


@settings(max_examples=150, deadline=None)
@given(traces())
def test_chrome_trace_property(trace: Trace) -> None:
    doc = chrome_trace(trace)
    check_chrome(trace, doc)
    n_x = sum(1 for e in doc["traceEvents"] if e["ph"] == "X")
    assert n_x == len(trace.task) + len(trace.xfer_channel)
    assert json.dumps(doc) == json.dumps(chrome_trace(trace))
