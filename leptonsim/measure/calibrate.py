"""`leptonsim calibrate`: measure this machine, write a hardware profile, cost with it.

Everything is measured through the executor (bench.py), so the
profile describes what executed tasks see: one core per worker process with one
BLAS thread, the synthetic kernels, the shared-memory transfer path. Medians of
repeats throughout; the machine is assumed shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cost.calibrated import Profile, monotone_curve
from ..cost.optable import ANY, Row, write_table
from ..errors import QuantityError, ScenarioError
from ..export import atomic_write
from ..files import check_output
from ..limits import SIZES
from ..quantities import format_quantity, parse_quantity
from .machine import machine_info


@dataclass(frozen=True)
class Plan:
    """What to measure. GEMM sizes n; a copy well past L2 (L3 may be shared with other
    tenants); messages from latency-bound to bandwidth-bound; repeats of each."""

    sizes: tuple[int, ...]
    copy_bytes: int
    messages: tuple[int, ...]
    repeats: int


QUICK = Plan((8, 16, 32, 64, 128, 256, 512), 16_000_000,
             (8, 512, 32_000, 1_000_000, 4_000_000), 5)  # ~2 s here
FULL = Plan((8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536), 64_000_000,
            (8, 64, 512, 4_000, 32_000, 256_000, 2_000_000, 16_000_000, 64_000_000), 9)  # ~10 s


# -- measuring ----------------------------------------------------------------------

def calibrate(progress: bool = True, budget_s: float = 90.0, quick: bool = False) -> Profile:
    """Measure this machine (under 2 minutes; `quick` in a few seconds)."""
    from . import bench

    began = time.perf_counter()
    say = _printer(progress, began)
    plan = QUICK if quick else FULL
    sizes = plan.sizes
    say(f"[1/2] GEMM float32/float64 n={sizes[0]}..{sizes[-1]}, a "
        f"{format_quantity(plan.copy_bytes, 'bytes')} copy, no-op tasks (one worker)")
    c = bench.compute(sizes, plan.copy_bytes, plan.repeats)
    rates = {k: 2.0 * k[1] ** 3 / s for k, s in c.gemm.items()}
    for n in sizes:
        say(f"  n={n:<5} float32 {format_quantity(rates['float32', n], 'flop_rate'):>13}   "
            f"float64 {format_quantity(rates['float64', n], 'flop_rate'):>13}")
    peak = max(rates["float32", n] for n in sizes)
    bandwidth = 2.0 * c.copy_bytes / c.copy_s
    say(f"  memory {format_quantity(bandwidth, 'bandwidth')}, "
        f"task overhead {format_quantity(c.task_overhead_s, 'time')}")
    # over half the budget gone (a very slow or busy machine): smaller messages
    messages = plan.messages if time.perf_counter() - began < budget_s / 2 else QUICK.messages
    say(f"[2/2] transfers between two workers, {len(messages)} sizes "
        f"{format_quantity(messages[0], 'bytes')}..{format_quantity(messages[-1], 'bytes')}")
    took = bench.ping_pong(messages, plan.repeats)
    latency, link_bw = bench.fit_latency_bandwidth(list(took), list(took.values()))
    say(f"  latency {format_quantity(latency, 'time')}, "
        f"bandwidth {format_quantity(link_bw, 'bandwidth')}")
    curve = monotone_curve((2.0 * n**3, rates["float32", n] / peak) for n in sizes)
    return Profile(peak, bandwidth, c.task_overhead_s, latency, link_bw, curve,
                   max(rates["float64", n] for n in sizes), machine_info(),
                   tuple((dt, n, r) for (dt, n), r in sorted(rates.items())))


def _printer(enabled: bool, began: float) -> Callable[[str], None]:
    def say(line: str) -> None:
        if enabled:
            print(f"calibrate {time.perf_counter() - began:5.1f}s {line}", file=sys.stderr,
                  flush=True)
    return say


# -- the profile file -------------------------------------------------------------------

def profile_toml(p: Profile) -> str:
    m = p.machine
    lines = ["# leptonsim hardware profile, measured by `leptonsim calibrate`.",
             f"# machine: {m.get('platform', '?')}; {m.get('cpu', '?')}; {m.get('cores', '?')} cores",
             f"# date: {m.get('date', '?')}; numpy {m.get('numpy', '?')}; BLAS {m.get('blas', '?')}",
             "# A unit is one worker process on one core with one BLAS thread; a link is the",
             "# shared-memory path between two workers. efficiency_curve: fraction of `peak`",
             "# reached by a float32 GEMM of `flops` FLOPs (made monotone; raw rates in [[gemm]]).",
             "", "[unit]",
             f'peak = "{format_quantity(p.peak_flops, "flop_rate")}"',
             f'peak_fp64 = "{format_quantity(p.peak_flops_fp64, "flop_rate")}"',
             f'memory_bandwidth = "{format_quantity(p.memory_bandwidth, "bandwidth")}"',
             f'overhead = "{format_quantity(p.overhead_s, "time")}"',
             "", "[link]",
             f'latency = "{format_quantity(p.link_latency_s, "time")}"',
             f'bandwidth = "{format_quantity(p.link_bandwidth, "bandwidth")}"',
             "duplex = true", "", "[machine]"]
    lines += [f"{k} = {_toml_str(v)}" for k, v in m.items()]
    for f, e in p.efficiency_curve:
        lines += ["", "[[efficiency_curve]]", f"flops = {f!r}", f"efficiency = {e!r}"]
    for dtype, n, rate in p.gemm:
        lines += ["", "[[gemm]]", f'dtype = "{dtype}"', f"n = {n}",
                  f'rate = "{format_quantity(rate, "flop_rate")}"']
    return "\n".join(lines) + "\n"


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_profile(profile: Profile, path: str | os.PathLike[str]) -> Path:
    """Write the profile as TOML, atomically (a half-written profile never exists)."""
    text = profile_toml(profile)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(target, lambda f: f.write(text), binary=False)


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read a profile written by write_profile; ScenarioError (file, key path, expected,
    found) for anything else: not a small UTF-8 TOML file, a key missing or mistyped."""
    file = str(path)
    doc = _profile_document(Path(path), file)
    unit, link = _table(doc, "unit", file), _table(doc, "link", file)
    machine = _table(doc, "machine", file, optional=True)

    def q(table: dict[str, Any], key: str, where: str, kind: str, positive: bool = True,
          default: float | None = None) -> float:
        return _quantity(table, key, where, kind, file, positive, default)

    curve = tuple((q(p, "flops", f"efficiency_curve[{i}]", "flops"),
                   q(p, "efficiency", f"efficiency_curve[{i}]", "dimensionless"))
                  for i, p in enumerate(_tables(doc, "efficiency_curve", file)))
    if not curve:
        raise ScenarioError("efficiency_curve", "at least one [[efficiency_curve]] point",
                            "<none>", file=file)
    for i, (_, e) in enumerate(curve):
        if e > 1:
            raise ScenarioError(f"efficiency_curve[{i}].efficiency", "an efficiency in (0, 1]",
                                e, file=file)
    return Profile(
        peak_flops=q(unit, "peak", "unit", "flop_rate"),
        memory_bandwidth=q(unit, "memory_bandwidth", "unit", "bandwidth"),
        overhead_s=q(unit, "overhead", "unit", "time", positive=False),
        link_latency_s=q(link, "latency", "link", "time", positive=False),
        link_bandwidth=q(link, "bandwidth", "link", "bandwidth"),
        efficiency_curve=curve,
        peak_flops_fp64=q(unit, "peak_fp64", "unit", "flop_rate", positive=False, default=0.0),
        machine={k: str(v) for k, v in machine.items()},
        gemm=tuple(_gemm_row(r, i, file) for i, r in enumerate(_tables(doc, "gemm", file))),
    )


def _profile_document(path: Path, file: str) -> dict[str, Any]:
    """The parsed TOML of a regular file of at most SIZES["profile_bytes"] bytes."""
    limit = SIZES["profile_bytes"].maximum
    try:
        if not path.is_file():  # a directory, a named pipe (which would block), ...
            raise ScenarioError("", "a profile TOML file", "<not a regular file>", file=file)
        with open(path, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ScenarioError("", f"a profile of at most {limit} bytes",
                                "<a larger file>", file=file)
        return tomllib.loads(data.decode("utf-8"))
    except (OSError, ValueError) as err:  # unreadable, not UTF-8, not TOML
        raise ScenarioError("", "a readable UTF-8 profile TOML file", f"<{err}>",
                            file=file) from None


def _table(doc: dict[str, Any], key: str, file: str, optional: bool = False) -> dict[str, Any]:
    node = doc.get(key, {} if optional else None)
    if not isinstance(node, dict):
        raise ScenarioError(key, "a table", "<nothing>" if node is None else node, file=file)
    return node


def _tables(doc: dict[str, Any], key: str, file: str) -> list[dict[str, Any]]:
    """An array of tables ([[key]]); absent is empty."""
    node = doc.get(key, [])
    if not isinstance(node, list):
        raise ScenarioError(key, "an array of tables", node, file=file)
    for i, item in enumerate(node):
        if not isinstance(item, dict):
            raise ScenarioError(f"{key}[{i}]", "a table", item, file=file)
    return node


def _quantity(table: dict[str, Any], key: str, where: str, kind: str, file: str,
              positive: bool, default: float | None) -> float:
    """The quantity `table[key]` (at key path `where.key`), or a ScenarioError naming it."""
    node: Any = table.get(key)
    if node is None and default is not None:
        return default
    path = f"{where}.{key}"
    try:
        value = parse_quantity(node, kind)
    except QuantityError as err:
        raise ScenarioError(path, err.expected, "<nothing>" if node is None else node,
                            file=file) from None
    if value < 0 or (positive and value == 0):
        raise ScenarioError(path, "a value > 0" if positive else "a value >= 0", node, file=file)
    return value


def _gemm_row(row: dict[str, Any], i: int, file: str) -> tuple[str, int, float]:
    dtype, n = row.get("dtype"), row.get("n")
    if not isinstance(dtype, str):
        raise ScenarioError(f"gemm[{i}].dtype", "a dtype name", dtype, file=file)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ScenarioError(f"gemm[{i}].n", "an integer >= 1", n, file=file)
    return dtype, n, _quantity(row, "rate", f"gemm[{i}]", "flop_rate", file, True, None)


# -- the op-time table ----------------------------------------------------------------

PRECISION_OF = {"float32": "fp32", "float64": "fp64"}
WORD = {"float32": 4, "float64": 8}


def table_rows(profile: Profile, device: str = "cpu_core") -> list[Row]:
    """The profile's GEMM ladder as op-time table rows (cost/optable.py): kind "*" (the
    synthetic kernels are square GEMMs, what the calibrated model prices every task
    by), one row per dtype and n, seconds = 2 n^3 / the measured rate."""
    return [Row(ANY, device, PRECISION_OF[dtype], 2.0 * n**3, 3.0 * n * n * WORD[dtype],
                2.0 * n**3 / rate, n, n, n)
            for dtype, n, rate in profile.gemm if dtype in PRECISION_OF]


# -- command line ---------------------------------------------------------------------

def add_calibrate_command(subparsers: Any) -> None:
    """Register `calibrate [--out FILE] [--quick]` on cli.py's subparsers."""
    c = subparsers.add_parser(
        "calibrate", help="measure this machine; write a hardware profile TOML",
        description="Measure this machine through the executor (GEMM efficiency by size, memory "
                    "bandwidth, per-task overhead, worker-to-worker latency and bandwidth) and "
                    "write a hardware profile, which a scenario names with [cost] model = "
                    "\"calibrated\", profile = FILE. Under 2 minutes.")
    c.add_argument("--out", metavar="FILE", default="profiles/this_machine.toml",
                   help="profile to write (default profiles/this_machine.toml)")
    c.add_argument("--quick", action="store_true", help="fewer, smaller measurements (~10 s)")
    c.add_argument("--table", metavar="FILE",
                   help="also write the GEMM ladder as an op-time table CSV, device cpu_core "
                        "([cost] model = \"table\" reads it; docs/model.md)")
    c.set_defaults(func=_calibrate_command)


def _calibrate_command(args: argparse.Namespace) -> int:
    check_output(args.out, directory=False)  # before minutes of measuring
    if args.table:
        check_output(args.table, directory=False)
    profile = calibrate(progress=True, quick=args.quick)
    path = write_profile(profile, args.out)
    print(f"peak {format_quantity(profile.peak_flops, 'flop_rate')} (float32, one core), "
          f"memory {format_quantity(profile.memory_bandwidth, 'bandwidth')}, "
          f"overhead {format_quantity(profile.overhead_s, 'time')}, "
          f"link {format_quantity(profile.link_latency_s, 'time')} + n / "
          f"{format_quantity(profile.link_bandwidth, 'bandwidth')}")
    print(f"wrote {path}")
    if args.table:
        m = profile.machine
        table = write_table(table_rows(profile), args.table, comments=(
            "leptonsim op-time table, measured by `leptonsim calibrate` through the executor "
            "(one worker, one BLAS thread)",
            f"machine: {m.get('platform', '?')}; {m.get('cpu', '?')}; date {m.get('date', '?')}"))
        print(f"wrote {table}")
    return 0
