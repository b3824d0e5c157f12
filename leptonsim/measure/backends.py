"""What `leptonsim profile` times ops on: a small protocol, and its NumPy and PyTorch
backends. A backend makes tensors, runs one op on them, and synchronises; the timing
loop (bench.median_seconds) and the grid (profile.py) are the same for every backend.

PyTorch is an optional extra (`pip install 'leptonsim[profile]'`): it is imported only
when the torch backend is made, and its absence is one line (exit 2), never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..errors import ScenarioError

Tensor = Any


class Backend(Protocol):
    """Used as a context manager: a backend may hold a setting (NumPy's one BLAS
    thread) for the duration of the profile."""

    name: str
    device: str                     # the table's device column, by default
    precisions: tuple[str, ...]     # what this device runs (table precision names)

    def tensor(self, shape: tuple[int, ...], precision: str) -> Tensor:
        """A tensor of standard-normal values at `precision`, on the device."""
        ...

    def op(self, kind: str, precision: str) -> Callable[..., object]:
        """The kernel of op `kind` ("gemm", "dense.bwd", "relu", "add") on tensors."""
        ...

    def synchronize(self) -> None:
        """Wait until the device has finished everything launched."""
        ...

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...


def _generic(kind: str, relu: Callable[[Tensor], Tensor]) -> Callable[..., object]:
    """The ops written once, with the operators NumPy arrays and torch tensors share."""
    kernels: dict[str, Callable[..., object]] = {
        "gemm": lambda a, b: a @ b,
        "dense.bwd": lambda x, w, dy: (dy @ w.T, x.T @ dy, dy.sum(0)),  # dx, dW, db
        "relu": relu,
        "add": lambda a, b: a + b,
    }
    return kernels[kind]


class NumpyBackend(AbstractContextManager["NumpyBackend"]):
    """NumPy on one core (one BLAS thread): the unit `leptonsim calibrate` describes,
    the `cpu_core` preset. float16 has no BLAS GEMM in NumPy; fp32 and fp64 only."""

    name = "numpy"
    device = "cpu_core"
    precisions: tuple[str, ...] = ("fp32", "fp64")
    DTYPES = {"fp32": "float32", "fp64": "float64"}

    def __init__(self, seed: int = 0) -> None:
        import numpy as np
        from threadpoolctl import threadpool_limits

        self._np = np
        self._rng = np.random.default_rng(seed)
        self._limits = threadpool_limits
        self._held: Any = None

    def __enter__(self) -> NumpyBackend:
        self._held = self._limits(1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._held is not None:
            self._held.restore_original_limits()
            self._held = None

    def tensor(self, shape: tuple[int, ...], precision: str) -> Tensor:
        return self._rng.standard_normal(shape).astype(self.DTYPES[precision])

    def op(self, kind: str, precision: str) -> Callable[..., object]:
        np = self._np
        return _generic(kind, lambda x: np.maximum(x, 0))

    def synchronize(self) -> None:
        """NumPy runs synchronously: nothing to wait for."""


class TorchBackend(AbstractContextManager["TorchBackend"]):
    """PyTorch on CUDA when there is a GPU, else on the CPU; tf32 is float32 with
    TF32 tensor-core matmuls allowed (Ampere and later), bf16 where supported."""

    name = "torch"

    def __init__(self, seed: int = 0) -> None:
        import torch

        self._torch = torch
        torch.manual_seed(seed)
        cuda = torch.cuda.is_available()
        self._device = torch.device("cuda" if cuda else "cpu")
        self.device = _slug(torch.cuda.get_device_name(0)) if cuda else "cpu"
        precisions = ["fp32", "fp16"] if cuda else ["fp32", "fp64"]
        if cuda and torch.cuda.get_device_capability(0)[0] >= 8:
            precisions.insert(1, "tf32")
        if (torch.cuda.is_bf16_supported() if cuda else True):
            precisions.append("bf16")
        self.precisions = tuple(precisions)
        self._dtypes = {"fp64": torch.float64, "fp32": torch.float32, "tf32": torch.float32,
                        "fp16": torch.float16, "bf16": torch.bfloat16}

    def tensor(self, shape: tuple[int, ...], precision: str) -> Tensor:
        return self._torch.randn(shape, dtype=self._dtypes[precision], device=self._device)

    def op(self, kind: str, precision: str) -> Callable[..., object]:
        torch = self._torch
        kernel = _generic(kind, torch.relu)
        tf32 = precision == "tf32"

        def run(*tensors: Tensor) -> object:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            with torch.no_grad():
                return kernel(*tensors)
        return run

    def synchronize(self) -> None:
        if self._device.type == "cuda":
            self._torch.cuda.synchronize()

    def __exit__(self, *exc: object) -> None:
        """Nothing held."""


BACKENDS = ("auto", "torch", "numpy")
INSTALL = "pip install 'leptonsim[profile]'"


def make_backend(name: str) -> Backend:
    """The backend `name`; "auto" is torch when it imports, else the error below.
    Without torch, torch and auto are one ScenarioError saying how to install it."""
    if name == "numpy":
        return NumpyBackend()
    try:
        import torch  # noqa: F401
    except ImportError as err:
        raise ScenarioError("", f"PyTorch for --backend {name} ({INSTALL})",
                            f"<{err}>", file="leptonsim profile",
                            hint="or --backend numpy: NumPy on one core") from None
    return TorchBackend()


def _slug(name: str) -> str:
    """'NVIDIA A100-SXM4-80GB' -> 'nvidia_a100_sxm4_80gb' (pass --device to name a preset)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
