"""Scenario files: TOML in, checked model objects out, in six stages, each a function:

    parse(text)                    TOML -> a document checked against the JSON Schema
                                      (check_structure(table, at) checks one table alone)
    variants(doc)                  -> a Variant per [variants.*] table (the base with that
                                      table's overrides), or the base alone
    normalize(doc, at=())          -> presets merged, quantities in SI floats, every default
                                      the schema gives filled in; `at` normalises one table
                                      alone, e.g. normalize(table, "hardware")
    build_hardware(doc)            -> Cluster
    build_cost(doc)                -> CostModel: [cost] at the workload's precision
    build_workload(doc, cluster, cost) -> Workload: the TaskGraph, and the DNN StepGraph it
                                      was built from (split and memory-checked as [parallel]
                                      says, its stages balanced with `cost`)

and `scenario(doc, cluster, workload, variant, file)` puts a Scenario together (scheduler
"auto" resolved, claims, objective). `load(path)`/`loads(text)` are the composition: one
Scenario per variant (sorted by name), or the base alone when there are none; the base of
a file with variants is normalised but never built. `load_each` is the same, except that
a variant whose hardware or workload cannot be built (a split that does not fit in
memory) comes back as `Unbuilt`, naming it and why, in its place. `documents` and
`load_documents` stop after normalize (`leptonsim optimize` searches splits itself: the
file's [parallel] is never built). A user mistake raises exactly one ScenarioError naming
the file, the key path, what was expected and what was found. The format is described
by `schema()` (JSON Schema, draft 2020-12) and in docs/scenarios.md.
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from typing import Any

from ..errors import ScenarioError
from ..limits import SIZES, check_size
from .build import (
    Objective,
    Scenario,
    Unbuilt,
    Workload,
    build,
    build_hardware,
    build_memory,
    build_workload,
    check_scheduler,
    scenario,
    scheduler_for,
)
from .command_line import CommandLine
from .cost import build_cost
from .schema import schema
from .serving_schema import refuse_serving
from .validate import check_structure, normalize, parse_toml
from .variants import Override, Variant, overridden, variants

__all__ = ["CommandLine", "Objective", "Override", "Scenario", "ScenarioError", "Unbuilt", "Variant",
           "Workload", "build", "build_cost", "build_hardware", "build_memory", "build_workload", "check",
           "check_scheduler", "check_structure", "documents", "load",
           "load_documents", "load_each", "loads", "loads_each", "normalize", "overridden",
           "parse", "read_text", "scenario", "scheduler_for", "schema", "variants"]

Doc = dict[str, Any]
AS_WRITTEN = CommandLine()  # the file as it is: no --set, every variant


def parse(text: str) -> Doc:
    """Stage 1: the document of TOML text, checked against the JSON Schema."""
    doc = parse_toml(text)
    _check_unit_entries(doc)
    check_structure(doc)
    return doc


def _check_unit_entries(doc: Doc) -> None:
    """Every [[hardware.units]] entry is at least one unit, so more entries than the
    units bound are refused before any is checked (a 125,000-entry file took 12 s)."""
    units = doc.get("hardware", {}).get("units") if isinstance(doc.get("hardware"), dict) else None
    if isinstance(units, list):
        check_size("units", len(units), "hardware.units",
                   hint=f"the file has {len(units):,} entries, each at least one unit")


def documents(doc: Doc, line: CommandLine = AS_WRITTEN) -> list[tuple[Variant, Doc]]:
    """Stages 2 and 3 of a parsed document: each variant (the base when there are none;
    the one `line.variant` names) and its normalised document, `line.sets` applied last.
    The base of a file with variants is normalised on its own too, so a mistake in it is
    reported even where every variant overrides it."""
    if doc.get("variants"):  # optional, and without a default
        base = line.apply(Variant("", {k: v for k, v in doc.items() if k != "variants"}))
        try:
            normalize(base.doc)
        except ScenarioError as err:
            raise line.relocate(err) from None
    out = []
    for v in line.chosen(variants(doc)):
        v = line.apply(v)
        try:
            out.append((v, normalize(v.doc)))
        except ScenarioError as err:
            raise v.relocate(line.relocate(err)) from None
    return out


def load_documents(path: str | os.PathLike[str],
                   line: CommandLine | None = None) -> list[tuple[Variant, Doc]]:
    """Stages 1 to 3 of a file: what `leptonsim optimize` reads, building nothing."""
    file = os.fspath(path)
    try:
        return documents(parse(read_text(file)), line or AS_WRITTEN)
    except ScenarioError as err:
        raise err.in_file(file) from None


def loads_each(text: str, file: str = "<string>",
               line: CommandLine = AS_WRITTEN) -> list[Scenario | Unbuilt]:
    """Every stage for each variant: its Scenario, or, when its hardware or workload
    cannot be built, an Unbuilt saying why. Mistakes before that (TOML, schema, values,
    overrides) raise. `line`: the command line's --set and --variant."""
    try:
        docs = documents(parse(text), line)
    except ScenarioError as err:
        raise err.in_file(file) from None
    out: list[Scenario | Unbuilt] = []
    settings = line.side_by_side(docs)
    for (v, doc), given in zip(docs, settings, strict=True):
        try:
            refuse_serving(doc)
            out.append(replace(build(doc, v.name, file), settings=given))
        except ScenarioError as err:
            err = v.relocate(line.relocate(err)).in_file(file)
            out.append(Unbuilt(doc["scenario"]["name"], v.name, err))
    return out


def loads(text: str, file: str = "<string>",
          line: CommandLine = AS_WRITTEN) -> list[Scenario]:
    """The scenarios of TOML text; `file` names it in error messages. The first variant
    that cannot be built raises."""
    out = []
    for s in loads_each(text, file, line):
        if isinstance(s, Unbuilt):
            raise s.error
        out.append(s)
    return out


def load(path: str | os.PathLike[str], line: CommandLine = AS_WRITTEN) -> list[Scenario]:
    """The scenarios of a TOML file: one per variant, or the base alone."""
    file = os.fspath(path)
    return loads(read_text(file), file, line)


def load_each(path: str | os.PathLike[str],
              line: CommandLine = AS_WRITTEN) -> list[Scenario | Unbuilt]:
    """The scenarios of a TOML file, a variant that cannot be built as an Unbuilt."""
    file = os.fspath(path)
    return loads_each(read_text(file), file, line)


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
