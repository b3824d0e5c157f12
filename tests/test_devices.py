"""Device presets by precision: a workload runs at its precision's peak, and a precision
a device has no peak for is one error line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.cost import Roofline
from leptonsim.presets import device_presets
from leptonsim.scenario import loads

GPUS = ["v100", "a100_80gb", "h100_sxm", "h100_pcie", "b200", "mi300x", "l4"]
TEXT = '''
[scenario]
name = "p"
[[hardware.units]]
name = "gpu"
count = 1
preset = "{preset}"
[workload.model]
name = "seed_cnn"
batch = 8
precision = "{precision}"
'''


def _unit(preset: str, precision: str = "fp16", extra: str = ""):  # type: ignore[no-untyped-def]
    text = TEXT.format(preset=preset, precision=precision)
    (s,) = loads(text.replace('preset = "', f'{extra}\npreset = "', 1))
    return s, s.cluster.units[0]


def test_a_peak_given_beside_a_preset_replaces_its_per_precision_peaks() -> None:
    _, unit = _unit("a100_80gb", "fp8", 'peak = "100 TFLOP/s"')  # A100 has no fp8 peak
    assert unit.peaks == () and unit.peak("fp8") == unit.peak("fp16") == 100e12
    _, unit = _unit("a100_80gb", "fp32", 'peak = "100 TFLOP/s"\npeak_fp32 = "10 TFLOP/s"')
    assert unit.peaks == (("fp32", 10e12),)


@given(st.sampled_from(GPUS), st.floats(1e9, 1e15))
def test_a_compute_bound_task_runs_at_its_precisions_peak(preset: str, flops: float) -> None:
    import numpy as np
    _, unit = _unit(preset)
    t = {p: Roofline(p).seconds(np.array([flops]), np.array([0.0]), unit)[0] - unit.overhead_s
         for p in ("fp16", "fp32")}
    assert t["fp32"] / t["fp16"] == pytest.approx(unit.peak("fp16") / unit.peak("fp32"), rel=1e-9)


def test_an_fp32_scenario_is_priced_at_the_fp32_peak() -> None:
    scenario, unit = _unit("a100_80gb", "fp32")
    assert unit.peak("fp32") == 19.5e12 and unit.peak("tf32") == 156e12
    assert scenario.cost.precision == "fp32"  # type: ignore[attr-defined]


def test_memory_is_in_the_vendors_binary_unit() -> None:
    _, unit = _unit("a100_80gb")
    assert unit.memory_bytes == 85_899_345_920


def test_a_variant_preset_states_only_what_differs() -> None:
    d = device_presets()
    assert d["a100_40gb"]["peak_tf32"] == d["a100_80gb"]["peak_tf32"]
    assert d["a100_40gb"]["memory"] != d["a100_80gb"]["memory"]
    assert "like" not in d["a100_40gb"]


def test_a_precision_the_device_lacks_is_one_line(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.toml"
    f.write_text(TEXT.format(preset="a100_80gb", precision="fp8"))
    assert main(["check", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "workload.model.precision" in err[0]
    assert "preset a100_80gb has fp64, fp32, tf32, fp16, bf16, int8" in err[0]
    assert "found 'fp8'" in err[0]
