"""Calibration (issue 3, part 4): sane measurements, a profile that round-trips, and a
calibrated cost model that is monotone in FLOPs."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.cost.calibrated import CalibratedCost, Profile, monotone_curve
from leptonsim.errors import ScenarioError
from leptonsim.graph import GraphBuilder
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected
from leptonsim.measure.bench import fit_latency_bandwidth
from leptonsim.measure.calibrate import (
    add_calibrate_command,
    calibrate,
    load_profile,
    write_profile,
)
from tests.helpers.scenarios import TINY

PROFILE = Profile(peak_flops=1e11, memory_bandwidth=2e10, overhead_s=5e-6, link_latency_s=3e-5,
                  link_bandwidth=4e9,
                  efficiency_curve=((1e3, 0.01), (6.5e4, 0.2), (5e5, 0.7), (3.4e7, 1.0)))


@pytest.fixture(scope="module")
def measured() -> Profile:
    return calibrate(progress=False, quick=True)


def test_quick_calibration_is_sane(measured):
    # Rates and times are positive and finite; how fast this machine is under load
    # is what calibration measures, so nothing here bounds it.
    p = measured
    for rate in (p.peak_flops, p.peak_flops_fp64, p.memory_bandwidth, p.link_bandwidth):
        assert 0 < rate < math.inf
    eff = [e for _, e in p.efficiency_curve]
    flops = [f for f, _ in p.efficiency_curve]
    assert all(0 < e <= 1 for e in eff) and eff == sorted(eff) and eff[-1] == 1.0
    assert flops == sorted(flops)
    assert 0 < p.overhead_s < math.inf
    assert 0 < p.link_latency_s < math.inf
    assert p.machine["cores"] and p.machine["numpy"] == np.__version__


def test_profile_round_trips_through_toml(measured, tmp_path):
    p = measured
    path = write_profile(p, tmp_path / "profiles" / "here.toml")
    text = path.read_text()
    assert text.startswith("# leptonsim hardware profile")
    assert "GFLOP/s" in text and "[[efficiency_curve]]" in text
    q = load_profile(path)
    assert q.efficiency_curve == p.efficiency_curve and q.machine == p.machine
    for name in ("peak_flops", "peak_flops_fp64", "memory_bandwidth", "overhead_s",
                 "link_latency_s", "link_bandwidth"):
        # written as "12.3 GFLOP/s": three significant digits
        assert getattr(q, name) == pytest.approx(getattr(p, name), rel=5e-3), name
    assert [(d, n) for d, n, _ in q.gemm] == [(d, n) for d, n, _ in p.gemm]


def test_calibrate_command_writes_the_profile_and_shows_progress(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_calibrate_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["calibrate", "--quick", "--out", str(tmp_path / "p.toml")])
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    assert "[1/2]" in err and "[2/2]" in err and "wrote" in out
    assert load_profile(tmp_path / "p.toml").peak_flops > 1e9


def test_calibrated_cost_has_one_row_per_unit_type_and_follows_the_formula():
    b = GraphBuilder()
    b.task("gemm", flops=6.5e4)
    b.task("stream", flops=1e3, nbytes=1e8)
    b.task("fixed", duration_s=2.0)
    b.task("comm", duration_s=2.0, comm=True)
    graph = b.build()
    units = (ComputeUnit("a", 1.0, 1.0), ComputeUnit("b", 1.0, 1.0, efficiency=0.5))
    cluster = fully_connected(units, LinkSpec(0.0, 1.0))
    t = CalibratedCost(PROFILE).task_times(graph, cluster)
    assert t.shape == (2, 4)
    assert t[0, 0] == pytest.approx(6.5e4 / (1e11 * 0.2) + 5e-6)
    assert t[0, 1] == pytest.approx(1e8 / 2e10 + 5e-6)
    assert t[:, 2].tolist() == [2.0, 4.0] and t[:, 3].tolist() == [2.0, 2.0]


def test_calibrated_time_is_monotone_in_flops_and_efficiency_clamped():
    cost = CalibratedCost(PROFILE)
    flops = np.geomspace(1.0, 1e12, 2000)
    t = cost.seconds(flops, np.zeros_like(flops))
    assert np.all(np.diff(t) >= 0)
    eff = cost.efficiency(flops)
    assert np.all(np.diff(eff) >= 0) and eff[0] == pytest.approx(0.01) and eff[-1] == 1.0


@given(st.lists(st.tuples(st.floats(1.0, 1e12), st.floats(1e-4, 1.0)), min_size=1, max_size=12))
def test_monotone_curve_never_lets_a_larger_op_be_less_efficient_or_faster(points):
    curve = monotone_curve(points)
    f = np.array([p[0] for p in curve])
    e = np.array([p[1] for p in curve])
    assert np.all(np.diff(f) >= 0) and np.all(np.diff(e) >= 0) and np.all((e > 0) & (e <= 1))
    assert np.all(np.diff(f / e) >= -1e-9 * (f / e)[1:])  # time non-decreasing point to point
    assert monotone_curve(curve) == curve  # already monotone: unchanged


def test_latency_bandwidth_fit_recovers_alpha_and_b():
    sizes = [8, 512, 32_000, 1_000_000, 16_000_000]
    alpha, bw = fit_latency_bandwidth(sizes, [2e-5 + n / 5e9 for n in sizes])
    assert alpha == pytest.approx(2e-5, rel=1e-6) and bw == pytest.approx(5e9, rel=1e-6)


def test_profile_makes_a_unit_and_a_link():
    unit = PROFILE.compute_unit("core0")
    assert (unit.peak_flops, unit.memory_bandwidth, unit.overhead_s) == (1e11, 2e10, 5e-6)
    assert PROFILE.link_spec() == LinkSpec(3e-5, 4e9)
    assert dataclasses.replace(PROFILE, machine={"cpu": 'a "quoted" cpu'}).machine["cpu"]


@pytest.mark.parametrize("edit, match", [
    (('peak = "100 GFLOP/s"', 'peak = "100 GB/s"'), r"unit\.peak: expected a compute rate"),
    (('latency = "30 us"\n', ""), r"link\.latency: expected a duration .* found nothing"),
    (("efficiency = 0.2\n", "efficiency = 0.0\n"),
     r"efficiency_curve\[1\]\.efficiency: expected a value > 0"),
    (("efficiency = 0.2\n", "efficiency = 1.5\n"),
     r"efficiency_curve\[1\]\.efficiency: expected an efficiency in \(0, 1\], found 1\.5"),
])
def test_a_broken_profile_names_file_and_key(tmp_path, edit, match):
    path = write_profile(PROFILE, tmp_path / "p.toml")
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1]))
    with pytest.raises(ScenarioError, match=f"p.toml: {match}"):
        load_profile(path)


GEMM = dataclasses.replace(PROFILE, machine={"cpu": "x"}, gemm=(("float32", 8, 1e9),))


@pytest.mark.parametrize("edit, match", [  # a top-level key where a table was
    (lambda t: "unit = 5\n" + t.replace("[unit]", "[unit_x]"), r"unit: expected a table, found 5"),
    (lambda t: "machine = 3\n" + t.replace("[machine]", "[m]"), r"machine: expected a table"),
    (lambda t: "gemm = 'x'\n" + t.replace("[[gemm]]", "[[g]]"),
     r"gemm: expected an array of tables, found 'x'"),
    (lambda t: "efficiency_curve = [1]\n" + t.replace("[[efficiency_curve]]", "[[c]]"),
     r"efficiency_curve\[0\]: expected a table, found 1"),
    (lambda t: t.replace("[[efficiency_curve]]", "[[c]]"),
     r"efficiency_curve: expected at least one \[\[efficiency_curve\]\] point"),
    (lambda t: t.replace("n = 8", 'n = "eight"'), r"gemm\[0\]\.n: expected an integer >= 1"),
    (lambda t: t.replace('dtype = "float32"', "dtype = 32"), r"gemm\[0\]\.dtype: expected a dtype"),
    (lambda t: t.replace("flops = 1000.0", "flops = [1]"),
     r"efficiency_curve\[0\]\.flops: expected a FLOP count"),
])
def test_a_profile_of_wrong_types_is_one_error_with_its_key_path(tmp_path, edit, match):
    path = write_profile(GEMM, tmp_path / "p.toml")
    text = edit(path.read_text())
    assert text != path.read_text()
    path.write_text(text)
    with pytest.raises(ScenarioError, match=f"p.toml: {match}"):
        load_profile(path)


@pytest.mark.parametrize("content, found", [
    (b"\x89PNG\r\n\x1a\n\x00\xff", "codec can't decode byte 0x89"),
    (b"[unit\n", "Expected ']'"),
    (None, "not a regular file"),  # a named pipe: reading it would block
])
def test_a_profile_that_is_not_toml_is_one_line_exit_2(tmp_path, capsys, content, found):
    path = tmp_path / "p.toml"
    if content is None:
        os.mkfifo(path)
    else:
        path.write_bytes(content)
    scenario = tmp_path / "s.toml"
    scenario.write_text(TINY)
    out = tmp_path / "out"
    assert main(["validate", str(scenario), "--profile", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: expected ") and found in err
    assert not out.exists()


_PROFILE = """
[unit]
peak = "1 GFLOP/s"
memory_bandwidth = "1 TB/s"
overhead = "0 s"
[link]
latency = "1 us"
bandwidth = "1 GB/s"
duplex = true
[[efficiency_curve]]
flops = 1e3
efficiency = 0.25
[[efficiency_curve]]
flops = 1e9
efficiency = 0.5
"""


@given(st.floats(1e3, 1e9))
def test_a_scenario_that_names_a_profile_runs_at_its_measured_rates(flops: float) -> None:
    """[cost] model = "calibrated": the profile's rate at the task's size, whatever the
    unit's own peak says (100 GFLOP/s here, 100x the profile's)."""
    import tempfile
    from pathlib import Path

    from leptonsim.result import run
    from leptonsim.scenario import load

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "this.toml").write_text(_PROFILE)
        (Path(tmp) / "s.toml").write_text(f"""
[scenario]
name = "calibrated"
[[hardware.units]]
name = "core"
count = 1
peak = "100 GFLOP/s"
memory_bandwidth = "1 GB/s"
[[workload.tasks]]
name = "t"
flops = {flops!r}
[cost]
model = "calibrated"
profile = "this.toml"
""")
        (s,) = load(Path(tmp) / "s.toml")
        efficiency = float(np.interp(math.log(flops), [math.log(1e3), math.log(1e9)],
                                     [math.log(0.25), math.log(0.5)]))
        assert run(s).metrics.makespan_s == pytest.approx(flops / (1e9 * math.exp(efficiency)), rel=1e-9)


def test_a_mistake_in_the_profile_names_the_profile(tmp_path, capsys):
    (tmp_path / "this.toml").write_text(_PROFILE.replace('peak = "1 GFLOP/s"', 'peak = "fast"'))
    (tmp_path / "s.toml").write_text(TINY + '\n[cost]\nmodel = "calibrated"\nprofile = "this.toml"\n')
    assert main(["check", str(tmp_path / "s.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'this.toml'}: unit.peak: expected") and err.count("\n") == 1
