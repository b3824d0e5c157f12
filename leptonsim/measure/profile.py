"""`leptonsim profile`: time ops on this machine's device into an op-time table.

For every op below, every precision the backend's device runs and every size n of a
geometric grid, one row: the op's FLOPs and bytes *as leptonsim counts them* (the
ops package's own cost functions, so a task of the graph looks up exactly the size it
carries) and the median seconds of `repeats` calls (bench.median_seconds).

    kind        what is timed (n x n operands)               keyed by  as in the graph
    *           a GEMM, C = A B (m = n = k = n)               flops     any kind not listed,
                                                                        and whole layers
    dense.bwd   dX = dY W^T, dW = X^T dY, db = sum(dY)        flops     ops.Dense backward
    relu        max(x, 0)                                     bytes     ops.ReLU forward
    add         x + y                                         bytes     ops.Add forward

Memory-bound kinds are keyed by bytes (their FLOPs column is left empty). A GEMM is the
generic "*" curve because most FLOPs of a training step are GEMMs (dense, attention,
convolutions lowered to GEMMs); a kind with its own kernel profile is one more entry
in PROFILED.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..cost.optable import ANY, Row, write_table
from ..files import check_output
from ..ops import Add, Dense, ReLU
from ..ops.base import Cost
from .backends import BACKENDS, INSTALL, Backend, make_backend
from .bench import median_seconds
from .machine import machine_info

WORD_BYTES = {"fp64": 8, "fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2}


@dataclass(frozen=True)
class Profiled:
    """One op the profiler times: the kernel it runs, its operands at size n, and its
    work as leptonsim's op counts it at that size and word size."""

    kind: str                                   # the table's kind column
    kernel: str                                 # the backend's op name
    operands: Callable[[int], tuple[tuple[int, ...], ...]]
    work: Callable[[int, int], Cost]
    axis: str                                   # "flops" or "bytes"


def _gemm(n: int, word: int) -> Cost:
    return Cost(2.0 * n**3, 3.0 * n * n * word)


def _dense_bwd(n: int, word: int) -> Cost:
    layer = Dense(n)
    return (layer.cost((n,), n, "backward_data", word)
            + layer.cost((n,), n, "backward_weights", word))


PROFILED = (
    Profiled(ANY, "gemm", lambda n: ((n, n), (n, n)), _gemm, "flops"),
    Profiled("dense.bwd", "dense.bwd", lambda n: ((n, n), (n, n), (n, n)), _dense_bwd, "flops"),
    Profiled("relu", "relu", lambda n: ((n, n),),
             lambda n, w: ReLU().cost((n,), n, "forward", w), "bytes"),
    Profiled("add", "add", lambda n: ((n, n), (n, n)),
             lambda n, w: Add().cost((n,), n, "forward", w), "bytes"),
)

SIZES_CPU = (32, 64, 128, 256, 512, 1024)
SIZES_GPU = (64, 128, 256, 512, 1024, 2048, 4096, 8192)


def profile(backend: Backend, sizes: Sequence[int], precisions: Sequence[str] | None = None,
            repeats: int = 5, device: str | None = None,
            say: Callable[[str], None] = lambda line: None,
            clock: Callable[[], float] = time.perf_counter) -> list[Row]:
    """The rows of every PROFILED op x precision x size on `backend` (entered already),
    timed by `clock`."""
    rows = []
    for precision in precisions or backend.precisions:
        word = WORD_BYTES[precision]
        for op in PROFILED:
            kernel = backend.op(op.kernel, precision)
            for n in sizes:
                tensors = [backend.tensor(s, precision) for s in op.operands(n)]
                seconds = median_seconds(lambda k=kernel, t=tensors: k(*t),  # type: ignore[misc]
                                         backend.synchronize, repeats, clock=clock)
                work = op.work(n, word)
                gemm = op.kernel == "gemm"
                rows.append(Row(op.kind, device or backend.device, precision,
                                float(work.flops) if op.axis == "flops" else float("nan"),
                                float(work.bytes), max(seconds, 1e-12),
                                *((n, n, n) if gemm else (0, 0, 0))))
                del tensors
            say(f"  {precision} {op.kind}: n={sizes[0]}..{sizes[-1]}")
    return rows


# -- command line ---------------------------------------------------------------------

def add_profile_command(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `profile [--backend B] [--out FILE] ...` on cli.py's subparsers."""
    p = subparsers.add_parser(
        "profile", help="time ops on this machine's device; write an op-time table CSV",
        description="Time GEMMs, a dense backward and memory-bound ops over a grid of sizes "
                    "and every precision the device runs, with PyTorch (CUDA when there is a "
                    f"GPU, else the CPU; {INSTALL}) or NumPy on one core, and write an "
                    "op-time table that [cost] model = \"table\" reads (docs/model.md).")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto (torch), torch, or numpy (default auto)")
    p.add_argument("--out", metavar="FILE", default="profiles/ops.csv",
                   help="table to write (default profiles/ops.csv)")
    p.add_argument("--device", metavar="NAME",
                   help="the device column: a preset name (a100_80gb) or a unit name; default "
                        "the backend's device (cpu_core for numpy)")
    p.add_argument("--sizes", metavar="N,N,...", type=_sizes,
                   help="operand sizes n (n x n), default 32..1024 on a CPU, 64..8192 on a GPU")
    p.add_argument("--precision", metavar="P", action="append", dest="precisions",
                   help="a precision to time (repeatable); default every one the device runs")
    p.add_argument("--repeats", type=_positive, default=5, help="timed calls per size (median)")
    p.set_defaults(func=_profile_command)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(s) for s in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 64,128,256, found {text!r}") from None
    if not sizes or sizes[0] < 1 or sizes[-1] > 1 << 16:
        raise argparse.ArgumentTypeError(f"expected sizes between 1 and 65536, found {text!r}")
    return sizes


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 1000):
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to 1000, found {text!r}")
    return int(text)


def _profile_command(args: argparse.Namespace) -> int:
    from ..errors import ScenarioError

    check_output(args.out, directory=False)  # before minutes of timing
    began = time.perf_counter()

    def say(line: str) -> None:
        print(f"profile {time.perf_counter() - began:5.1f}s {line}", file=sys.stderr, flush=True)

    with make_backend(args.backend) as backend:
        for p in args.precisions or ():
            if p not in backend.precisions:
                raise ScenarioError("--precision", f"a precision {backend.name} runs on "
                                    f"{backend.device} ({', '.join(backend.precisions)})", p,
                                    file="leptonsim profile")
        gpu = backend.name == "torch" and backend.device != "cpu"
        sizes = args.sizes or (SIZES_GPU if gpu else SIZES_CPU)
        say(f"{backend.name} on {backend.device}: {len(PROFILED)} ops, sizes {sizes[0]}.."
            f"{sizes[-1]}, {', '.join(args.precisions or backend.precisions)}")
        rows = profile(backend, sizes, args.precisions, args.repeats, args.device, say)
    m = machine_info()
    path = write_table(rows, args.out, comments=(
        f"leptonsim op-time table, measured by `leptonsim profile --backend {backend.name}`",
        f"machine: {m.get('platform', '?')}; {m.get('cpu', '?')}; date {m.get('date', '?')}",
        "seconds: median wall time of one call, synchronised (docs/model.md)"))
    print(f"wrote {path} ({len(rows)} rows)")
    return 0
