"""Winograd F(2 x 2, 3 x 3) for convolutions (ops/winograd.py, ops/conv.py) and the
autotuner's choice (`[workload.model] conv_algorithm = "fastest"`, zoo/cnn.py): the
transforms compute the correlation exactly, 16 multiplies per tile stand for 36, the
nonfused form moves exactly its transformed operands more, and the choice is the
cheapest of the algorithms that apply."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import leptonsim as ls
from leptonsim.cost.gpu import GpuCost
from leptonsim.graph import GemmRows
from leptonsim.hardware import ComputeUnit
from leptonsim.ops import Conv2D
from leptonsim.ops import winograd as wg
from leptonsim.ops.base import Cost
from leptonsim.ops.conv import PHASE_INDEX
from leptonsim.zoo.cnn import WINOGRAD_PRECISIONS, resnet50, with_fastest_convs
from tests.helpers.scenarios import one_gpu_model, refused

FLOATS = st.floats(-8, 8, allow_nan=False, width=32)


@given(d=arrays(float, (4, 4), elements=FLOATS), g=arrays(float, (3, 3), elements=FLOATS))
def test_the_transforms_compute_the_3x3_correlation_of_a_tile(d, g):
    """Lavin & Gray's Y = A^T [(G g G^T) . (B^T d B)] A is the 2 x 2 valid correlation."""
    y = wg.AT @ ((wg.G @ g @ wg.G.T) * (wg.BT @ d @ wg.BT.T)) @ wg.AT.T
    direct = np.array([[(d[i:i + 3, j:j + 3] * g).sum() for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(y, direct, rtol=1e-9, atol=1e-9)


@given(h=st.integers(1, 64), w=st.integers(1, 64), c=st.integers(1, 64), f=st.integers(1, 64))
def test_16_multiplies_per_tile_stand_for_36(h, w, c, f):
    direct = h * w * wg.R * wg.R * c * f
    if h % 2 == 0 and w % 2 == 0:
        assert wg.products(h, w, c, f) * 9 == direct * 4  # exactly 2.25x fewer
    assert wg.products(h, w, c, f) * 9 >= direct * 4  # partial tiles pay whole ones


def test_the_transforms_flop_counts():
    assert (wg.INPUT_FLOPS, wg.OUTPUT_FLOPS, wg.FILTER_FLOPS) == (32, 24, 70)


SHAPES = st.tuples(st.integers(1, 16), st.integers(1, 64), st.integers(1, 64),
                   st.integers(1, 8), st.sampled_from([1, 2, 4]))


@given(shape=SHAPES, bias=st.booleans())
def test_fused_keeps_the_bytes_nonfused_adds_its_transformed_operands(shape, bias):
    hw, c, f, batch, word = shape
    conv, x = Conv2D(f, 3, 1, "same", bias), (hw, hw, c)
    t = batch * wg.tiles(hw, hw)
    for phase in PHASE_INDEX:
        implicit = conv.cost(x, batch, phase, word)
        chosen = list(conv.algorithms)
        for algorithm in conv.algorithms_for(phase)[1:]:
            chosen[PHASE_INDEX[phase]] = algorithm
            cost = replace(conv, algorithms=tuple(chosen)).cost(x, batch, phase, word)
            (gemm,) = cost.gemms
            assert gemm.flops == 2 * wg.products(hw, hw, c, f) * batch
            extra = 2 * 16 * (t * (c + f) + c * f) * word if algorithm.endswith("nonfused") else 0
            assert cost.bytes == implicit.bytes + extra
            assert cost.kernels == implicit.kernels + (3 if extra else 0)


def test_only_3x3_stride_1_convolutions_run_winograd():
    assert Conv2D(8, 1).algorithms_for("forward") == ("implicit_gemm",)
    assert Conv2D(8, 3, 2).algorithms_for("forward") == ("implicit_gemm",)
    assert Conv2D(8, 3).algorithms_for("backward_weights") == ("implicit_gemm",
                                                                "winograd_nonfused")
    with pytest.raises(ValueError, match="does not run forward"):
        Conv2D(8, 1, algorithms=("winograd", "implicit_gemm", "implicit_gemm"))
    with pytest.raises(ValueError, match="does not run backward_weights"):
        Conv2D(8, 3, algorithms=("winograd", "winograd", "winograd"))


def _seconds(unit: ComputeUnit, cost_model: GpuCost):
    def seconds(c: Cost) -> float:
        return float(cost_model.work_seconds(np.array([c.flops]), np.array([c.bytes]), unit,
                                             None, GemmRows.of([c.gemms]),
                                             np.array([c.kernels]))[0])
    return seconds


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 128),
       device_precision=st.sampled_from([("v100_16gb", "fp32"), ("v100_16gb", "fp16"),
                                         ("a100_80gb", "fp32"), ("a100_80gb", "tf32")]))
def test_the_choice_is_the_cheapest_applicable_algorithm(batch, device_precision):
    device, precision = device_precision
    unit = ls.cluster(device, 1).cluster.units[0]
    seconds = _seconds(unit, GpuCost(precision))
    word = 2 if precision == "fp16" else 4
    model = resnet50()
    tuned = with_fastest_convs(model, precision, batch, word, seconds)
    for before, after in zip(model.layers, tuned.layers, strict=True):
        if not isinstance(after.op, Conv2D):
            assert after == before
            continue
        for phase, i in PHASE_INDEX.items():
            assert after.op.algorithms[i] in WINOGRAD_PRECISIONS and precision in (
                WINOGRAD_PRECISIONS[after.op.algorithms[i]])
            best = seconds(after.op.cost(after.input_shape, batch, phase, word))
            for algorithm in after.op.algorithms_for(phase):
                if precision in WINOGRAD_PRECISIONS[algorithm]:
                    other = list(after.op.algorithms)
                    other[i] = algorithm
                    alt = replace(after.op, algorithms=tuple(other))
                    assert best <= seconds(alt.cost(after.input_shape, batch, phase, word))


def _step_s(hw: str, precision: str, algorithm: str) -> float:
    scenario = ls.step("resnet50", ls.cluster(hw, 1), batch=64, precision=precision,
                       optimizer="sgd", conv_algorithm=algorithm)
    return ls.run(scenario).metrics.makespan_s


def test_fastest_speeds_up_fp32_and_never_slows_a_step():
    assert _step_s("v100_16gb", "fp32", "fastest") < _step_s("v100_16gb", "fp32", "implicit_gemm")
    assert _step_s("a100_80gb", "tf32", "fastest") == _step_s("a100_80gb", "tf32",
                                                              "implicit_gemm")
    default = ls.run(ls.step("resnet50", ls.cluster("v100_16gb", 1), batch=64,
                             precision="fp32", optimizer="sgd")).metrics.makespan_s
    assert default == _step_s("v100_16gb", "fp32", "implicit_gemm")


SCENARIO = one_gpu_model("v100_16gb", "fp32")


def test_an_unknown_algorithm_is_refused_in_one_line(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]):
    refused(tmp_path, capsys,
            SCENARIO.format(model='name = "resnet50"\nconv_algorithm = "fft"'),
            "workload.model.conv_algorithm", r"expected one of .*'fastest'.*found 'fft'")


def test_a_layer_cannot_choose_its_own_algorithm(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]):
    layers = ('input_shape = [8, 8, 3]\nlayers = [{ op = "conv2d", filters = 4, kernel = 3, '
              'algorithms = ["winograd", "winograd", "implicit_gemm"] }]')
    refused(tmp_path, capsys, SCENARIO.format(model=layers),
            "workload.model.layers[0].algorithms", r"set \[workload.model\] conv_algorithm")
