"""The op-time table: measured kernel times as a CSV file that a scenario can name.

One row is one measurement: an op kind, its size, a precision, a device, seconds.

    kind,device,precision,flops,bytes,m,n,k,seconds
    *,a100_80gb,fp16,2147483648,6291456,1024,1024,1024,1.35e-05
    relu,a100_80gb,fp16,,8388608,,,,1.1e-05

Columns (exact names, any order; `kind`, `device`, `precision`, `seconds` and at
least one of `flops` / `bytes` must be in the header; others are refused):

    kind       a task's op kind as the task graph has it ("dense", "conv2d.bwd",
               "optimizer", ...; graph.kinds), or "*": any kind the table does not list,
               and the whole layers a pipeline partition prices without a kind
    device     a device preset (`a100_80gb`) or a unit name, or "*": any unit
    precision  fp64 | fp32 | tf32 | fp16 | bf16 | fp8 | int8
    flops      the op's FLOPs, as leptonsim counts them (ops/base.py); may be empty
    bytes      the op's memory traffic in bytes, as leptonsim counts it; may be empty
    m, n, k    optional GEMM shape (integers, all three or none): when `flops` is
               empty it is 2 m n k; kept for shape-keyed lookups
    seconds    the measured time of one call, > 0 (a median of repeats)

Each (device, precision, kind) is one curve over one size axis: `flops` when any of
its rows gives FLOPs (then all must), else `bytes` (memory-bound kinds: relu, add).
A task is looked up by that size of its own (graph.flops or graph.nbytes), which every
task has: that is what lets the table price any task by interpolation
(cost/measured.py). Lines starting with "#" are comments (provenance); "row N" in a
message is the file's line N. Every mistake is one TableError naming the file, row
and column; the file is read a line at a time, at most SIZES["table_rows"] rows.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import TableError, did_you_mean
from ..files import atomic_write
from ..hardware import PRECISIONS  # the precisions a row may name: a unit's peaks' names
from ..limits import MAGNITUDES, SIZES, Magnitude

ANY = "*"
COLUMNS = ("kind", "device", "precision", "flops", "bytes", "m", "n", "k", "seconds")
REQUIRED = ("kind", "device", "precision", "seconds")
AXES = ("flops", "bytes")


@dataclass(frozen=True)
class Row:
    """One measurement (NaN / 0 where the file leaves a size out)."""

    kind: str
    device: str
    precision: str
    flops: float
    bytes: float
    seconds: float
    m: int = 0
    n: int = 0
    k: int = 0


@dataclass(frozen=True)
class Curve:
    """The measurements of one (device, precision, kind), by increasing size."""

    axis: str               # "flops" or "bytes": the task column it is looked up by
    sizes: np.ndarray
    seconds: np.ndarray


@dataclass(frozen=True)
class OpTable:
    file: str
    curves: dict[tuple[str, str, str], Curve]   # (device, precision, kind) -> curve

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(sorted({d for d, _, _ in self.curves}))

    def precisions(self, device: str) -> tuple[str, ...]:
        return tuple(p for p in PRECISIONS if any(d == device and q == p
                                                  for d, q, _ in self.curves))

    def kinds(self, device: str, precision: str) -> dict[str, Curve]:
        return {k: c for (d, p, k), c in self.curves.items() if d == device and p == precision}


# -- reading ----------------------------------------------------------------------

def read_table(path: str | os.PathLike[str]) -> OpTable:
    """The table in a CSV file; TableError (file, row, column) for anything else.
    Cached by path, size and modification time: a sweep reads it once."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as err:
        raise TableError("", "a readable op-time table CSV file", f"<{err.strerror}>",
                         file=str(path)) from None
    return _read_cached(str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=16)
def _read_cached(file: str, size: int, mtime_ns: int) -> OpTable:
    if not Path(file).is_file():  # a directory, a named pipe (which would block), ...
        raise TableError("", "an op-time table CSV file", "<not a regular file>", file=file)
    try:
        with open(file, encoding="utf-8", newline="") as f:
            return parse_table(_lines(f, file), file)
    except UnicodeDecodeError:
        raise TableError("", "a UTF-8 op-time table CSV file", "<bytes that are not UTF-8>",
                         file=file) from None
    except OSError as err:
        raise TableError("", "a readable op-time table CSV file", f"<{err.strerror}>",
                         file=file) from None


def _lines(f: IO[str], file: str) -> Iterator[str]:
    """Lines of at most SIZES["text_chars"] characters, one at a time (bounded memory)."""
    limit = SIZES["text_chars"].maximum
    number = 0
    while line := f.readline(limit + 2):
        number += 1
        if len(line.rstrip("\r\n")) > limit:
            raise TableError(f"row {number}", f"a line of at most {limit:,} characters",
                             "<a longer line>", file=file)
        yield line


def parse_table(lines: Iterable[str], file: str = "<table>") -> OpTable:
    """The table of CSV `lines` (the file's, header first; "#" lines are comments)."""
    header: list[str] | None = None
    rows: list[tuple[int, Row]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = _fields(line, number, file)
        if header is None:
            header = _header(fields, number, file)
            continue
        if len(rows) >= SIZES["table_rows"].maximum:
            size = SIZES["table_rows"]
            raise TableError(f"row {number}", f"at most {size.maximum:,} {size.noun}",
                             "<more rows>", file=file, hint=size.why)
        rows.append((number, _row(header, fields, number, file)))
    if header is None:
        raise TableError("", f"a CSV header naming the columns {', '.join(COLUMNS)}",
                         "<an empty file>", file=file)
    if not rows:
        raise TableError("", "at least one row after the header", "<none>", file=file)
    return OpTable(file, _curves(rows, file))


def _fields(line: str, number: int, file: str) -> list[str]:
    try:
        (fields,) = csv.reader([line], strict=True)
    except (csv.Error, ValueError):
        raise TableError(f"row {number}", "one line of comma-separated fields",
                         line.rstrip("\r\n"), file=file) from None
    return [f.strip() for f in fields]


def _header(fields: list[str], number: int, file: str) -> list[str]:
    for i, name in enumerate(fields):
        if name not in COLUMNS:
            raise TableError(f"row {number}, column {i + 1}",
                             f"a column name ({', '.join(COLUMNS)})", name, file=file,
                             hint=did_you_mean(name, COLUMNS))
        if name in fields[:i]:
            raise TableError(f"row {number}, column {i + 1}", "each column once",
                             f"<{name!r} again>", file=file)
    missing = [c for c in REQUIRED if c not in fields]
    if missing:
        raise TableError(f"row {number}", f"a header with the column {missing[0]!r}",
                         "<a header without it>", file=file,
                         hint=f"the columns are {', '.join(COLUMNS)}")
    if not any(a in fields for a in AXES):
        raise TableError(f"row {number}", "a header with a size column, 'flops' or 'bytes'",
                         "<a header with neither>", file=file)
    return fields


def _row(header: list[str], fields: list[str], number: int, file: str) -> Row:
    if len(fields) != len(header):
        raise TableError(f"row {number}", f"{len(header)} fields, as the header has",
                         f"<{len(fields)} fields>", file=file)
    cell = dict(zip(header, fields, strict=True))

    def where(column: str) -> str:
        return f"row {number}, column {column}"

    for column in ("kind", "device"):
        if not cell[column]:
            raise TableError(where(column), f"a {column} name", "<an empty field>", file=file)
    if cell["precision"] not in PRECISIONS:
        raise TableError(where("precision"), f"one of {', '.join(PRECISIONS)}",
                         cell["precision"], file=file,
                         hint=did_you_mean(cell["precision"], PRECISIONS))
    shape = [_integer(cell.get(c, ""), where(c), file) for c in ("m", "n", "k")]
    if 0 < sum(1 for d in shape if d) < 3:
        column = ("m", "n", "k")[shape.index(0)]
        raise TableError(where(column), "a GEMM shape of m, n and k together",
                         "<an empty field>", file=file)
    flops = _number(cell.get("flops", ""), where("flops"), "flops", "a FLOP count > 0", file)
    if math.isnan(flops) and shape[0]:
        flops = 2.0 * shape[0] * shape[1] * shape[2]
    nbytes = _number(cell.get("bytes", ""), where("bytes"), "bytes", "a byte count > 0", file)
    if math.isnan(flops) and math.isnan(nbytes):
        raise TableError(where("flops" if "flops" in cell else "bytes"),
                         "the op's size: flops, bytes or m, n, k", "<empty fields>", file=file)
    seconds = _number(cell["seconds"], where("seconds"), "time", "a time > 0", file)
    if math.isnan(seconds):
        raise TableError(where("seconds"), "a time > 0", "<an empty field>", file=file)
    return Row(cell["kind"], cell["device"], cell["precision"], flops, nbytes, seconds, *shape)


def _number(text: str, where: str, kind: str, expected: str, file: str) -> float:
    """A positive finite number within MAGNITUDES[kind]; NaN for an empty field."""
    if not text:
        return math.nan
    magnitude: Magnitude = MAGNITUDES[kind]
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and magnitude.smallest <= value <= magnitude.largest):
        raise TableError(where, f"{expected} ({magnitude.describe()})", text, file=file)
    return value


def _integer(text: str, where: str, file: str) -> int:
    if not text:
        return 0
    most = SIZES["integer"].maximum
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= most):
        raise TableError(where, f"an integer between 1 and {most:,}", text, file=file)
    return int(text)


def _curves(rows: Sequence[tuple[int, Row]], file: str) -> dict[tuple[str, str, str], Curve]:
    groups: dict[tuple[str, str, str], list[tuple[int, Row]]] = {}
    for number, row in rows:
        groups.setdefault((row.device, row.precision, row.kind), []).append((number, row))
    return {key: _curve(key, group, file) for key, group in groups.items()}


def _curve(key: tuple[str, str, str], group: list[tuple[int, Row]], file: str) -> Curve:
    """One curve: keyed by flops if any row gives them, else by bytes; one row a size."""
    device, precision, kind = key
    axis = "flops" if any(not math.isnan(r.flops) for _, r in group) else "bytes"
    what = f"kind {kind!r} on device {device!r} ({precision})"
    seen: dict[float, int] = {}
    first = group[0][0]
    for number, row in group:
        size = getattr(row, axis)
        if math.isnan(size):
            raise TableError(f"row {number}, column {axis}", f"a size by {axis}, as row "
                             f"{first} gives for {what}", "<an empty field>", file=file)
        if size in seen:
            raise TableError(f"row {number}", f"one row per size of {what}",
                             f"<{axis} {size:g} again>", file=file,
                             hint=f"row {seen[size]} has it")
        seen[size] = number
    order = sorted(group, key=lambda nr: getattr(nr[1], axis))
    return Curve(axis, np.array([getattr(r, axis) for _, r in order]),
                 np.array([r.seconds for _, r in order]))


# -- writing ----------------------------------------------------------------------

def table_text(rows: Iterable[Row], comments: Sequence[str] = ()) -> str:
    """The CSV text of `rows` (floats written exactly, by repr), after "#" comments."""
    def show(x: float | int) -> str:
        if isinstance(x, int | np.integer):
            return str(int(x)) if x else ""
        return "" if math.isnan(x) else repr(float(x))

    lines = [f"# {c}" for c in comments] + [",".join(COLUMNS)]
    for r in rows:
        values: list[Any] = [r.kind, r.device, r.precision, show(r.flops), show(r.bytes),
                             show(r.m), show(r.n), show(r.k), show(r.seconds)]
        lines.append(",".join(str(v) for v in values))
    return "\n".join(lines) + "\n"


def write_table(rows: Iterable[Row], path: str | os.PathLike[str],
                comments: Sequence[str] = ()) -> Path:
    """Write an op-time table, atomically (a half-written table never exists)."""
    text = table_text(rows, comments)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(target, lambda f: f.write(text))
