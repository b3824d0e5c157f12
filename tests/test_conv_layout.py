"""The convolution layout (`[workload.model] conv_layout`, ops/conv.py, zoo/cnn.py): on
NCHW data a tensor-core convolution pays cuDNN's transposes in and out, exactly
2 x (activation bytes in + out) at the achievable bandwidth and 2 kernel launches per
phase; FP32 and NHWC pay nothing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leptonsim as ls
from leptonsim.ops import Conv2D
from leptonsim.ops.base import PHASES
from leptonsim.zoo.cnn import TENSOR_CORE_PRECISIONS, resnet50, with_layout
from tests.helpers.scenarios import one_gpu_model, refused

CONVS = st.builds(lambda f, k, s, pad, bias: Conv2D(f, k, s, pad, bias),
                  st.integers(1, 64), st.integers(1, 5), st.integers(1, 3),
                  st.sampled_from(["same", "valid"]), st.booleans())


@given(conv=CONVS, hw=st.integers(5, 32), c=st.integers(1, 64), batch=st.integers(1, 64),
       word=st.sampled_from([1, 2, 4, 8]))
def test_each_phase_moves_its_activations_twice_more_in_two_more_kernels(conv, hw, c, batch,
                                                                         word):
    x = (hw, hw, c)
    h, w, f = conv.output_shape(x)
    act = batch * (hw * hw * c + h * w * f) * word  # bytes in + out of every phase
    for phase in ("forward", "backward_data", "backward_weights"):
        plain = conv.cost(x, batch, phase, word)
        moved = replace(conv, transposes=True).cost(x, batch, phase, word)
        assert moved.flops == plain.flops and moved.gemms == plain.gemms
        assert moved.bytes == plain.bytes + 2 * act
        assert moved.kernels == plain.kernels + 2
    for phase in set(PHASES) - {"forward", "backward_data", "backward_weights"}:
        assert replace(conv, transposes=True).cost(x, batch, phase, word) == conv.cost(
            x, batch, phase, word)


def _net(convs: list[tuple[int, int]]) -> dict:
    """A declared chain of (filters, kernel) convolutions, each with its ReLU."""
    layers = []
    for i, (f, k) in enumerate(convs):
        layers += [{"name": f"c{i}", "op": "conv2d", "filters": f, "kernel": k,
                    "padding": "same"}, {"name": f"r{i}", "op": "relu"}]
    return {"input_shape": [12, 12, 3], "layers": layers}


def _step_s(model: dict, precision: str, layout: str, batch: int) -> float:
    hw = ls.cluster("a100_80gb", 1)
    scenario = ls.step(model, hw, batch=batch, precision=precision, optimizer="sgd",
                       conv_layout=layout)
    return ls.run(scenario).metrics.makespan_s


@settings(max_examples=8, deadline=None)
@given(convs=st.lists(st.tuples(st.integers(1, 32), st.sampled_from([1, 3])), min_size=1,
                      max_size=3), batch=st.integers(1, 16),
       precision=st.sampled_from(TENSOR_CORE_PRECISIONS))
def test_nchw_adds_exactly_the_transposes_closed_form_to_one_units_step(convs, batch,
                                                                       precision):
    """One unit runs its tasks back to back, and the GPU model's default overlap rule
    ("sum") adds a task's memory time to its compute: so the step grows by exactly the
    transposes' bytes over B E_B and their launches, for every phase that runs (the
    first convolution computes no input gradient)."""
    unit = ls.cluster("a100_80gb", 1).cluster.units[0]
    word = 2 if precision in ("fp16", "bf16") else 4
    shape, extra = (12, 12, 3), 0.0
    for i, (f, _) in enumerate(convs):
        act = batch * (12 * 12 * shape[2] + 12 * 12 * f) * word
        phases = 3 if i > 0 else 2
        extra += phases * (2 * act / (unit.memory_bandwidth * unit.bandwidth_efficiency)
                           + 2 * unit.overhead_s)
        shape = (12, 12, f)
    model = _net(convs)
    grown = _step_s(model, precision, "nchw", batch) - _step_s(model, precision, "nhwc", batch)
    assert grown == pytest.approx(extra, rel=1e-9)


@pytest.mark.parametrize("precision", ["fp32", "fp64"])
def test_fp32_runs_nchw_natively(precision):
    model = _net([(8, 3), (16, 1)])
    assert _step_s(model, precision, "nchw", 4) == _step_s(model, precision, "nhwc", 4)


def test_nhwc_is_the_default_and_the_model_as_built():
    model = resnet50()
    assert with_layout(model, "nhwc", "fp16") is model
    assert with_layout(model, "nchw", "fp32") is model
    hw = ls.cluster("a100_80gb", 1)
    default = ls.run(ls.step("resnet50", hw, batch=32, precision="tf32")).metrics.makespan_s
    nhwc = ls.run(ls.step("resnet50", hw, batch=32, precision="tf32",
                          conv_layout="nhwc")).metrics.makespan_s
    assert default == nhwc


def test_nchw_transposes_every_convolution_and_nothing_else():
    model = resnet50()
    moved = with_layout(model, "nchw", "tf32")
    for before, after in zip(model.layers, moved.layers, strict=True):
        is_conv = isinstance(before.op, Conv2D)
        assert getattr(after.op, "transposes", False) is is_conv
        assert after.input_grad == before.input_grad and after.name == before.name
    with pytest.raises(ValueError, match="conv layout must be one of nhwc, nchw"):
        with_layout(model, "chwn", "tf32")


SCENARIO = one_gpu_model("a100_80gb", "tf32")


def test_an_unknown_layout_is_refused_in_one_line(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]):
    refused(tmp_path, capsys, SCENARIO.format(model='name = "resnet50"\nconv_layout = "chw"'),
            "workload.model.conv_layout", r"expected one of .*'nchw'.*found 'chw'")


def test_a_layer_cannot_choose_its_own_layout(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]):
    layers = ('input_shape = [8, 8, 3]\n'
              'layers = [{ op = "conv2d", filters = 4, kernel = 3, transposes = true }]')
    refused(tmp_path, capsys, SCENARIO.format(model=layers),
            "workload.model.layers[0].transposes", r"set \[workload.model\] conv_layout")
