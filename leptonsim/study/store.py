"""A sweep's output directory: results.csv, the manifest sweep.json, and the lock.

results.csv is opened with O_APPEND and every row is one `os.write` of one whole line, so
a killed sweep (Ctrl-C, kill -9) leaves finished rows intact and at most one partial
last line, which the next sweep truncates away. A line break inside a value is written
as the two characters `\\n`, so one record is always one line.

Only one sweep writes to a directory at a time: `open_store` takes an exclusive,
non-blocking `flock` on DIR/sweep.lock for the whole sweep (the kernel drops it when the
process dies, so a killed sweep leaves no stale lock), and refuses a second sweep at
once. Creating the header and truncating a partial line happen under that lock.

sweep.json records what every row depends on beyond its point: a hash of each variant's
normalised scenario document, the --price and the leptonsim version. A separate JSON
file, not a comment line in results.csv, so that results.csv stays a plain CSV every
tool reads; it is written atomically before results.csv exists, so a results.csv with
rows always has one. A sweep whose identity differs is refused, saying what differs.
Nothing but the lock is written before the first row, so a sweep refused at its start
(a Dask cluster that cannot be used) leaves no manifest that would bind the next one.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from ..errors import LeptonError
from ..files import atomic_write

__all__ = ["LOCK", "MANIFEST", "RESULTS", "ResultsFile", "StudyError", "format_line",
           "open_store", "read_rows", "write_sorted"]

RESULTS = "results.csv"
MANIFEST = "sweep.json"
LOCK = "sweep.lock"
REMEDY = "choose another --out or remove the directory"


class StudyError(LeptonError):
    """A results directory that cannot be resumed, a missing optional dependency, ..."""


def format_line(values: Iterable[Any]) -> str:
    """One CSV record as one line: floats in full precision (repr), None as empty."""
    cells = []
    for v in values:
        if v is None:
            v = ""
        elif isinstance(v, str):
            v = v.replace("\r", "\\r").replace("\n", "\\n")
        cells.append(repr(v) if isinstance(v, float) else v)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def _complete_lines(path: Path) -> bytes:
    """The file's bytes up to its last line break: a partial last line is not a row."""
    data = path.read_bytes() if path.exists() else b""
    return data[:data.rfind(b"\n") + 1]


def read_rows(path: Path, columns: Sequence[str] | None = None) -> list[dict[str, str]]:
    """The rows of a results file (complete lines only), as strings."""
    data = _complete_lines(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StudyError(f"{path}:{line}: expected a UTF-8 CSV written by leptonsim sweep, "
                         f"found undecodable bytes ({REMEDY})") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if header is None:
            return []
        if columns is not None and tuple(header) != tuple(columns):
            raise StudyError(f"{path}: its columns are those of another sweep; {REMEDY}")
        rows = []
        for cells in reader:
            if len(cells) != len(header):
                raise StudyError(f"{path}:{reader.line_num}: expected {len(header)} fields, "
                                 f"found {len(cells)} ({REMEDY})")
            rows.append(dict(zip(header, cells, strict=True)))
    except csv.Error as exc:
        raise StudyError(f"{path}:{reader.line_num}: expected a CSV written by leptonsim "
                         f"sweep, found {exc} ({REMEDY})") from None
    return rows


class ResultsFile:
    """An append-only results.csv holding the rows `existing` (read by `read_rows`).
    Nothing is written until the first row: then `before_first` runs (it writes the
    manifest), a partial last line is truncated or the header created. Hold the lock."""

    def __init__(self, path: Path, columns: Sequence[str],
                 existing: Sequence[Mapping[str, str]] = (),
                 before_first: Callable[[], object] = lambda: None) -> None:
        self.path = path
        self.columns = tuple(columns)
        self.existing = existing
        self._before_first = before_first
        self._fd = -1

    def _open(self) -> None:
        self._before_first()
        complete = len(_complete_lines(self.path))
        if complete == 0:
            atomic_write(self.path, lambda f: f.write(format_line(self.columns)))
        elif self.path.stat().st_size > complete:
            os.truncate(self.path, complete)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row as one line, with one write() call (repeated only if the kernel
        takes less than the whole line, which regular files do not do)."""
        data = format_line(row.get(c) for c in self.columns).encode("utf-8")
        try:
            if self._fd < 0:
                self._open()
            while data:
                data = data[os.write(self._fd, data):]
        except OSError as exc:
            raise StudyError(f"{self.path}: cannot append a row ({exc.strerror}); the rows "
                             "before it are kept") from None

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """Hold DIR/sweep.lock exclusively, or refuse at once if another sweep holds it."""
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 20, 0).decode("ascii", "replace").strip()
            raise StudyError(f"{directory}: another sweep{f' (pid {pid})' if pid else ''} is "
                             "writing to it; wait for it to end or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _show_price(price: object) -> str:
    return "no --price" if price is None else f"--price {price!r}"


def _mismatch(found: Mapping[str, Any], wanted: Mapping[str, Any]) -> str | None:
    """Why rows recorded under `found` are not rows of the sweep `wanted`, or None."""
    if found.get("leptonsim") != wanted["leptonsim"]:
        return f"its rows were computed by leptonsim {found.get('leptonsim')}, this is " \
               f"{wanted['leptonsim']}"
    if found.get("price_per_unit_hour") != wanted["price_per_unit_hour"]:
        return f"its rows were computed with {_show_price(found.get('price_per_unit_hour'))}, " \
               f"not {_show_price(wanted['price_per_unit_hour'])}"
    recorded = found.get("scenario")
    if not isinstance(recorded, dict):
        return "its sweep.json has no scenario hashes"
    for variant, digest in wanted["scenario"].items():
        if recorded.get(variant, digest) != digest:
            which = f" (variant {variant!r})" if variant else ""
            return f"its rows were computed from another version of the scenario{which}: " \
                   "the file changed since"
    return None


def _manifest(directory: Path, identity: Mapping[str, Any], has_rows: bool) -> Callable[[], Path]:
    """Check DIR/sweep.json against this sweep's identity; return what writes it before
    the first row (variants added since are recorded, so a later change is caught too).
    Without rows there is nothing to protect: the manifest is this sweep's."""
    path = directory / MANIFEST
    if not has_rows:
        return lambda: atomic_write(path, lambda f: f.write(json.dumps(identity, indent=2) + "\n"))
    if not path.exists():
        raise StudyError(f"{directory / RESULTS}: has rows but no {MANIFEST} to tell what "
                         f"they were computed from; {REMEDY}")
    try:
        found = json.loads(path.read_bytes())
    except (UnicodeDecodeError, ValueError):
        found = None
    if not isinstance(found, dict):
        raise StudyError(f"{path}: expected the JSON manifest of a sweep, found something "
                         f"else; {REMEDY}")
    why = _mismatch(found, identity)
    if why:
        raise StudyError(f"{directory}: {why}; {REMEDY}")
    merged = {**identity, "scenario": {**found["scenario"], **identity["scenario"]}}
    return lambda: atomic_write(path, lambda f: f.write(json.dumps(merged, indent=2) + "\n"))


@contextmanager
def open_store(directory: Path, columns: Sequence[str], identity: Mapping[str, Any]
               ) -> Iterator[ResultsFile]:
    """DIR/results.csv for appending, with DIR locked and its manifest checked first."""
    with ExitStack() as stack:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            stack.enter_context(_exclusive(directory))
            existing = read_rows(directory / RESULTS, columns)
            write_manifest = _manifest(directory, identity, bool(existing))
            results = stack.enter_context(ResultsFile(directory / RESULTS, columns, existing,
                                                      write_manifest))
        except OSError as exc:
            raise StudyError(f"{directory}: expected a directory the sweep can write to, found "
                             f"{(exc.strerror or type(exc).__name__).lower()}") from None
        yield results


def write_sorted(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows (already in order) to `path` atomically."""
    def writer(f: Any) -> None:
        f.write(format_line(columns))
        for row in rows:
            f.write(format_line(row.get(c) for c in columns))
    return atomic_write(path, writer)
