"""results.csv: appended one complete line per write(), read back on resume.

The file is opened with O_APPEND and every row is one `os.write` of one whole line, so a
killed sweep (Ctrl-C, kill -9) leaves finished rows intact and at most one partial last
line, which `open_results` discards and truncates away. A line break inside a value is
written as the two characters `\\n`, so one record is always one line.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import LeptonError
from ..export import atomic_write

__all__ = ["ResultsFile", "StudyError", "format_line", "read_rows", "write_sorted"]


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


def _repair(path: Path) -> bytes:
    """The file's complete lines; a trailing partial line is truncated away on disk."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        os.truncate(path, end)
    return data[:end]


def read_rows(path: Path, columns: Sequence[str] | None = None) -> list[dict[str, str]]:
    """The rows of a results file (complete lines only), as strings."""
    text = _repair(path).decode("utf-8") if path.exists() else ""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return []
    if columns is not None and tuple(header) != tuple(columns):
        raise StudyError(f"{path}: its columns are those of another sweep; choose another "
                         f"--out directory or remove the file")
    rows = []
    for line, cells in enumerate(reader, start=2):
        if len(cells) != len(header):
            raise StudyError(f"{path}:{line}: expected {len(header)} fields, found {len(cells)}")
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


class ResultsFile:
    """An append-only results.csv. `existing` holds the rows found on opening."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = path
        self.columns = tuple(columns)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.existing = read_rows(path, self.columns)
        if not path.exists() or path.stat().st_size == 0:
            atomic_write(path, lambda f: f.write(format_line(self.columns)))
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row as one line, with one write() call (repeated only if the kernel
        takes less than the whole line, which regular files do not do)."""
        data = format_line(row.get(c) for c in self.columns).encode("utf-8")
        while data:
            data = data[os.write(self._fd, data):]

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_sorted(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows (already in order) to `path` atomically."""
    def writer(f: Any) -> None:
        f.write(format_line(columns))
        for row in rows:
            f.write(format_line(row.get(c) for c in columns))
    return atomic_write(path, writer)
