"""`ModelKernels`: the real NumPy kernels of a model's layers, as executed tasks.

A step graph (leptonsim.parallel.step) records what each compute task does in
`StepGraph.work`: ("F" | "B" | "update", layer indices). `ModelKernels` turns each
such task into a call of the layers' kernels (leptonsim.kernels) at the micro-batch
size, in the dtype of the configuration:

* "F": each layer's forward, on an input prepared untimed (random values of the
  layer's input shape, integer indices for embeddings, class labels for losses);
* "B": each layer's backward, in reverse, on a forward cache of its own (computed
  untimed in `prepare`, as training would have left it); with recompute the
  forward runs first, timed, as recomputation does;
* "update": the optimizer step on the parameters of the task's layers, with
  gradients of their shapes and the optimizer state of a step already taken.

Tasks without work (collective steps, communication stand-ins) run the synthetic
kernels, which do nothing for them: the transfers on their edges carry the bytes.
Parameters are created once per worker and shared by its tasks; everything a kernel
reads is allocated in `prepare`, so the timed call only computes.

A measured step should be a step in the middle of training, not the first one in a
fresh process. So on its first `prepare` a worker builds the kernels of *all* its
tasks (those pinned to its unit), keeps them (with the forward caches they hold)
until it exits, and then runs each once, untimed: the first call of a kernel in a
fresh process pays for page faults on new memory and cold code paths (up to 3x a
later call here). In the worker, glibc's malloc is told to keep freed memory rather
than return it to the OS (fixed mmap and trim thresholds; a caching allocator does
the same), so the warm-up leaves the memory the timed calls need already mapped:
on this VM each page touched for the first time costs about a microsecond.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from ..graph import TaskGraph
from ..kernels import KERNELS, init_params, update
from ..kernels.base import Array, Params
from ..kernels.registry import LOSSES
from ..models import Layer, Model
from ..ops import Add, Dense, Embedding, SigmoidCrossEntropy
from .kernels import Kernel, SyntheticKernels

Work = dict[int, tuple[str, tuple[int, ...]]]
DTYPES: dict[int, type[np.floating[Any]]] = {2: np.float16, 4: np.float32, 8: np.float64}
LEARNING_RATE = 1e-3


def work_key(model: Model, work: tuple[str, tuple[int, ...]], dtype_bytes: int,
             optimizer: str, recompute: bool) -> str:
    """What a task computes, independent of the micro-batch size and of which model
    or layer name it came from: its phase, the dtype, and each layer's op with the
    input shape it sees. Two tasks with one key run the same kernels."""
    phase, layers = work
    how = {"F": "", "B": "+recompute" if recompute else "", "update": f"/{optimizer}"}[phase]
    ops = ";".join(f"{model.layers[i].op!r}@{model.layers[i].input_shape}" for i in layers)
    return f"{phase}{how}|{DTYPES[dtype_bytes].__name__}|{ops}"


class ModelKernels:
    """A KernelSource running `model`'s layers for the tasks in `work`.

    Pickled to every worker: it carries the model, the work table and a few numbers;
    parameters, inputs and caches are built in the worker (`__setstate__` resets them).
    """

    def __init__(self, model: Model, work: Work, microbatch: int, dtype_bytes: int = 4,
                 optimizer: str = "adam", recompute: bool = False, seed: int = 0,
                 warm: bool = True) -> None:
        if dtype_bytes not in DTYPES:
            raise ValueError(f"dtype_bytes must be one of {sorted(DTYPES)}, got {dtype_bytes}")
        self.model, self.work, self.microbatch = model, dict(work), microbatch
        self.dtype_bytes, self.optimizer, self.recompute, self.seed, self.warm = (
            dtype_bytes, optimizer, recompute, seed, warm)
        self._reset()

    def _reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._params: dict[int, Params] = {}
        self._inputs: dict[int, Any] = {}
        self._synthetic = SyntheticKernels()
        self._kernels: dict[int, Kernel] = {}  # alive until the worker exits

    def __getstate__(self) -> dict[str, Any]:
        keep = ("model", "work", "microbatch", "dtype_bytes", "optimizer", "recompute", "seed",
                "warm")
        return {k: self.__dict__[k] for k in keep}

    def __setstate__(self, state: dict[str, Any]) -> None:  # in the worker process
        self.__dict__.update(state)
        self._reset()
        _keep_freed_memory()

    def keys(self, size: int) -> list[str | None]:
        """work_key of each of `size` tasks (None for tasks without work)."""
        return [work_key(self.model, self.work[t], self.dtype_bytes, self.optimizer,
                         self.recompute) if t in self.work else None for t in range(size)]

    @property
    def dtype(self) -> type[np.floating[Any]]:
        return DTYPES[self.dtype_bytes]

    def prepare(self, graph: TaskGraph, task: int) -> Kernel:
        if task not in self.work:
            return self._synthetic.prepare(graph, task)
        if task not in self._kernels:
            unit = int(graph.pin[task])
            mine = [t for t in sorted(self.work) if unit >= 0 and graph.pin[t] == unit
                    and t not in self._kernels] or [task]
            built = {t: self._build(graph, t) for t in mine}
            self._kernels.update(built)
            if self.warm:
                for kernel in built.values():
                    kernel([])
        return self._kernels[task]

    def _build(self, graph: TaskGraph, task: int) -> Kernel:
        phase, layers = self.work[task]
        if phase == "F":
            return partial(_forward, self._chain(layers))
        if phase == "B":
            return self._backward_kernel(layers)
        if phase == "update":
            return self._update_kernel(layers)
        raise ValueError(f"task {graph.names[task]}: unknown work phase {phase!r}")

    # -- what the timed calls read ------------------------------------------------
    def params(self, i: int) -> Params:
        """Layer i's parameters (a tied Dense gets a matrix of its own to multiply by)."""
        if i not in self._params:
            layer = self.model.layers[i]
            p = init_params(layer.op, layer.input_shape, self._rng, self.dtype)
            if isinstance(layer.op, Dense) and layer.op.tied:
                p["kernel"] = self._normal((layer.input_shape[-1], layer.op.units))
            self._params[i] = p
        return self._params[i]

    def layer_input(self, i: int) -> Any:
        """An input for layer i at the micro-batch size, shared by the layer's tasks."""
        if i not in self._inputs:
            self._inputs[i] = self._make_input(self.model.layers[i])
        return self._inputs[i]

    def _make_input(self, layer: Layer) -> Any:
        op, mb = layer.op, self.microbatch
        if isinstance(op, Embedding):
            return self._rng.integers(0, op.vocab, (mb, *layer.input_shape))
        x = self._normal((mb, *layer.input_shape))
        if isinstance(op, Add):
            return tuple([x] + [self._normal(x.shape) for _ in range(op.arity - 1)])
        if isinstance(op, SigmoidCrossEntropy):
            return x, self._rng.integers(0, 2, x.shape)
        if isinstance(op, LOSSES):
            return x, self._rng.integers(0, layer.input_shape[-1], x.shape[:-1])
        return x

    def _normal(self, shape: tuple[int, ...]) -> Array:
        return self._rng.standard_normal(shape).astype(self.dtype)

    def _chain(self, layers: Sequence[int]) -> list[tuple[Layer, Params, Any]]:
        return [(self.model.layers[i], self.params(i), self.layer_input(i)) for i in layers]

    def _backward_kernel(self, layers: Sequence[int]) -> Kernel:
        steps = []
        for layer, params, x in self._chain(layers):
            y, cache = KERNELS[type(layer.op)].forward(layer.op, params, x)
            dy = (np.ones_like(y) if isinstance(layer.op, LOSSES)
                  else self._normal(y.shape).astype(y.dtype, copy=False))
            steps.append((layer, params, x, cache, dy))
        return partial(_backward, steps[::-1], self.recompute)

    def _update_kernel(self, layers: Sequence[int]) -> Kernel:
        names = {i: self.model.layers[i].name for i in layers}
        params = {names[i]: self.params(i) for i in layers if self.params(i)}
        grads = {name: {k: self._normal(w.shape) for k, w in p.items()}
                 for name, p in params.items()}
        state: dict[str, Any] = {}
        update(params, grads, state, self.optimizer, LEARNING_RATE)  # type: ignore[arg-type]
        # (the optimizer state of step 1: the timed call is a steady-state step)
        return partial(_update, params, grads, state, self.optimizer)


class SpinKernels(SyntheticKernels):
    """SyntheticKernels in a worker that keeps freed memory as ModelKernels' do, so a
    transfer microbenchmark reuses receive buffers as a validated step does."""

    def __setstate__(self, state: dict[str, Any]) -> None:  # in the worker process
        super().__setstate__(state)
        _keep_freed_memory()


def _keep_freed_memory() -> None:
    """glibc only: serve blocks below 32 MB from the heap and never trim it, so memory
    freed by one kernel call is reused, already mapped, by the next."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-1, 1 << 30)   # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD (the largest glibc accepts)
    except (OSError, AttributeError):
        pass


def _forward(chain: list[tuple[Layer, Params, Any]], inputs: Sequence[Array]) -> Array:
    y: Array = np.zeros(0)
    for layer, params, x in chain:
        y, _ = KERNELS[type(layer.op)].forward(layer.op, params, x)
    return y


def _backward(steps: list[tuple[Layer, Params, Any, Any, Array]], recompute: bool,
              inputs: Sequence[Array]) -> Array | None:
    dx: Any = None
    for layer, params, x, cache, dy in steps:
        kernel = KERNELS[type(layer.op)]
        if recompute:
            _, cache = kernel.forward(layer.op, params, x)
        dx, _ = kernel.backward(layer.op, params, cache, dy)
    if isinstance(dx, tuple):
        dx = next((d for d in dx if d is not None), None)
    return dx


def _update(params: dict[str, Params], grads: dict[str, Params], state: dict[str, Any],
            optimizer: Any, inputs: Sequence[Array]) -> None:
    update(params, grads, state, optimizer, LEARNING_RATE)
