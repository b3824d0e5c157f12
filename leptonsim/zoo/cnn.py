"""Convolutional networks: the seed's MNIST CNN and torchvision's bottleneck ResNets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from leptonsim.models import LayerStack, Model
from leptonsim.ops import (
    Add,
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool,
    MaxPool2D,
    ReLU,
    SoftmaxCrossEntropy,
)
from leptonsim.ops.base import Cost, Phase, Shape
from leptonsim.ops.conv import PHASE_INDEX, Algorithm

CONV_LAYOUTS = ("nhwc", "nchw")
"""The data layouts a model's convolutions can run on: channels-last (the shapes'
own, Keras' and TensorFlow's default, PyTorch's `channels_last`) or channels-first
(PyTorch's default contiguous format)."""
TENSOR_CORE_PRECISIONS = ("tf32", "fp16", "bf16")
"""The precisions whose convolutions cuDNN runs on tensor cores, in NHWC: FP16 since
Volta, TF32 and BF16 since Ampere (cuDNN Developer Guide, "Tensor Core Operations").
FP32 and FP64 run on the CUDA cores in either layout, so NCHW costs them nothing."""


def with_layout(model: Model, layout: str, precision: str | None) -> Model:
    """`model` with its convolutions on `layout` data at `precision`: on NCHW data at a
    tensor-core precision every Conv2D pays cuDNN's transposes in and out (ops/conv.py);
    otherwise the model as it is."""
    if layout not in CONV_LAYOUTS:
        raise ValueError(f"conv layout must be one of {', '.join(CONV_LAYOUTS)}, got {layout!r}")
    if layout == "nhwc" or precision not in TENSOR_CORE_PRECISIONS:
        return model
    layers = tuple(replace(layer, op=replace(layer.op, transposes=True))
                   if isinstance(layer.op, Conv2D) else layer for layer in model.layers)
    return Model(model.name, model.input_shape, layers)


CONV_ALGORITHMS = ("implicit_gemm", "fastest")
"""How a model's convolutions pick their algorithm: every phase an implicit GEMM, or
per phase the fastest of those that apply, as cuDNN's autotuner times them all and
keeps the fastest (cudnnFindConvolution*Algorithm: PyTorch's `torch.backends.cudnn.
benchmark = True`; TensorFlow's cuDNN autotuning and XLA's convolution algorithm picker)."""
WINOGRAD_PRECISIONS: dict[Algorithm, tuple[str, ...]] = {
    "implicit_gemm": ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8"),
    "winograd": ("fp32",), "winograd_nonfused": ("fp32", "fp16")}
"""The precisions each algorithm runs at. ASSUMPTION (recalled from the cuDNN API
reference's supported-configuration tables of cudnnConvolutionForward, not re-read):
the fused WINOGRAD computes in fp32 on the CUDA cores (FLOAT_CONFIG; its PSEUDO_HALF
form stores fp16 but multiplies at the fp32 rate, never faster than fp16's tensor
cores), WINOGRAD_NONFUSED also in fp16 (HALF_CONFIG, its GEMMs on tensor cores); TF32
and BF16 run neither."""


def with_fastest_convs(model: Model, precision: str | None, batch: int, dtype_bytes: int,
                       seconds: Callable[[Cost], float]) -> Model:
    """`model` with each Conv2D phase on the algorithm that applies (its shape:
    Conv2D.algorithms_for; `precision`: WINOGRAD_PRECISIONS) and costs the fewest
    `seconds` at micro-batch `batch`, as an autotuner keeps the fastest it timed. A tie
    keeps the implicit GEMM."""
    layers = []
    for layer in model.layers:
        op = layer.op
        if isinstance(op, Conv2D) and op.winograd_applies():
            chosen = tuple(_fastest(op, layer.input_shape, phase, precision, batch,
                                    dtype_bytes, seconds) for phase in PHASE_INDEX)
            layer = replace(layer, op=replace(op, algorithms=chosen))
        layers.append(layer)
    return Model(model.name, model.input_shape, tuple(layers))


def _fastest(op: Conv2D, x: Shape, phase: Phase, precision: str | None, batch: int,
             dtype_bytes: int, seconds: Callable[[Cost], float]) -> Algorithm:
    """The algorithm of `phase` of `op` that `seconds` prices lowest (ties: the first,
    the implicit GEMM)."""
    algorithms = [a for a in op.algorithms_for(phase)
                  if precision is None or precision in WINOGRAD_PRECISIONS[a]] or ["implicit_gemm"]
    times = []
    for a in algorithms:
        chosen = list(op.algorithms)
        chosen[PHASE_INDEX[phase]] = a
        times.append(seconds(replace(op, algorithms=tuple(chosen)).cost(x, batch, phase, dtype_bytes)))
    return algorithms[times.index(min(times))]


def seed_cnn() -> Model:
    """The seed's Keras MNIST model (seed section 5), 225,034 parameters.

    Keras' fused activations become their own layers; the final softmax is fused with
    the sparse categorical cross-entropy loss it trains with (one "softmax_xent").
    """
    s = LayerStack("seed_cnn", (28, 28, 1))
    s.add("conv2d", Conv2D(32, 3))
    s.add("conv2d_relu", ReLU())
    s.add("max_pooling2d", MaxPool2D(2))
    s.add("conv2d_1", Conv2D(64, 3))
    s.add("conv2d_1_relu", ReLU())
    s.add("max_pooling2d_1", MaxPool2D(2))
    s.add("flatten", Flatten())
    s.add("dense", Dense(128))
    s.add("dense_relu", ReLU())
    s.add("dense_1", Dense(10))
    s.add("loss", SoftmaxCrossEntropy())
    return s.build()


def _conv_bn(s: LayerStack, name: str, filters: int, kernel: int, stride: int, x: Shape) -> None:
    s.add(f"{name}.conv", Conv2D(filters, kernel, stride, "same", use_bias=False), x)
    s.add(f"{name}.bn", BatchNorm())


def _bottleneck(s: LayerStack, name: str, width: int, stride: int) -> None:
    """torchvision's v1.5 bottleneck: the stride sits on the 3x3 convolution."""
    block_in = s.shape
    _conv_bn(s, f"{name}.1", width, 1, 1, block_in)
    s.add(f"{name}.1.relu", ReLU())
    _conv_bn(s, f"{name}.2", width, 3, stride, s.shape)
    s.add(f"{name}.2.relu", ReLU())
    _conv_bn(s, f"{name}.3", 4 * width, 1, 1, s.shape)
    main = s.shape
    if stride != 1 or block_in[-1] != 4 * width:
        _conv_bn(s, f"{name}.downsample", 4 * width, 1, stride, block_in)
    s.add(f"{name}.add", Add(), main)
    s.add(f"{name}.relu", ReLU())


def resnet(
    blocks: tuple[int, int, int, int], name: str, classes: int = 1000, image: int = 224
) -> Model:
    """A bottleneck ResNet on image x image x 3 inputs, as torchvision builds it.

    Convolutions have no bias; each BatchNorm has 2C trainable parameters (and 2C
    moving statistics, reported as non-trainable).
    """
    s = LayerStack(name, (image, image, 3))
    _conv_bn(s, "stem", 64, 7, 2, s.shape)
    s.add("stem.relu", ReLU())
    s.add("stem.maxpool", MaxPool2D(3, 2, "same"))
    for stage, count in enumerate(blocks):
        for block in range(count):
            stride = 2 if stage > 0 and block == 0 else 1
            _bottleneck(s, f"layer{stage + 1}.{block}", 64 * 2**stage, stride)
    s.add("avgpool", GlobalAvgPool())
    s.add("fc", Dense(classes))
    s.add("loss", SoftmaxCrossEntropy())
    return s.build()


def resnet50() -> Model:
    """ResNet-50: 25,557,032 trainable parameters (torchvision)."""
    return resnet((3, 4, 6, 3), "resnet50")


def resnet101() -> Model:
    """ResNet-101: 44,549,160 trainable parameters (torchvision)."""
    return resnet((3, 4, 23, 3), "resnet101")


def resnet152() -> Model:
    """ResNet-152: 60,192,808 trainable parameters (torchvision)."""
    return resnet((3, 8, 36, 3), "resnet152")
