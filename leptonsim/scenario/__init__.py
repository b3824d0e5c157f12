"""Scenario files: TOML in, checked model objects out.

    [scenario] [hardware] [workload] [schedule] [claims] [objective] [variants.*]

`load(path)` returns one Scenario per variant (sorted by name), or the base scenario
alone when there are none. Every user mistake raises exactly one ScenarioError naming
the file, the key path, what was expected and what was found. The format is described
by `schema()` (JSON Schema, draft 2020-12) and in docs/scenarios.md.
"""

from __future__ import annotations

import copy
import os
import stat
from typing import Any

from ..errors import ScenarioError
from ..limits import SIZES, check_size
from .build import Objective, Scenario, build
from .schema import schema
from .validate import check_structure, normalize, parse_toml
from .variants import apply_override, parse_key_path, relocate, variant_path

__all__ = ["Objective", "Scenario", "ScenarioError", "check", "load", "loads", "read_text",
           "schema"]


def load(path: str | os.PathLike[str]) -> list[Scenario]:
    """The scenarios of a TOML file: one per variant, or the base alone."""
    file = os.fspath(path)
    return loads(read_text(file), file=file)


_NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISSOCK, "a socket"))


def read_text(file: str) -> str:
    """The text of a scenario file: a regular file of at most SIZES["file_bytes"] bytes
    of UTF-8. Opened without blocking, so a named pipe is refused, not waited on, and
    read with a bound, so /dev/zero cannot fill memory."""
    size = SIZES["file_bytes"]
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                what = next((w for test, w in _NOT_REGULAR if test(mode)), "not a regular file")
                raise ScenarioError("", "a readable scenario file", f"<{what}>", file=file)
            data = _read(fd, size.maximum + 1)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise ScenarioError("", "an existing scenario file", "<no such file>",
                            file=file) from None
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ScenarioError("", "a readable scenario file", f"<{reason}>", file=file) from None
    if len(data) > size.maximum:
        raise ScenarioError("", f"a scenario file of at most {size.maximum:,} {size.noun}",
                            f"<more than {size.maximum:,} {size.noun}>", file=file,
                            hint=size.why)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError("", "a UTF-8 text file", "<undecodable bytes>", file=file) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads newlines


def _read(fd: int, limit: int) -> bytes:
    """Up to `limit` bytes of fd (os.read may return fewer than asked at a time)."""
    chunks, total = [], 0
    while total < limit:
        chunk = os.read(fd, min(limit - total, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def check(path: str | os.PathLike[str]) -> list[Scenario]:
    """Load and check a scenario file without running anything (the same as load)."""
    return load(path)


def loads(text: str, file: str = "<string>") -> list[Scenario]:
    """The scenarios of TOML text; `file` names it in error messages."""
    try:
        return _loads(text, file)
    except ScenarioError as err:
        raise err.in_file(file) from None


def _loads(text: str, file: str) -> list[Scenario]:
    raw = parse_toml(text)
    check_structure(raw)
    variants: dict[str, dict[str, Any]] = raw.pop("variants", {})
    base = build(normalize(raw), "", file)
    if not variants:
        return [base]
    out = []
    for name in sorted(variants):
        check_size("variant_name_chars", len(name), "variants")
        overrides = {k: parse_key_path(name, k) for k in variants[name]}
        doc = copy.deepcopy(raw)
        for dotted, value in variants[name].items():
            apply_override(doc, overrides[dotted], copy.deepcopy(value),
                           variant_path(name, dotted))
        try:
            check_structure(doc)
            out.append(build(normalize(doc), name, file))
        except ScenarioError as err:
            raise relocate(err, name, overrides) from None
    return out
