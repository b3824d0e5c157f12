"""Inputs too big, too extreme or of the wrong shape are one line, exit 2, nothing
written (issue 10, items 5, 8, 9, 10, 12, 16, 17, 20): the bounds of leptonsim.limits.
"""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim import limits
from leptonsim.cli import main
from leptonsim.errors import ScenarioError
from leptonsim.limits import MAGNITUDES, SIZES, Size
from leptonsim.report import summary
from leptonsim.result import run
from leptonsim.scenario import loads
from leptonsim.scenario.build import _step_tasks_at_least
from tests.helpers.scenario_cases import GEN

HARDWARE = GEN.split("[workload.generator]")[0]  # GEN: the bad-input cases' base

MODEL = HARDWARE.replace("count = 4", "count = 1") + """
[workload.model]
batch = 4
input_shape = [8, 8, 1]
layers = [{ op = "conv2d", filters = 2, kernel = 3 }, { op = "flatten" }]
"""


def edit(text: str, old: str, new: str) -> str:
    assert old in text, f"edit does not apply: {old!r}"
    return text.replace(old, new, 1)


def _bound(name: str) -> str:
    """The refusal's words for SIZES[name] (the bound stated once, in limits.py)."""
    size = limits.SIZES[name]
    return f"at most {size.maximum:,} {size.noun}"


TASKS_BOUND, EDGES_BOUND, LINKS_BOUND = _bound("tasks"), _bound("edges"), _bound("links")
CASES = [  # (id, scenario text, key path, words of the line)
    ("a 100k-character name", GEN.replace('name = "base"', f'name = "{"x" * 100_000}"'),
     "scenario.name", "expected at most 1,000 characters", "found 100,000 characters"),
    ("a 300-character variant name", GEN + f'\n[variants.{"v" * 300}]\n'
     '"workload.generator.kind" = "chain"\n', "variants",
     "expected at most 100 characters in a variant name", "found 300"),
    ("batch 1e308", edit(MODEL, "batch = 4", "batch = 1e308"), "workload.model.batch",
     "expected an integer >= 1 of magnitude at most 2^53", "found 1e+308"),
    ("seed 2**70", GEN.replace('name = "base"', f'name = "base"\nseed = {2**70}'),
     "scenario.seed", "of magnitude at most 2^53", f"found {2**70}"),
    ("workload = 5", "workload = 5\n" + HARDWARE, "workload", "expected a table, found 5"),
    ("workload.model = 1.5", HARDWARE + "\n[workload]\nmodel = 1.5\n", "workload.model",
     "expected a table, found 1.5"),
    ("tasks of scalars", HARDWARE + "\n[workload]\ntasks = [1, 2]\n", "workload.tasks[0]",
     "expected a table, found 1"),
    ("override through a scalar", GEN + '\n[variants.v]\n"workload.generator" = 3\n'
     '"workload.generator.kind" = "chain"\n', 'variants.v."workload.generator.kind"',
     "a table at workload.generator", "found 3"),
    ("override indexing a table", GEN + '\n[variants.v]\n"hardware.units" = { a = 1 }\n'
     '"hardware.units[0].count" = 3\n', 'variants.v."hardware.units[0].count"',
     "an array at hardware.units", "found a table"),
    ("override indexing a scalar", GEN + '\n[variants.v]\n"hardware.units" = 3\n'
     '"hardware.units[0].count" = 3\n', 'variants.v."hardware.units[0].count"',
     "an array at hardware.units", "found 3"),
    ("peak 5e-324", edit(GEN, 'peak = "19.5 TFLOP/s"', "peak = 5e-324"),
     "hardware.units[0].peak", "a compute rate between 1 FLOP/s and 1e+21 FLOP/s",
     "found 5e-324"),
    ("overhead 1e308", edit(GEN, "efficiency = 0.8", "efficiency = 0.8\noverhead = 1e308"),
     "hardware.units[0].overhead", "a duration between", "or 0", "found 1e+308"),
    ("link 5e-324 B/s", edit(GEN, 'bandwidth = "25 GB/s"', "bandwidth = 5e-324"),
     "hardware.link.bandwidth", "a bandwidth between", "found 5e-324"),
    ("price 1.7e308", edit(GEN, "efficiency = 0.8", "efficiency = 0.8\nprice_per_hour = 1.7e308"),
     "hardware.units[0].price_per_hour", "a price per unit-hour between", "found 1.7e+308"),
    ("busy power 1e308", edit(GEN, "efficiency = 0.8", "efficiency = 0.8\nbusy_power = 1e308"),
     "hardware.units[0].busy_power", "a power between", "found 1e+308"),
    ("efficiency 1e-300", edit(GEN, "efficiency = 0.8", "efficiency = 1e-300"),
     "hardware.units[0].efficiency", "a number between 1e-09 and 1e+09"),
    ("lambda 1e300", GEN + "\n[objective]\ntraining_error = 0.1\ninference_error = 0.1\n"
     "lambda = 1e300\n", "objective.lambda", "between 1e-12 and 1e+12"),
    ("nesting 40 deep", GEN + "x = " + "[" * 40 + "]" * 40 + "\n",
     "workload.generator.x" + "[0]" * 30, "at most 32 levels of nesting"),
    ("nesting too deep to parse", GEN + "x = " + "[" * 5000 + "]" * 5000 + "\n", "",
     "at most 32 levels of nesting"),
    ("count 10**7", edit(GEN, "count = 4", "count = 10000000"), "hardware.units[0].count",
     "at most 16,384 compute units", "found 10,000,000 compute units"),
    ("count 2**63 - 1", edit(GEN, "count = 4", "count = 9223372036854775807"),
     "hardware.units[0].count", "of magnitude at most 2^53"),  # before the unit bound
    ("units over two tables", edit(GEN, "[hardware.link]", '[[hardware.units]]\nname = "cpu"\n'
     'count = 16381\npreset = "v100"\n\n[hardware.link]'), "hardware.units[1].count",
     "the units up to here number 16,385"),
    ("full topology of 2,000 units", edit(GEN, "count = 4", "count = 2000"),
     "hardware.topology", LINKS_BOUND, "found 1,999,000 links"),
    ("HEFT on 4,096 units", edit(GEN, 'topology = "full"', 'topology = "switch"').replace(
        "count = 4", "count = 4096"), "schedule.scheduler", "compute units for a HEFT",
     "(the default)"),
    ("10**8 tasks", edit(GEN, "tasks = 20", "tasks = 100000000"), "workload.generator.tasks",
     TASKS_BOUND, "found 100,000,000 tasks"),
    ("layered edges", edit(GEN, "tasks = 20\nwidth = 5", "tasks = 1000000\nwidth = 100000\n"
     "degree = 100000"), "workload.generator.degree", EDGES_BOUND),
    ("fork_join tasks", edit(GEN, 'kind = "layered"\ntasks = 20\nwidth = 5',
     'kind = "fork_join"\nwidth = 100000\nstages = 100000'), "workload.generator",
     TASKS_BOUND),
    ("split_max of 1 ns", edit(GEN, 'duration = "10 s"', 'duration = "10 s"\nsplit_max = "1 ns"'),
     "workload.generator.split_max", TASKS_BOUND, "1e+10 sub-tasks"),
    ("split edges", edit(GEN, 'duration = "10 s"', 'duration = "10 s"\nsplit_max = "10 ms"'),
     "workload.generator.split_max", EDGES_BOUND),
    ("micro-batches x layers", edit(MODEL, "batch = 4", "batch = 1048576\nmicrobatches = 1048576"),
     "workload.model", TASKS_BOUND, "1048576 micro-batches x 2 layers"),
    ("kernel 3.0", edit(MODEL, "kernel = 3 }", "kernel = 3.0 }"),
     "workload.model.layers[0].kernel", "an integer or an array of 2 integers", "found 3.0"),
]


def one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize(("id", "text", "path", "words"), [(c[0], c[1], c[2], c[3:]) for c in CASES],
                         ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["check", "run"])
def test_refusal_is_one_line_exit_2_nothing_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, id: str, text: str,
        path: str, words: tuple[str, ...]) -> None:
    f = tmp_path / "case.toml"
    f.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    line = one_line(capsys, [command, str(f)] + (["--out", str(out)] if command == "run" else []))
    where = f"{f}: {path}: " if path else f"{f}: "
    assert line.startswith(f"error: {where}expected "), line
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    assert not out.exists()


def test_the_step_builder_stops_at_the_task_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lower bound on a step's tasks lets some through; the builder stops the rest."""
    step = loads(MODEL)[0]
    assert step.step is not None
    assert _step_tasks_at_least(step.step.model.layers, step.step.config) <= step.graph.size - 1
    monkeypatch.setitem(SIZES, "tasks", Size(step.graph.size - 1, "tasks", "test"))
    with pytest.raises(ScenarioError) as info:
        loads(MODEL, file="m.toml")
    assert info.value.path == "workload.model"
    assert f"at most {step.graph.size - 1} tasks" in str(info.value)


def test_a_byte_order_mark_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bom.toml"
    f.write_bytes(b"\xef\xbb\xbf" + GEN.encode())
    assert main(["check", str(f)]) == 0
    assert "ok: base: 4 units" in capsys.readouterr().out


def test_a_file_past_the_byte_bound_is_refused_unread(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "big.toml"
    with open(f, "wb") as fh:
        fh.write(GEN.encode())
        fh.truncate(SIZES["file_bytes"].maximum + 1)  # sparse: nothing is really written
    line = one_line(capsys, ["check", str(f)])
    assert line == (f"error: {f}: expected a scenario file of at most 67,108,864 bytes, found "
                    "more than 67,108,864 bytes (a scenario file is read whole into memory)")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line(capsys, ["check", "/dev/zero"])
    assert line == "error: /dev/zero: expected a readable scenario file, found a character device"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused_without_waiting(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    codes: list[int] = []
    worker = threading.Thread(target=lambda: codes.append(main(["check", str(fifo)])),
                              daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # release a reader blocked in open() before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(timeout=5)
    assert codes == [2]
    assert capsys.readouterr().err == (f"error: {fifo}: expected a readable scenario file, "
                                       "found a named pipe\n")


# -- magnitudes: a theorem ------------------------------------------------------------

# (where in GEN_RUN, kind, whether 0 is valid, the schema's upper bound)
FIELDS = {
    "peak": ("flop_rate", False, math.inf), "memory_bandwidth": ("bandwidth", False, math.inf),
    "efficiency": ("dimensionless", False, 1.0), "overhead": ("time", True, math.inf),
    "idle_power": ("power", True, math.inf), "busy_power": ("power", True, math.inf),
    "price_per_hour": ("price_per_hour", True, math.inf), "latency": ("time", True, math.inf),
    "bandwidth": ("bandwidth", False, math.inf),
    "energy_per_byte": ("energy_per_byte", True, math.inf),
    "flops": ("flops", True, math.inf), "bytes": ("bytes", True, math.inf),
    "edge_bytes": ("bytes", True, math.inf),
}

GEN_RUN = """\
[scenario]
name = "extreme"
[hardware]
topology = "ring"
[[hardware.units]]
name = "gpu"
count = 3
peak = {peak!r}
memory_bandwidth = {memory_bandwidth!r}
efficiency = {efficiency!r}
overhead = {overhead!r}
idle_power = {idle_power!r}
busy_power = {busy_power!r}
price_per_hour = {price_per_hour!r}
[hardware.link]
latency = {latency!r}
bandwidth = {bandwidth!r}
energy_per_byte = {energy_per_byte!r}
[workload.generator]
kind = "layered"
tasks = 12
width = 3
flops = {flops!r}
bytes = {bytes!r}
edge_bytes = {edge_bytes!r}
[schedule]
scheduler = "{scheduler}"
network = "{network}"
"""


@st.composite
def inside(draw: st.DrawFn, field: str) -> float:
    kind, zero, top = FIELDS[field]
    m = MAGNITUDES[kind]
    if zero and draw(st.booleans()):
        return 0.0
    lo, hi = math.log10(m.smallest), math.log10(min(m.largest, top))
    return min(max(10.0 ** draw(st.floats(lo, hi)), m.smallest), min(m.largest, top))


EXTREMES = st.sampled_from([5e-324, 1e-300, 1e-20, 1e-13, 1e20, 1e30, 1e100, 1.7e308]) | \
    st.floats(1e-320, 1e308, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), extreme=st.sampled_from([None, *FIELDS]),
       scheduler=st.sampled_from(["heft", "greedy"]), network=st.sampled_from(["fifo", "fair"]))
def test_accepted_iff_within_magnitudes_and_then_the_summary_is_finite(
        data: st.DataObject, extreme: str | None, scheduler: str, network: str) -> None:
    values = {f: data.draw(inside(f), label=f) for f in FIELDS}
    if extreme is not None:
        values[extreme] = data.draw(EXTREMES, label=f"extreme {extreme}")
    kind, _, top = FIELDS[extreme] if extreme else ("time", True, math.inf)
    inside_all = extreme is None or (MAGNITUDES[kind].admits(values[extreme])
                                     and values[extreme] <= top)
    idle = values["flops"] == values["bytes"] == values["overhead"] == 0  # no work at all
    text = GEN_RUN.format(**values, scheduler=scheduler, network=network)
    try:
        scenario = loads(text)[0]
    except ScenarioError as err:
        assert not inside_all or idle, err
        where = "workload" if inside_all else f".{extreme}"  # magnitudes are checked first
        assert err.path.endswith(where), err
        return
    admitted = inside_all and not idle
    assert admitted, f"{extreme} = {values[extreme]} accepted"  # type: ignore[index]
    doc = json.dumps(summary(run(scenario)), allow_nan=False)  # raises on inf or nan
    assert json.loads(doc)["makespan_s"] > 0


def test_a_workload_without_work_is_refused(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    """Speed-up and efficiency divide by the work: 0 made them inf in summary.json."""
    f = tmp_path / "idle.toml"
    f.write_text(edit(GEN, 'duration = "10 s"', "duration = 0"), encoding="utf-8")
    line = one_line(capsys, ["run", str(f), "--out", str(tmp_path / "out")])
    assert line.startswith(f"error: {f}: workload: expected tasks that do some work"), line
    assert not (tmp_path / "out").exists()


def test_every_schema_quantity_and_plain_number_has_a_magnitude() -> None:
    from leptonsim.scenario import schema

    kinds: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "number" or "x-quantity" in node:
                kind = node.get("x-quantity") or node.get("x-magnitude")
                assert kind in MAGNITUDES, node
                kinds.add(kind)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema())
    assert kinds == set(MAGNITUDES)


def test_the_bundled_scenarios_are_far_inside_the_sizes() -> None:
    from leptonsim.scenario import load

    root = Path(__file__).resolve().parent.parent / "scenarios"
    gpt3 = load(root / "gpt3_ptdp.toml")[0]
    assert gpt3.cluster.size * 16 <= SIZES["units"].maximum  # a 16,384-unit step fits
    # 81k tasks, 86k edges with one data-parallel replica simulated for all (dp_mode
    # "auto"; 630k spelled out): far inside the bound the engine's memory per task
    # (docs/reliability.md) sets
    assert gpt3.graph.size < 0.6 * SIZES["tasks"].maximum
    assert gpt3.graph.num_edges < 0.65 * SIZES["edges"].maximum
    assert limits.SIZES is SIZES
