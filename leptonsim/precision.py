"""The seed's third formula made concrete: E_t + lambda E_r per numeric precision, beside speed.

The same float64-initialised parameters and inputs, cast to float16, float32 and
float64, go through the NumPy kernels, which compute in their inputs' dtype. Against
the float64 run as reference:
- E_r (inference error): normwise relative error ||p - p64|| / ||p64|| of the softmax
  probabilities over the whole batch (batch x classes, x positions for gpt_block);
- E_t (training error): normwise relative error of one training step's gradients,
  all parameters joined into one vector, ||g - g64|| / ||g64||.
Norms are taken in float64. The float64 row is 0 by construction: it is the
reference (its own error against exact arithmetic is ~1e-16 and not measured).
Time: median wall time per batch of the forward pass (inference) and of forward plus
backward (a training step without the update), the precisions measured in rotation
in one run, with `threads` BLAS threads. NumPy float16 has no BLAS: its matmuls run
in NumPy's own loops, so on most CPUs float16 is slower, not faster.
"""

from __future__ import annotations

import argparse
import csv
import math
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from threadpoolctl import threadpool_limits

from leptonsim.errors import ScenarioError
from leptonsim.export import atomic_write
from leptonsim.files import check_output, publish
from leptonsim.formulas import seed_objective, seed_objective_argmin
from leptonsim.kernels import (
    Array,
    ModelParams,
    Network,
    init_model_params,
    network,
    run_backward,
    run_forward,
)
from leptonsim.kernels.blocks import gpt_block
from leptonsim.kernels.norms import grad_arrays, normwise_error
from leptonsim.limits import SIZES
from leptonsim.models import Layer, Model
from leptonsim.ops import Softmax
from leptonsim.progress import PROGRESS, Progress
from leptonsim.zoo import seed_cnn

DTYPES = ("float16", "float32", "float64")
LAMBDAS = (0.1, 0.5, 1.0)
MODELS = ("seed_cnn", "gpt_block")


@dataclass(frozen=True)
class Workload:
    name: str
    train: Network   # ends in the loss
    infer: Network   # the same layers with softmax in place of the loss
    params: ModelParams  # float64
    x: Array             # float64
    labels: Array


@dataclass(frozen=True)
class PrecisionRow:
    dtype: str
    training_error: float   # E_t
    inference_error: float  # E_r
    infer_s: float          # median forward time per batch
    train_s: float          # median forward + backward time per batch

    def objective(self, lam: float) -> float:
        """E_t + lambda E_r (formulas.seed_objective); inf if an error is not finite."""
        if not (math.isfinite(self.training_error) and math.isfinite(self.inference_error)):
            return math.inf
        return seed_objective(self.training_error, self.inference_error, lam)


@dataclass(frozen=True)
class PrecisionReport:
    model: str
    batch: int
    repeats: int
    lam: float
    threads: int
    machine: str
    rows: tuple[PrecisionRow, ...]

    @property
    def lambdas(self) -> tuple[float, ...]:
        return tuple(sorted({*LAMBDAS, self.lam}))

    def tradeoff(self, row: PrecisionRow) -> float:
        """Training time x (1 + objective): time, penalised by the relative error."""
        return row.train_s * (1.0 + row.objective(self.lam))

    def best_objective(self) -> str:
        """formulas.seed_objective_argmin over the precisions with finite errors."""
        options = {r.dtype: (r.training_error, r.inference_error) for r in self.rows
                   if math.isfinite(r.objective(self.lam))}
        return seed_objective_argmin(options, self.lam)

    def best_tradeoff(self) -> str:
        return min(sorted(self.rows, key=lambda r: r.dtype), key=self.tradeoff).dtype


def workload(model: str = "seed_cnn", batch: int = 64, seed: int = 0) -> Workload:
    """The model, float64 parameters and a seeded batch (MNIST-like pixels in [0, 1) for
    seed_cnn, standard-normal states for gpt_block), labels uniform over the classes."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    rng = np.random.default_rng(seed)
    train = network(seed_cnn()) if model == "seed_cnn" else gpt_block(16, 64, 4, vocab=32)
    params = init_model_params(train.model, rng, np.float64)
    shape, classes = train.model.input_shape, train.model.layers[-1].input_shape[-1]
    x = rng.random((batch, *shape)) if model == "seed_cnn" else rng.standard_normal((batch, *shape))
    labels = rng.integers(0, classes, (batch, *train.model.layers[-1].input_shape[:-1]))
    return Workload(model, train, _inference(train), params, x, labels)


def _inference(net: Network) -> Network:
    """`net` with its loss layer replaced by a softmax over the same logits."""
    *body, loss = net.model.layers
    logits = net.sources[-1][0]
    layers = (*body, Layer("softmax", Softmax(), loss.input_shape))
    sources = {layer.name: reads for layer, reads in zip(body, net.sources[:-1], strict=True)}
    sources["softmax"] = (logits,)
    return network(Model(net.model.name + "_infer", net.model.input_shape, layers), sources)


def _cast(work: Workload, dtype: str) -> tuple[ModelParams, Array]:
    params = {layer: {n: a.astype(dtype) for n, a in p.items()} for layer, p in work.params.items()}
    return params, work.x.astype(dtype)


def _infer(work: Workload, params: ModelParams, x: Array) -> Array:
    return run_forward(work.infer, params, x).output


def _train(work: Workload, params: ModelParams, x: Array) -> ModelParams:
    return run_backward(work.train, params, run_forward(work.train, params, x, work.labels))[1]


def measure_errors(work: Workload, dtype: str) -> tuple[float, float]:
    """(E_t, E_r) of `dtype` against float64 runs of the same workload."""
    ref_params, ref_x = _cast(work, "float64")
    params, x = _cast(work, dtype)
    e_r = normwise_error(_infer(work, params, x), _infer(work, ref_params, ref_x))
    got, ref = _train(work, params, x), _train(work, ref_params, ref_x)
    e_t = normwise_error(grad_arrays(got, work.params), grad_arrays(ref, work.params))
    return e_t, e_r


def measure_times(work: Workload, dtypes: Sequence[str], repeats: int) -> dict[str, tuple[float, float]]:
    """Per dtype, median (inference, training) seconds per batch; dtypes run in rotation."""
    cast = {d: _cast(work, d) for d in dtypes}
    samples: dict[str, tuple[list[float], list[float]]] = {d: ([], []) for d in dtypes}
    for r in range(repeats + 1):  # round 0 warms up and is dropped
        for d in (*dtypes[r % len(dtypes):], *dtypes[: r % len(dtypes)]):
            t0 = time.perf_counter()
            _infer(work, *cast[d])
            t1 = time.perf_counter()
            _train(work, *cast[d])
            t2 = time.perf_counter()
            if r:
                samples[d][0].append(t1 - t0)
                samples[d][1].append(t2 - t1)
    return {d: (statistics.median(i), statistics.median(t)) for d, (i, t) in samples.items()}


def measure(model: str = "seed_cnn", batch: int = 64, repeats: int = 5, lam: float = 0.5,
            threads: int = 1, seed: int = 0, dtypes: Sequence[str] = DTYPES,
            progress: Progress | None = None) -> PrecisionReport:
    """Errors and times of every precision in `dtypes` on one workload; `progress`
    reports each measurement on stderr."""
    progress = progress or Progress("never")
    if batch < 1 or repeats < 1 or threads < 1:
        raise ValueError("batch, repeats and threads must be >= 1")
    if batch > SIZES["precision.batch"].maximum:  # before anything is allocated
        bound = SIZES["precision.batch"]
        raise ScenarioError("--batch", f"at most {bound.maximum} {bound.noun}", batch,
                            file="command line", hint=bound.why)
    seed_objective(0.0, 0.0, lam)  # checks lam
    work = workload(model, batch, seed)
    with threadpool_limits(threads):
        errors = {}
        for d in dtypes:
            with progress.phase("measuring errors", d):
                errors[d] = measure_errors(work, d)
        with progress.phase("timing", f"{', '.join(dtypes)} x {repeats} runs"):
            times = measure_times(work, dtypes, repeats)
    rows = tuple(PrecisionRow(d, *errors[d], *times[d]) for d in dtypes)
    machine = f"{platform.processor() or platform.machine()}, {platform.system()}, NumPy {np.__version__}"
    return PrecisionReport(model, batch, repeats, lam, threads, machine, rows)


# --- output: table, CSV, plot, command ------------------------------------------------


def table_rows(report: PrecisionReport) -> list[dict[str, str]]:
    """One dict per precision, keys the CSV header."""
    base = report.rows[-1].train_s if report.rows[-1].dtype == "float64" else math.nan
    out = []
    for r in report.rows:
        row = {"dtype": r.dtype, "training_error": f"{r.training_error:.3e}",
               "inference_error": f"{r.inference_error:.3e}"}
        row |= {f"objective_lam{lam:g}": f"{r.objective(lam):.3e}" for lam in report.lambdas}
        row |= {"infer_ms": f"{r.infer_s * 1e3:.2f}", "train_ms": f"{r.train_s * 1e3:.2f}",
                "train_speedup_vs_float64": f"{base / r.train_s:.2f}",
                "tradeoff_ms": f"{report.tradeoff(r) * 1e3:.2f}"}
        out.append(row)
    return out


def format_report(report: PrecisionReport) -> str:
    rows = table_rows(report)
    header = ["precision", "E_t", "E_r", *(f"E_t+{lam:g}E_r" for lam in report.lambdas),
              "infer ms", "train ms", "speed-up", "t(1+obj) ms"]
    cells = [header, *([*r.values()] for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["  ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                             strict=True))])
             for row in cells]
    return "\n".join([
        f"{report.model}, batch {report.batch}, median of {report.repeats} runs, {report.threads} BLAS "
        f"thread(s); {report.machine}",
        *lines,
        "E_t: training-step gradients, E_r: softmax outputs, both ||y - y64|| / ||y64||; speed-up: "
        "float64 train time / train time; obj uses lambda = " f"{report.lam:g}.",
        f"argmin E_t + {report.lam:g} E_r: {report.best_objective()} (float64 is the reference, so "
        "its error is 0 by construction)",
        f"argmin train time x (1 + E_t + {report.lam:g} E_r): {report.best_tradeoff()}",
    ])


def write_csv(report: PrecisionReport, path: str | Path) -> Path:
    rows = table_rows(report)

    def writer(f: IO[Any]) -> None:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, writer)


def plot(report: PrecisionReport, path: str | Path) -> Path:
    """Objective against training and inference time per batch, one point per precision."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    from leptonsim.figure_style import save_figure, series_colour

    fig = Figure(figsize=(10, 4.5), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    objective = [r.objective(report.lam) for r in report.rows]
    for ax, attr, what in ((axes[0], "train_s", "training step (fwd + bwd)"),
                           (axes[1], "infer_s", "inference (fwd)")):
        ms = [getattr(r, attr) * 1e3 for r in report.rows]
        ax.scatter(ms, objective, s=40, color=[series_colour(i) for i in range(len(ms))])
        for r, x, y in zip(report.rows, ms, objective, strict=True):
            ax.annotate(r.dtype, (x, y), textcoords="offset points", xytext=(6, 4))
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.margins(x=0.25)
        ax.set_xlabel(f"{what} time per batch of {report.batch} (ms, median)")
        ax.grid(alpha=0.3, which="both")
    finite = [o for o in objective if math.isfinite(o)]
    axes[0].set_yscale("symlog", linthresh=1e-9)
    axes[0].set_ylim(-3e-10, max([*finite, 1e-8]) * 30)  # a margin below float64's 0
    axes[0].set_ylabel(f"E_t + {report.lam:g} E_r (relative error vs float64)")
    fig.suptitle(f"{report.model}: error objective against speed per precision (lower left is better)")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path)


def add_precision_command(subparsers: Any) -> None:
    """Register `precision [--model M] [--batch N] [--lam L] [--repeats R] [--out DIR]`."""
    c = subparsers.add_parser(
        "precision", help="E_t + lambda E_r beside speed for float16, float32, float64",
        description="Run a model's kernels in float16, float32 and float64 from the same "
                    "float64 parameters; measure gradient (E_t) and output (E_r) errors against "
                    "float64 and the time per batch; print the table and write precision.csv "
                    "and precision.png.")
    c.add_argument("--model", choices=MODELS, default="seed_cnn", help="workload (default seed_cnn)")
    c.add_argument("--batch", type=_positive, default=64, help="batch size (default 64)")
    c.add_argument("--lam", type=_weight, default=0.5, help="lambda of E_t + lambda E_r (default 0.5)")
    c.add_argument("--repeats", type=_positive, default=5, help="timed runs per precision (default 5)")
    c.add_argument("--threads", type=_positive, default=1, help="BLAS threads (default 1)")
    c.add_argument("--out", metavar="DIR", default="out/precision", help="output directory")
    c.add_argument("--progress", choices=PROGRESS, default="auto",
                   help="each measurement and its time on stderr: auto (default) = when "
                        "stderr is a terminal")
    c.set_defaults(func=_precision_command)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, found {text!r}")
    return int(text)


def _weight(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, found {text!r}")
    return value


def write_outputs(report: PrecisionReport, out_dir: str | Path) -> list[Path]:
    """precision.csv and precision.png, as one set (files.publish)."""
    return publish(out_dir, "precision", lambda d: (write_csv(report, d / "precision.csv"),
                                                    plot(report, d / "precision.png")))


def _precision_command(args: argparse.Namespace) -> int:
    out = check_output(args.out, directory=True)  # before minutes of measuring
    report = measure(args.model, args.batch, args.repeats, args.lam, args.threads,
                     progress=Progress(args.progress))
    print(format_report(report))
    print(f"wrote {', '.join(str(p) for p in write_outputs(report, out))}")
    return 0
