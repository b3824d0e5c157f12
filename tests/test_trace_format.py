"""trace.json against the Trace Event Format's rules (Google's "Trace Event Format"
document, the one chrome://tracing and Perfetto's JSON importer follow), over bundled
scenarios; and the theorems of its arrows, counters and args (issue 17)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

from leptonsim.chrome_extras import BINS, DIGITS, MAX_FLOWS, Flows, link_counters
from leptonsim.export import chrome_trace
from leptonsim.result import run
from leptonsim.scenario import load, loads
from leptonsim.trace_view import view_of
from tests.helpers.traces import base, make_trace, traces

ROOT = Path(__file__).resolve().parents[1]
METADATA = {"process_name", "process_sort_index", "thread_name", "thread_sort_index"}


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def check_format(doc: dict[str, Any]) -> None:
    """Every event has what its ph requires; X has dur >= 0; s/t/f pair by (cat, id),
    start before finish, each bound to a slice on its thread; C args are numbers;
    every thread and process with events is named."""
    doc = json.loads(json.dumps(doc, allow_nan=False))
    slices: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    flows: dict[tuple[str, int], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list))
    named_threads, named_procs, used = set(), set(), set()
    for e in doc["traceEvents"]:
        ph = e["ph"]
        assert isinstance(e["name"], str) and isinstance(e["pid"], int), e
        assert ph in "XMstfC", e
        if ph == "M":
            assert e["name"] in METADATA and isinstance(e["args"], dict), e
            if e["name"] == "thread_name":
                named_threads.add((e["pid"], e["tid"]))
            elif e["name"] == "process_name":
                named_procs.add(e["pid"])
            continue
        assert _number(e["ts"]) and e["ts"] >= 0, e
        assert isinstance(e["tid"], int), e
        if ph == "X":
            assert _number(e["dur"]) and e["dur"] >= 0, e
            slices[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
            used.add((e["pid"], e["tid"]))
        elif ph == "C":
            assert e["args"] and all(_number(v) for v in e["args"].values()), e
        else:
            assert isinstance(e["id"], int) and isinstance(e["cat"], str), e
            flows[(e["cat"], e["id"])][ph].append(e)
        assert e["pid"] in named_procs, f"process {e['pid']} has events but no name"
    assert used <= named_threads, f"unnamed threads {used - named_threads}"
    for key, parts in flows.items():
        assert len(parts["s"]) == 1 and len(parts["f"]) == 1, key
        times = [parts["s"][0]["ts"], *sorted(t["ts"] for t in parts["t"]), parts["f"][0]["ts"]]
        assert times == sorted(times), key
        assert parts["f"][0]["bp"] == "e"
        for e in parts["s"] + parts["t"] + parts["f"]:  # each binds to its enclosing slice
            assert any(a <= e["ts"] <= b for a, b in slices[(e["pid"], e["tid"])]), e


# small ones only: each under a second to simulate
CASES = [("seed_case_study.toml", 0), ("seed_cnn_data_parallel.toml", 2),
         ("bert_tensor_parallel.toml", 0), ("dlrm_hybrid.toml", 1),
         ("comm_bound_fork_join.toml", 0), ("heterogeneous.toml", 0)]


@pytest.fixture(scope="module", params=CASES, ids=[f"{f}[{i}]" for f, i in CASES])
def written(request: pytest.FixtureRequest) -> tuple[Any, dict[str, Any]]:
    file, i = request.param
    result = run(load(ROOT / "scenarios" / file)[i])
    view = view_of(result.scenario, len(result.trace.unit_names))
    return result, chrome_trace(result.trace, view)


def test_bundled_traces_follow_the_format(written: tuple[Any, dict[str, Any]]) -> None:
    check_format(written[1])


def test_bundled_traces_hold_arrows_counters_and_args(
        written: tuple[Any, dict[str, Any]]) -> None:
    result, doc = written
    events, trace = doc["traceEvents"], result.trace
    arrows = {e["id"] for e in events if e["ph"] == "s"}
    pairs = set(zip(trace.xfer_src_task.tolist(), trace.xfer_dst_task.tolist(), strict=True))
    assert len(arrows) == min(len(pairs), MAX_FLOWS)  # every task ran: one arrow per pair
    assert doc["otherData"]["dependency_arrows_left_out"] == len(pairs) - len(arrows)
    links = {e["name"] for e in events if e["ph"] == "C" and "GB/s" in e["args"]}
    assert links == {trace.channel_names[c] for c in trace.xfer_channel.tolist()}
    tasks = [e for e in events if e["ph"] == "X" and e["cat"] != "transfer"]
    g = result.scenario.graph
    for e in tasks:
        t = e["args"]["task"]
        assert e["args"].get("flops", 0) == pytest.approx(g.flops[t], rel=0, abs=0)
    step = result.scenario.step
    if step is not None and step.work:
        assert {e["args"]["phase"] for e in tasks} >= {"forward", "backward"}
        assert any("microbatch" in e["args"] and "layer" in e["args"] for e in tasks)
        assert any(e["ph"] == "C" and "weights GB" in e["args"] for e in events)


def test_a_process_per_node_holding_only_units_that_ran() -> None:
    result = run(load(ROOT / "scenarios" / "dlrm_hybrid.toml")[1])  # 2 nodes of 4
    doc = chrome_trace(result.trace, view_of(result.scenario, len(result.trace.unit_names)))
    procs = {e["pid"]: e["args"]["name"] for e in doc["traceEvents"]
             if e["name"] == "process_name"}
    assert procs == {1: "node 0", 2: "node 1", 3: "links"}
    threads = {(e["pid"], base(e["args"]["name"])) for e in doc["traceEvents"]
               if e["name"] == "thread_name" and e["pid"] < 3}
    ran = set(result.trace.task_unit.tolist())
    assert threads == {(1 + u // 4, result.trace.unit_names[u]) for u in ran}


SYMMETRIC = """
[scenario]
name = "symmetric tensor parallelism, two nodes of four"
[hardware]
topology = "two_level"
[[hardware.units]]
name = "gpu"
count = 8
preset = "a100_80gb"
[hardware.two_level]
units_per_node = 4
intra = { preset = "nvlink3" }
inter = { preset = "infiniband_hdr" }
[workload.model]
name = "bert_base"
batch = 16
microbatches = 2
precision = "fp16"
[parallel]
dp = 2
tp = 4
tp_mode = "symmetric"
"""


def test_symmetric_mode_declares_the_simulated_units_only() -> None:
    """One rank per tensor-parallel group ran: the trace declares its track alone (issue
    17: GPT-3's trace declared 1,024 unit tracks, 128 with events), in its node."""
    scenario = loads(SYMMETRIC)[0]
    result = run(scenario)
    doc = chrome_trace(result.trace, view_of(scenario, len(result.trace.unit_names)))
    check_format(doc)
    units = {(e["pid"], base(e["args"]["name"])) for e in doc["traceEvents"]
             if e["name"] == "thread_name" and e["pid"] < 3}
    assert units == {(1, "gpu0"), (2, "gpu4")}
    memory = {e["name"] for e in doc["traceEvents"] if e["ph"] == "C" and e["pid"] < 3}
    assert memory == {"gpu0 memory plan", "gpu4 memory plan"}


@settings(max_examples=100, deadline=None)
@given(traces())
def test_any_trace_follows_the_format_and_counters_conserve_bytes(trace: Any) -> None:
    """The bins' GB/s x width sum, per channel, to the bytes its hops carried, within
    the rounding of each value to DIGITS significant digits (relative 0.5e-5 at 6)."""
    check_format(chrome_trace(trace))
    events = list(link_counters(trace, 2, trace.channel_names))
    if trace.makespan_s == 0:  # no time to spread bytes over: no counter
        assert events == []
        return
    for c in set(trace.xfer_channel.tolist()):
        want = float(trace.xfer_bytes[trace.xfer_channel == c].sum()) / 1e9
        ev = [e for e in events if e["name"] == trace.channel_names[c]]
        edges = [e["ts"] / 1e6 for e in ev] + [trace.makespan_s]  # a value holds to the next
        got = sum(e["args"]["GB/s"] * (b - a)
                  for e, a, b in zip(ev, edges, edges[1:], strict=False))
        assert got == pytest.approx(want, rel=0.5 * 10.0 ** (1 - DIGITS) * (1 + 1e-9), abs=1e-12)


def test_arrows_beyond_the_cap_are_left_out_earliest_kept() -> None:
    xfers = [(2 * i, 2 * i + 1, 0, 8.0, float(i), i + 0.5) for i in range(5)]
    tasks = [(t, t % 2, x - 0.1 if t % 2 == 0 else x + 0.6, x if t % 2 == 0 else x + 0.7)
             for t in range(10) for x in [float(t // 2)]]
    flows = Flows(make_trace(tasks, xfers), limit=3)
    assert flows.total == 5 and len(flows.pair) == 3
    src, dst = flows.ends()
    assert src.tolist() == [0, 2, 4] and dst.tolist() == [1, 3, 5]
    assert np.array_equal(flows.hop_id, [0, 1, 2])


def test_results_md_states_the_bounds_the_code_has() -> None:
    text = " ".join((ROOT / "docs" / "results.md").read_text(encoding="utf-8").split())
    assert f"At most {MAX_FLOWS:,} arrows" in text
    assert f"each of {BINS} equal bins" in text
    assert f"values to {DIGITS} significant digits" in text
