"""Readable names of swept key paths, for axes, legends and tables.

`[sweep.labels]` names a swept key path ("hardware.units[0].count" = "GPUs"); a path it
does not name gets `humanise`d: its last field, with underscores as spaces, or, for a
field that says little alone (count, kind, preset, ...), its table's name with it
("hardware.units[0].count" -> "units", "hardware.link.preset" -> "link preset"). Fields
that would read alike get more of their path until they differ ("units[0]", "units[1]").

results.csv keeps the key paths as its column names: they are exact, and what a resumed
sweep matches its header against. The labels are recorded in sweep.json (`labels`), and
the figures read them from there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ScenarioError, did_you_mean, found
from ..scenario.schema import SWEEP_LABEL_MAX

__all__ = ["MAX_LABEL", "humanise", "labels_of", "parse_labels", "read_labels"]

MAX_LABEL = SWEEP_LABEL_MAX  # characters: an axis name, not a sentence
COUNT = ("count",)      # the field is a count of what its table holds: the table's name
VAGUE = ("kind", "preset", "name", "type", "model", "value", "size", "mode")


def _segments(dotted: str) -> list[str]:
    """'hardware.units[0].count' -> ['hardware', 'units[0]', 'count']."""
    return [s for s in re.split(r"\.(?![^\[]*\])", dotted) if s]


def _bare(segment: str) -> str:
    return re.sub(r"\[\d+\]$", "", segment).strip('"')


def _candidate(dotted: str, depth: int) -> str:
    """The path's name from its last `depth` tables (0: as short as it reads)."""
    segs = _segments(dotted)
    last = _bare(segs[-1])
    if depth == 0:
        if last in COUNT and len(segs) > 1:
            words = [_bare(segs[-2])]
        elif last in VAGUE and len(segs) > 1:
            words = [_bare(segs[-2]), last]
        else:
            words = [last]
    else:
        words = [*segs[-1 - depth:-1], last]
        if last in COUNT:
            words = words[:-1]
    return " ".join(w.replace("_", " ") for w in words)


def humanise(dotted: str, others: Sequence[str] = ()) -> str:
    """A short readable name of a key path, distinct from those of `others`."""
    rest = [o for o in others if o != dotted]
    depth_max = len(_segments(dotted))
    for depth in range(depth_max):
        name = _candidate(dotted, depth)
        if all(name != _candidate(o, depth) for o in rest):
            return name
    return dotted


def labels_of(parameters: Sequence[str], given: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every parameter's label: the given one, else its humanised path; labels two
    parameters would share are their key paths instead, so no two read alike."""
    given = given or {}
    out = {p: given.get(p) or humanise(p, parameters) for p in parameters}
    shared = {v for v in out.values() if list(out.values()).count(v) > 1}
    return {p: p if v in shared else v for p, v in out.items()}


def parse_labels(table: Any, parameters: Sequence[str]) -> dict[str, str]:
    """`[sweep.labels]`: swept key path -> a non-empty name, at most MAX_LABEL long."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ScenarioError("sweep.labels", "a table of swept key paths to names, such as "
                            "\"hardware.units[0].count\" = \"GPUs\"", found(table))
    for key, name in table.items():
        where = f"sweep.labels.{json.dumps(key, ensure_ascii=False)}"
        if key not in parameters:
            raise ScenarioError(where, "a key path of [sweep.parameters] "
                                f"({', '.join(parameters)})", f"<unknown key {key!r}>",
                                hint=did_you_mean(key, parameters))
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_LABEL:
            raise ScenarioError(where, f"a name of 1 to {MAX_LABEL} characters", found(name))
    return {k: v.strip() for k, v in table.items()}


def read_labels(csv_path: Path, parameters: Sequence[str]) -> dict[str, str]:
    """The labels recorded in the sweep.json beside a results CSV, humanised where none
    is (or where there is no readable manifest: a CSV copied alone)."""
    try:
        recorded = json.loads((csv_path.parent / "sweep.json").read_bytes()).get("labels", {})
    except (OSError, ValueError, AttributeError):
        recorded = {}
    if not isinstance(recorded, dict):
        recorded = {}
    return labels_of(parameters, {k: v for k, v in recorded.items() if isinstance(v, str)})
