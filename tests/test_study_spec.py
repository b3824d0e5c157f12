"""The [sweep] table: grid order, sampling, point ids, and one-line errors."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.errors import ScenarioError
from leptonsim.study import loads_sweep, parse_sweep, points
from leptonsim.study.sampling import lhs_unit, point_id
from tests.helpers.study import GRID, ROOT, study


def test_grid_is_the_cartesian_product_last_parameter_fastest() -> None:
    sweep = loads_sweep(study("[sweep]\n" + GRID))
    assert sweep.spec.mode == "grid" and len(sweep.points) == 6 == len(sweep)
    assert [p.values for p in sweep.points] == [
        (1, "10 GB/s"), (1, "20 GB/s"), (1, "30 GB/s"),
        (2, "10 GB/s"), (2, "20 GB/s"), (2, "30 GB/s")]
    assert [p.index for p in sweep.points] == list(range(6))
    assert len({p.point_id for p in sweep.points}) == 6


def test_ranges_expand_inclusively_and_in_si() -> None:
    spec = parse_sweep({"parameters": {
        "hardware.units[0].count": {"start": 1, "stop": 16},
        "hardware.link.latency": {"start": "1 us", "stop": "3 us", "step": "1 us"},
        "hardware.link.bandwidth": {"min": "1 GB/s", "max": "100 GB/s", "log": True, "num": 3},
    }})
    count, latency, bandwidth = spec.parameters
    assert count.choices == tuple(range(1, 17))
    assert latency.choices == pytest.approx((1e-6, 2e-6, 3e-6))
    assert bandwidth.choices == pytest.approx((1e9, 1e10, 1e11))
    assert len(points(spec)) == 16 * 3 * 3


def test_point_ids_hash_the_overrides_not_the_position() -> None:
    a = point_id({"x": 1, "y": "10 GB/s"})
    assert a == point_id({"y": "10 GB/s", "x": 1}) and len(a) == 12
    assert a != point_id({"x": 2, "y": "10 GB/s"})
    small = loads_sweep(study("[sweep]\n" + GRID))
    bigger = loads_sweep(study("[sweep]\n" + GRID.replace("[1, 2]", "[0.5, 1]")
                               .replace("units[0].count", "units[0].efficiency")))
    assert {p.point_id for p in small.points}.isdisjoint({p.point_id for p in bigger.points})
    again = loads_sweep(study("[sweep]\n" + GRID.replace("[1, 2]", "[2, 1]")))
    assert {p.point_id for p in again.points} == {p.point_id for p in small.points}


def _sampled(mode: str, seed: int, samples: int = 20) -> list[tuple[object, ...]]:
    spec = parse_sweep({"mode": mode, "samples": samples, "seed": seed, "parameters": {
        "hardware.link.bandwidth": {"min": "10 GB/s", "max": "400 GB/s", "log": True},
        "hardware.units[0].efficiency": {"min": 0.2, "max": 1.0},
        "hardware.units[0].count": {"min": 1, "max": 8},
        "schedule.scheduler": ["heft", "greedy"],
    }})
    return [p.values for p in points(spec)]


@pytest.mark.parametrize("mode", ["random", "lhs"])
def test_sampling_is_deterministic_per_seed(mode: str) -> None:
    first = _sampled(mode, 7)
    assert first == _sampled(mode, 7)
    assert first != _sampled(mode, 8)
    for bandwidth, efficiency, count, scheduler in first:
        assert 10e9 <= bandwidth <= 400e9 and 0.2 <= efficiency <= 1.0
        assert isinstance(count, int) and 1 <= count <= 8
        assert scheduler in ("heft", "greedy")
        assert type(bandwidth) is float  # written back as plain numbers


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_lhs_puts_one_point_in_each_stratum_of_each_dimension(n: int, d: int, seed: int) -> None:
    cube = lhs_unit(n, d, np.random.default_rng(seed))
    assert cube.shape == (n, d)
    for j in range(d):
        assert sorted(np.floor(cube[:, j] * n).astype(int)) == list(range(n))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32 - 1), st.floats(1e6, 1e9), st.floats(2, 1e3))
def test_lhs_values_fall_one_per_stratum_of_the_range(n: int, seed: int, low: float,
                                                      ratio: float) -> None:
    high = low * ratio
    spec = parse_sweep({"mode": "lhs", "samples": n, "seed": seed, "parameters": {
        "hardware.link.bandwidth": {"min": low, "max": high, "log": True},
        "hardware.link.latency": {"min": 0.0, "max": high * 1e-15}}})
    pts = points(spec)
    assert len(pts) == n
    for j, to_unit in enumerate((lambda v: math.log(v / low) / math.log(high / low),
                                 lambda v: v / (high * 1e-15))):
        # one per stratum: the k-th smallest value lies in the k-th of n equal strata
        scaled = sorted(to_unit(p.values[j]) * n for p in pts)
        for k, x in enumerate(scaled):
            assert k - 1e-6 <= x <= k + 1 + 1e-6, (k, x)

BAD = [
    ("", "sweep", "expected a [sweep] table"),
    ("[sweep]\nmdoe = 'grid'\n" + GRID, "sweep.mdoe", "did you mean 'mode'?"),
    ("[sweep]\nmode = 'lhc'\n" + GRID, "sweep.mode", "did you mean 'lhs'?"),
    ("[sweep]\nmode = 'lhs'\n" + GRID, "sweep.samples", "found nothing"),
    ("[sweep]\nmode = 'random'\nsamples = 0\n" + GRID, "sweep.samples", "found 0"),
    ("[sweep]\nparameters = {}\n", "sweep.parameters", "found an empty table"),
    ("[sweep.parameters]\n'hardware.link.bandwdth' = [1e9]\n",
     'sweep.parameters."hardware.link.bandwdth"', "did you mean 'hardware.link.bandwidth'?"),
    ("[sweep.parameters]\n'hardware.units.count' = [1]\n",
     'sweep.parameters."hardware.units.count"', "is an array: index it"),
    ("[sweep.parameters]\n'hardware.link.bandwidth' = '10 GB/s'\n",
     'sweep.parameters."hardware.link.bandwidth"', "a non-empty list of values or a range"),
    ("[sweep.parameters]\n'hardware.link.bandwidth' = []\n",
     'sweep.parameters."hardware.link.bandwidth"', "found an empty array"),
    ("[sweep.parameters]\n'hardware.link.bandwidth' = ['10 GB/s', '10 GB']\n",
     'sweep.parameters."hardware.link.bandwidth"[1]', "expected a bandwidth"),
    ("[sweep.parameters]\n'workload.generator.kind' = { min = 1, max = 2 }\n",
     'sweep.parameters."workload.generator.kind"', "is not a number"),
    ("[sweep]\nmode = 'lhs'\nsamples = 4\n[sweep.parameters]\n"
     "'hardware.link.bandwidth' = { min = 1e9, mx = 2e9 }\n",
     'sweep.parameters."hardware.link.bandwidth".mx', "did you mean 'max'?"),
    ("[sweep]\nmode = 'lhs'\nsamples = 4\n[sweep.parameters]\n"
     "'hardware.link.bandwidth' = { min = 2e9, max = 1e9 }\n",
     'sweep.parameters."hardware.link.bandwidth".max', "expected a max >= min"),
    ("[sweep]\nmode = 'lhs'\nsamples = 4\n[sweep.parameters]\n"
     "'hardware.link.latency' = { min = 0, max = '1 ms', log = true }\n",
     'sweep.parameters."hardware.link.latency".min', "log = true"),
    ("[sweep.parameters]\n'hardware.link.bandwidth' = { min = 1e9, max = 2e9 }\n",
     'sweep.parameters."hardware.link.bandwidth".num', "how many grid values"),
    ("[sweep]\nmode = 'random'\nsamples = 3\n[sweep.parameters]\n"
     "'hardware.link.bandwidth' = { min = 1e9, max = 2e9, num = 3 }\n",
     'sweep.parameters."hardware.link.bandwidth".num', "it is for mode = 'grid'"),
    ("[sweep.parameters]\n'hardware.units[0].count' = { start = 1, stop = 4, step = 0 }\n",
     'sweep.parameters."hardware.units[0].count".step', "expected a step > 0"),
    ("[sweep.parameters]\n'hardware.units[0].efficiency' = [0.5, 1.5]\n",
     'sweep.parameters."hardware.units[0].efficiency"[1]', "expected a number in (0, 1]"),
    ("[sweep.parameters]\n'schedule.scheduler' = ['heft', 'hetf']\n",
     'sweep.parameters."schedule.scheduler"[1]', "did you mean 'heft'?"),
    ("[sweep.parameters]\n'hardware.units[3].count' = [1]\n",
     'sweep.parameters."hardware.units[3].count"', "it has 1"),
    ("[sweep]\nmode = 'lhs'\nsamples = 4\n[sweep.parameters]\n"
     "'hardware.units[0].count' = { min = 0, max = 8 }\n",
     'sweep.parameters."hardware.units[0].count".min', "expected an integer >= 1"),
    ("[sweep.parameters]\n'hardware.link' = [{ bandwidth = 1e9 }]\n"
     "'hardware.link.bandwidth' = [1e9]\n",
     'sweep.parameters."hardware.link.bandwidth"', "does not overlap 'hardware.link'"),
    (GRID + "[sweep.labels]\n'hardware.link.bandwith' = 'link speed'\n",
     'sweep.labels."hardware.link.bandwith"', "did you mean 'hardware.link.bandwidth'?"),
    (GRID + "[sweep.labels]\n'hardware.link.bandwidth' = ' '\n",
     'sweep.labels."hardware.link.bandwidth"', "a name of 1 to 40 characters"),
    (GRID + "[sweep]\nlabels = 'units'\n", "sweep.labels", "a table of swept key paths"),
]


@pytest.mark.parametrize("block, path, text", BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_bad_sweep_tables_are_one_scenario_error_line(block: str, path: str, text: str) -> None:
    with pytest.raises(ScenarioError) as info:
        loads_sweep(study(block), file="study.toml")
    line = info.value.line()
    assert "\n" not in line
    assert line.startswith(f"study.toml: {path}: expected "), line
    assert text in line, line


def test_variant_values_are_checked_too_and_named() -> None:
    text = study("[variants.one]\n'hardware.units[0].count' = 1\n[variants.two]\n"
                 "'hardware.topology' = 'two_level'\n'hardware.two_level' = { units_per_node = 2, "
                 "intra = { bandwidth = 1e9 }, inter = { bandwidth = 1e9 } }\n"
                 "[sweep.parameters]\n'hardware.link.bandwidth' = [1e9, 0]\n")
    with pytest.raises(ScenarioError, match=r'"hardware.link.bandwidth"\[1\]: expected a '
                       r"bandwidth > 0.*in variant 'one'"):
        loads_sweep(text)


def test_errors_in_the_base_are_reported_as_usual() -> None:
    with pytest.raises(ScenarioError, match=r"hardware.units\[0\].efficency: .*did you mean"):
        loads_sweep(study("[sweep]\n" + GRID).replace("efficiency", "efficency"))


def test_the_example_in_docs_is_a_valid_sweep() -> None:
    text = (ROOT / "docs" / "studies.md").read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S)
    assert block is not None
    sweep = loads_sweep(block.group(1), "study.toml")
    assert len(sweep) == 16 * 3 and sweep.spec.mode == "grid"
    assert f"{len(sweep)} points (0 already done, {len(sweep)} run)" in text
    for case in BAD[2:4]:
        with pytest.raises(ScenarioError) as info:
            loads_sweep(study(case[0]), "study.toml")
        assert info.value.line() in text


def test_cli_bad_sweep_is_one_line_exit_2_and_no_output(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(study("[sweep]\nmode = 'lhc'\n" + GRID))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "leptonsim", "sweep", str(file),
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith(f"error: {file}: sweep.mode: expected one of 'grid'")
    assert not out.exists()
