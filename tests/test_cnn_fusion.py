"""XLA's fusion around BatchNorm (`fused = ["bn_add_relu"]`, zoo/transformer.with_kernels,
ops/norm.py, ops/activation.py, ops/elementwise.py): a ReLU or Add in its producer's
kernel moves exactly the intermediate's write and read less and launches no kernel,
and a ReLU's gradient inside its BatchNorm's backward trades the ReLU's three passes
for one more read in each of the BatchNorm's two."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leptonsim.models import LayerStack
from leptonsim.ops import Add, BatchNorm, Conv2D, ReLU
from leptonsim.zoo.cnn import resnet50
from leptonsim.zoo.transformer import with_kernels
from tests.helpers.scenarios import one_gpu_model, refused

PHASES = ("forward", "backward_data", "backward_weights")


def _totals(model, batch: int, word: int) -> tuple[float, float, int]:
    flops = nbytes = kernels = 0
    for layer in model.layers:
        for phase in PHASES:
            c = layer.cost(batch, phase, word)
            flops, nbytes, kernels = flops + c.flops, nbytes + c.bytes, kernels + c.kernels
    return flops, nbytes, kernels


def _chain(hw: int, c: int, residual: bool):
    """conv -> bn -> relu, and with `residual` -> conv -> bn -> add (of the relu) -> relu."""
    s = LayerStack("chain", (hw, hw, c))
    s.add("conv", Conv2D(c, 3, 1, "same", use_bias=False))
    s.add("bn", BatchNorm())
    s.add("relu", ReLU())
    if residual:
        s.add("conv2", Conv2D(c, 3, 1, "same", use_bias=False))
        s.add("bn2", BatchNorm())
        s.add("add", Add())
        s.add("relu2", ReLU())
    return s.build()


@given(hw=st.integers(1, 16), c=st.integers(1, 32), batch=st.integers(1, 16),
       word=st.sampled_from([2, 4]), residual=st.booleans())
def test_the_fusion_saves_exactly_the_intermediates_passes(hw, c, batch, word, residual):
    """BN -> ReLU: forward the BN's write and the ReLU's read (2 tensors, 1 kernel),
    backward the ReLU's 3 passes less the BN's 2 extra reads (1 tensor, 1 kernel).
    BN -> Add -> ReLU: forward the BN's write, the Add's read of it, its write and the
    ReLU's read (4 tensors, 2 kernels); the ReLU after an Add keeps its backward."""
    model = _chain(hw, c, residual)
    plain = _totals(model, batch, word)
    fused = _totals(with_kernels(model, fused=["bn_add_relu"]), batch, word)
    tensor = batch * hw * hw * c * word
    assert fused[0] == plain[0]  # the same arithmetic, in fewer kernels
    saved_tensors, saved_kernels = (3 + 4, 2 + 2) if residual else (3, 2)
    assert plain[1] - fused[1] == saved_tensors * tensor
    assert plain[2] - fused[2] == saved_kernels


def test_resnet50_fuses_every_relu_and_add():
    """Every ReLU and Add follows a BatchNorm or an Add, so each runs in its producer's
    kernel; only the 4 downsampling blocks' bn3 (followed by the shortcut's
    convolution) writes its output, and each ReLU right after a BatchNorm (2 per block
    and the stem's) has its gradient in that BatchNorm's backward."""
    model = with_kernels(resnet50(), fused=["bn_add_relu"])
    pairs = list(zip(model.layers[:-1], model.layers[1:], strict=True))
    for before, layer in pairs:
        if isinstance(layer.op, (ReLU, Add)):
            assert layer.op.fused and before.op.feeds, layer.name
    bn_relu = [(b, x) for b, x in pairs if isinstance(b.op, BatchNorm) and isinstance(x.op, ReLU)]
    assert len(bn_relu) == 2 * 16 + 1
    assert all(b.op.relu_grad and x.op.grad_fused for b, x in bn_relu)
    grads = [x for x in model.layers if getattr(x.op, "grad_fused", False)
             or getattr(x.op, "relu_grad", False)]
    assert len(grads) == 2 * len(bn_relu)
    assert sum(isinstance(x.op, BatchNorm) and not x.op.feeds for x in model.layers) == 4
    assert with_kernels(resnet50()) == resnet50()


SCENARIO = one_gpu_model("a100_80gb", "fp16")


@pytest.mark.parametrize("op, key", [("batchnorm", "feeds"), ("batchnorm", "relu_grad"),
                                     ("relu", "grad_fused"), ("relu", "fused")])
def test_a_layer_cannot_fuse_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str], op, key):
    layers = ('input_shape = [8, 8, 3]\n'
              f'layers = [{{ op = "{op}", {key} = true }}]')
    refused(tmp_path, capsys, SCENARIO.format(model=layers),
            f"workload.model.layers[0].{key}", r"set \[workload.model\] fused")
