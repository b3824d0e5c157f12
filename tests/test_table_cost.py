"""TableCost (cost/measured.py): interpolation between measured sizes, the range and its
extrapolation, the scenario's [cost] model = "table", and the two writers of the
format: `leptonsim profile` (NumPy, a scripted backend, torch where it imports) and
`leptonsim calibrate --table`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.cost import Roofline
from leptonsim.cost.calibrated import Profile
from leptonsim.cost.measured import TableCost
from leptonsim.cost.optable import Row, parse_table, read_table, table_text, write_table
from leptonsim.errors import TableError
from leptonsim.hardware import ComputeUnit
from leptonsim.measure.backends import NumpyBackend
from leptonsim.measure.calibrate import table_rows
from leptonsim.measure.profile import PROFILED, profile
from leptonsim.result import run
from leptonsim.scenario import load, loads

UNIT = ComputeUnit("gpu", 1e12, 1e11)
REL = 1e-12


def _table(rows: list[Row], file: str = "ops.csv"):
    return parse_table(table_text(rows).splitlines(keepends=True), file)


def _curve(sizes, seconds, kind="*", device="gpu", precision="fp16", axis="flops"):
    nan = float("nan")
    return [Row(kind, device, precision, s if axis == "flops" else nan,
                s if axis == "bytes" else nan, t) for s, t in zip(sizes, seconds, strict=True)]


grids = st.lists(st.floats(1.0, 1e15), min_size=1, max_size=8, unique=True).map(sorted)
times = st.floats(1e-9, 1e3)


@given(grids.flatmap(lambda s: st.tuples(st.just(s), st.lists(times, min_size=len(s),
                                                                max_size=len(s)))))
@example(([999999999999996.0, 999999999999997.0], [0.5, 1.0]))  # one log for both sizes
def test_at_every_measured_size_the_time_is_the_running_maximum_of_the_measured(case):
    sizes, seconds = case
    cost = TableCost(_table(_curve(sizes, seconds)))
    got = cost.seconds(np.array(sizes), np.zeros(len(sizes)), UNIT)
    assert got.tolist() == np.maximum.accumulate(seconds).tolist()  # exactly


@given(st.lists(st.floats(1.0, 1e6), min_size=2, max_size=8, unique=True).map(sorted),
       st.floats(1e-6, 1.0), st.floats(0.0, 1.0),
       st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20))
def test_a_power_law_is_reproduced_exactly_between_the_sizes(sizes, c, p, where):
    """Log-log interpolation is exact on t = c s^p, whatever the grid."""
    cost = TableCost(_table(_curve(sizes, [c * s**p for s in sizes])))
    lo, hi = np.log(sizes[0]), np.log(sizes[-1])
    x = np.exp(lo + np.array(where) * (hi - lo)).clip(sizes[0], sizes[-1])
    assert cost.seconds(x, np.zeros_like(x), UNIT) == pytest.approx(c * x**p, rel=1e-9)


@given(grids, st.lists(times, min_size=8, max_size=8), st.lists(st.floats(0, 1e16), min_size=2,
                                                                  max_size=30))
def test_time_never_falls_as_the_size_grows_inside_and_beyond_the_table(sizes, seconds, xs):
    cost = TableCost(_table(_curve(sizes, seconds[:len(sizes)])), extrapolate=True)
    x = np.sort(np.array(xs))
    t = cost.seconds(x, np.zeros_like(x), UNIT)
    assert (np.diff(t) >= -REL * t[1:]).all()


def test_a_table_of_the_roofline_prices_every_size_inside_as_the_roofline_does():
    """A compute-bound roofline (no overhead) is t = flops / (P E), a power law of slope 1,
    so a table of its times at a few sizes reduces TableCost to Roofline exactly."""
    unit = ComputeUnit("gpu", 3e14, 2e12, efficiency=0.7)
    grid = np.logspace(6, 15, 4)
    times = Roofline().seconds(grid, np.zeros(4), unit)
    cost = TableCost(_table(_curve(grid, times)))
    flops = np.logspace(6, 15, 97)
    assert cost.seconds(flops, np.zeros(97), unit) == pytest.approx(
        Roofline().seconds(flops, np.zeros(97), unit), rel=1e-12)


def test_outside_the_range_is_an_error_unless_extrapolation_is_asked_for():
    table = _table(_curve([1e6, 1e9], [1e-5, 1e-3]))
    with pytest.raises(TableError) as err:
        TableCost(table).seconds(np.array([1e6, 2e9]), np.zeros(2), UNIT, ["dense"] * 2)
    assert err.value.line() == (
        "ops.csv: kind 'dense' on device 'gpu' (fp16, by the '*' rows): expected flops within "
        "the measured 1e+06..1e+09, found a task of 2e+09 flops ([cost] extrapolate = true "
        "extends the table: docs/model.md)")
    t = TableCost(table, extrapolate=True).seconds(np.array([0.0, 1e3, 2e9, 1e12]), np.zeros(4),
                                                   UNIT)
    # below: the smallest size's time; above: the largest size's rate (roofline tail)
    assert t.tolist() == pytest.approx([1e-5, 1e-5, 2e-3, 1.0], rel=REL)


def test_a_kind_uses_its_own_rows_then_the_star_rows_and_bytes_for_memory_bound_kinds():
    table = _table(_curve([1e6, 1e9], [1e-5, 1e-3]) + _curve([1e6, 1e9], [2e-5, 2e-3],
                                                                kind="dense")
                   + _curve([1e3, 1e6], [1e-6, 1e-4], kind="relu", axis="bytes"))
    cost = TableCost(table)
    t = cost.seconds(np.array([1e9, 1e9, 0.0]), np.array([0.0, 0.0, 1e6]), UNIT,
                     ["conv2d", "dense", "relu"])
    assert t.tolist() == pytest.approx([1e-3, 2e-3, 1e-4], rel=REL)
    assert cost.seconds(np.array([1e9]), np.zeros(1), UNIT).tolist() == pytest.approx([1e-3])
    only_relu = TableCost(_table(_curve([1e3], [1e-6], kind="relu", axis="bytes")))
    with pytest.raises(TableError, match=r"kind 'dense': expected rows for it, or '\*' rows"):
        only_relu.seconds(np.ones(1), np.ones(1), UNIT, ["dense"])


def test_units_are_matched_by_the_mapping_then_their_name_then_star_and_precision_checked():
    table = _table(_curve([1.0], [1.0], device="a100_80gb") + _curve([1.0], [2.0], device="*")
                   + _curve([1.0], [3.0], device="v100", precision="fp32"))
    cost = TableCost(table, precision="fp16", devices={"gpu0": "a100_80gb"})
    assert cost.device(ComputeUnit("gpu0", 1, 1)) == "a100_80gb"
    assert cost.device(ComputeUnit("other", 1, 1)) == "*"
    with pytest.raises(TableError, match="rows of precision fp16 for device 'v100'"):
        cost.seconds(np.ones(1), np.ones(1), ComputeUnit("v100", 1, 1))
    assert TableCost(table).seconds(np.ones(1), np.ones(1), ComputeUnit("v100", 1, 1)).tolist() == [3.0]
    no_star = TableCost(_table(_curve([1.0], [1.0], device="a100_80gb")))
    with pytest.raises(TableError, match="rows for unit 'cpu'"):
        no_star.seconds(np.ones(1), np.ones(1), ComputeUnit("cpu", 1, 1))


# -- the scenario's [cost] model = "table" ------------------------------------------------

SCENARIO = """
[scenario]
name = "table"
[[hardware.units]]
name = "gpu"
count = 2
preset = "a100_80gb"
[[hardware.units]]
name = "cpu"
peak = "1 TFLOP/s"
memory_bandwidth = "10 GB/s"
[hardware.link]
latency = "1 us"
bandwidth = "10 GB/s"
[workload.generator]
kind = "independent"
tasks = 6
flops = "1 GFLOP"
[cost]
model = "table"
table = "tables/ops.csv"
"""


def _write(tmp_path: Path, rows: list[Row], text: str = SCENARIO) -> Path:
    write_table(rows, tmp_path / "tables" / "ops.csv")
    (tmp_path / "s.toml").write_text(text)
    return tmp_path / "s.toml"


def test_a_scenario_prices_its_tasks_by_the_table_it_names_relative_to_itself(tmp_path):
    rows = (_curve([1e6, 1e12], [1e-5, 1e-2], device="a100_80gb", precision="fp32")
            + _curve([1e6, 1e12], [1e-4, 1e-1], device="cpu", precision="fp32"))
    (s,) = load(_write(tmp_path, rows))
    assert isinstance(s.cost, TableCost)
    times = s.cost.task_times(s.graph, s.cluster)
    # 1 GFLOP: log-log between 1e6 and 1e12 flops, halfway in log size
    assert times[:, 0].tolist() == pytest.approx([1e-5 * 1e3**0.5, 1e-4 * 1e3**0.5], rel=1e-9)
    result = run(s)
    assert result.metrics.total_work_s == pytest.approx(float(times.min(axis=0).sum()), rel=1e-12)


def test_a_unit_without_rows_is_an_error_naming_it(tmp_path):
    path = _write(tmp_path, _curve([1e6, 1e12], [1e-5, 1e-2], device="a100_80gb", precision="fp32"))
    with pytest.raises(Exception) as err:
        load(path)
    assert err.value.line() == (
        f"{path}: hardware.units[1]: expected a unit {tmp_path / 'tables' / 'ops.csv'} has rows "
        "for (device 'cpu', or '*'), found unit 'cpu' (the table's devices: a100_80gb)")


def test_table_keys_need_model_table_and_model_table_needs_a_table():
    text = SCENARIO.replace('model = "table"\ntable = "tables/ops.csv"', 'table = "x.csv"')
    with pytest.raises(Exception, match="cost.table: expected no table key beside model"):
        loads(text)
    with pytest.raises(Exception, match="cost.table: expected the path of an op-time table"):
        loads(SCENARIO.replace('table = "tables/ops.csv"', ""))


def test_a_task_outside_the_table_is_refused_at_check_and_priced_when_extrapolating(tmp_path):
    rows = _curve([1e12, 1e13], [1e-2, 1e-1], device="*", precision="fp32")
    path = _write(tmp_path, rows)
    assert main(["check", str(path)]) == 2
    (s,) = load(_write(tmp_path, rows, SCENARIO + "extrapolate = true\n"))
    assert s.cost.task_times(s.graph, s.cluster)[:, 0].tolist() == [1e-2, 1e-2]


# -- the writers: leptonsim profile and leptonsim calibrate --table -------------------------

class Scripted:
    """A backend whose op of operand size n takes exactly `cost(kind, n)` seconds on its
    own clock: the profile loop's output is then known exactly."""

    name, device, precisions = "scripted", "gpu", ("fp16", "fp32")

    def __init__(self) -> None:
        self.now = 0.0

    def tensor(self, shape, precision):
        return np.zeros(shape[:1])

    def op(self, kind, precision):
        def run(*tensors):
            self.now += self.time(kind, precision, len(tensors[0]))
        return run

    @staticmethod
    def time(kind: str, precision: str, n: int) -> float:
        return (1e-6 + n**3 * 1e-12) * (len(kind) + (precision == "fp32"))

    def synchronize(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def test_the_profile_loop_writes_what_each_op_took_and_the_table_prices_it_back():
    backend = Scripted()
    sizes = (8, 16, 64)
    rows = profile(backend, sizes, repeats=3, clock=lambda: backend.now)
    assert len(rows) == len(PROFILED) * len(sizes) * 2
    cost = TableCost(_table(rows), precision="fp32")
    for op in PROFILED:
        for n in sizes:
            work = op.work(n, 4)
            got = cost.seconds(np.array([work.flops]), np.array([work.bytes]), UNIT,
                               ["dense" if op.kind == "*" else op.kind])
            assert got.tolist() == pytest.approx([Scripted.time(op.kernel, "fp32", n)], rel=REL)


def test_profile_with_numpy_writes_a_table_the_cost_model_reads(tmp_path, capsys):
    out = tmp_path / "ops.csv"
    assert main(["profile", "--backend", "numpy", "--sizes", "8,16,32", "--repeats", "1",
                 "--out", str(out)]) == 0
    table = read_table(out)
    assert table.devices == ("cpu_core",) and table.precisions("cpu_core") == ("fp64", "fp32")
    assert {k for _, _, k in table.curves} == {op.kind for op in PROFILED}
    cost = TableCost(table, precision="fp32")
    t = cost.seconds(np.array([2.0 * 16**3]), np.zeros(1), ComputeUnit("cpu_core", 1, 1))
    assert t[0] > 0


def test_profile_without_torch_says_how_to_install_it_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    assert main(["profile", "--out", str(tmp_path / "ops.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'leptonsim[profile]'" in err
    assert "--backend numpy" in err and not (tmp_path / "ops.csv").exists()


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="the torch backend runs wherever torch is installed (an optional extra)")
def test_the_torch_backend_profiles_whatever_device_is_present():
    from leptonsim.measure.backends import TorchBackend

    with TorchBackend() as backend:
        rows = profile(backend, (8, 16), repeats=1)
    table = _table(rows)
    assert set(table.precisions(backend.device)) == set(backend.precisions)
    assert all((c.seconds > 0).all() for c in table.curves.values())


def test_numpy_backend_holds_one_blas_thread_only_while_entered():
    from threadpoolctl import threadpool_info

    before = [p["num_threads"] for p in threadpool_info()]
    with NumpyBackend() as backend:
        assert {p["num_threads"] for p in threadpool_info()} == {1}
        assert backend.op("gemm", "fp32")(np.eye(2), np.eye(2)).tolist() == np.eye(2).tolist()
    assert [p["num_threads"] for p in threadpool_info()] == before


PROFILE = Profile(1e10, 1e10, 1e-6, 1e-5, 1e9, ((2e3, 0.5), (2e6, 1.0)),
                  gemm=(("float32", 8, 2e9), ("float32", 16, 1e11), ("float32", 64, 8e9),
                        ("float64", 8, 1e9)))
CORE = ComputeUnit("cpu_core", 1, 1)


def _gemm_seconds(profile: Profile, cost: TableCost) -> tuple[np.ndarray, np.ndarray]:
    """(TableCost's time, the measured 2 n^3 / rate) of each float32 GEMM of the profile."""
    ladder = [(n, r) for dtype, n, r in profile.gemm if dtype == "float32"]
    flops = np.array([2.0 * n**3 for n, _ in ladder])
    measured = np.array([2.0 * n**3 / r for n, r in ladder])
    return cost.seconds(flops, np.zeros(len(ladder)), CORE, ["dense"] * len(ladder)), measured


def test_calibrate_table_writes_the_profiles_gemm_ladder(tmp_path, monkeypatch):
    """`calibrate --table`: the table's "*" rows are the ladder's times (a dip in time,
    n = 16 here, is raised to the running maximum when priced)."""
    import leptonsim.measure.calibrate as calibrate

    monkeypatch.setattr(calibrate, "calibrate", lambda progress, quick: PROFILE)
    table = tmp_path / "ops.csv"
    assert main(["calibrate", "--out", str(tmp_path / "p.toml"), "--table", str(table)]) == 0
    got, measured = _gemm_seconds(PROFILE, TableCost(read_table(table), precision="fp32"))
    assert measured[1] < measured[0]
    assert got.tolist() == np.maximum.accumulate(measured).tolist()


def test_the_calibration_closes_the_loop():
    """Calibrate this machine (quick), write the table, read it: TableCost prices a task
    of each calibrated GEMM size at the time measured for it (monotone)."""
    from leptonsim.measure.calibrate import calibrate

    profile_ = calibrate(progress=False, quick=True)
    rows = table_rows(profile_)
    got, measured = _gemm_seconds(profile_, TableCost(_table(rows), precision="fp32"))
    assert got.tolist() == np.maximum.accumulate(measured).tolist()


def test_a_bad_table_named_by_a_variant_is_still_named_by_its_own_file(tmp_path, capsys):
    """The table's error keeps its file, row and column through the variant stage (which
    relocates scenario errors) and the scenario file's naming."""
    path = _write(tmp_path, _curve([1e6, 1e12], [1e-5, 1e-2], device="*", precision="fp32"),
                  SCENARIO + '[variants.bad]\n"cost.table" = "bad.csv"\n'
                  '[variants.good]\n"cost.extrapolate" = true\n')
    (tmp_path / "bad.csv").write_text("kind,device,precision,flops,seconds\n*,*,fp32,1e9,-1\n")
    assert main(["check", str(path)]) == 0  # 'good' builds; 'bad' is skipped, named
    err = capsys.readouterr().err
    assert err == (f"check: skipped table [bad]: {tmp_path / 'bad.csv'}: row 2, column seconds: "
                   "expected a time > 0 (between 1e-12 s and 1e+08 s), found '-1' "
                   "(in variant 'bad')\n")


def test_profile_refuses_a_precision_the_device_does_not_run(tmp_path, capsys):
    out = tmp_path / "ops.csv"
    assert main(["profile", "--backend", "numpy", "--precision", "fp16", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "error: leptonsim profile: --precision: expected a precision numpy runs on cpu_core "
        "(fp32, fp64), found 'fp16'\n")
    assert not out.exists()
