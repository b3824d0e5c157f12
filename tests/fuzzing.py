"""Scenario mutants for the fuzzer: Hypothesis strategies over the bundled scenarios.

A mutant is a bundled scenario's parsed document (tomllib) with one to three mutations
applied, written back to TOML with tomli-w. The mutations are the mistakes a user (or a
script writing scenarios) makes: a key deleted or misspelt, a value of the wrong type,
a number at the edge of the float or integer range (also inside a quantity string, such
as "5e-324 GB/s"), a table where a scalar belongs and the reverse, an array emptied or
lengthened, a variant's override key path bent, and deep nesting.

Used by tests/test_fuzz_scenarios.py (a few hundred cases in CI) and by
benchmarks/fuzz_scenarios.py (thousands, in parallel); running a case is fuzz_run.py.
"""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import strategies as st

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"

# gpt3_ptdp is left out: its `check` alone takes ~25 s and its `run` ~70 s (1,024 units),
# 1,000 times the others; its structure (model, [parallel], two_level) is covered by
# optimize_bert_large, dlrm_hybrid and bert_tensor_parallel.
SLOW = frozenset({"gpt3_ptdp", "llama3_405b"})

# `run` (not only `check`) for mutants of these: the three cheapest bundled scenarios
# (~1-3 s per run with every variant, against 4-15 s for the others), so a few hundred
# CI cases take minutes; the benchmark can run every scenario (--run-all).
CHEAP = frozenset({"edge_inference", "seed_case_study", "heterogeneous"})

Path_ = tuple[str | int, ...]

# Numbers at the edges: zero, negative, subnormal, the float maximum, past int64, inf, nan.
EXTREME_INTS = (0, -1, 1, 2, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30,
                10**7, 10**10)
EXTREME_FLOATS = (0.0, -0.0, -1.0, 0.5, 5e-324, 2.2e-308, 1e-300, 1e308,
                  1.7976931348623157e308, -1e308, float("inf"), float("-inf"), float("nan"))
EXTREME_NUMBERS: tuple[int | float, ...] = EXTREME_INTS + EXTREME_FLOATS
# Magnitudes put in front of a quantity's unit: "25 GB/s" -> "5e-324 GB/s".
EXTREME_MAGNITUDES = ("0", "-1", "5e-324", "1e-300", "1e308", "1.7e308", "inf", "-inf", "nan",
                      "1e400", "9223372036854775808", "1e-9", "")
# Keys of the format that the bundled scenarios leave out (defaults, preset values), by
# the table they belong in: a mutation adds them, so values no bundled file sets get fuzzed.
ABSENT_KEYS = {
    "units": ("busy_power", "idle_power", "price_per_hour", "memory", "overhead", "count",
              "efficiency", "peak", "memory_bandwidth"),
    "link": ("latency", "bandwidth", "energy_per_byte", "duplex"),
    "generator": ("split_max", "spread", "tasks", "width", "stages", "duration", "seed"),
    "model": ("microbatches", "layers", "batch", "recompute"),
    "parallel": ("microbatches", "bucket", "tp", "pp", "dp", "fuse"),
    "scenario": ("seed",),
}
ABSENT_KEYS |= {"intra": ABSENT_KEYS["link"], "inter": ABSENT_KEYS["link"]}
UNITS = ("W", "s", "B/s", "GB/s", "FLOP/s", "B", "GB", "J/B", "ns")
EXTREME_STRINGS = ("", " ", "x" * 100_000, "\x00", "é\u202e", "../../etc", "a\nb")
NEST = "@nest:{}@"          # a sentinel string replaced by raw nested arrays in to_toml


@dataclass(frozen=True)
class Mutant:
    scenario: str               # the bundled scenario's stem
    doc: dict[str, Any]
    mutations: tuple[str, ...]  # what was done, for the report

    def toml(self) -> str:
        return to_toml(self.doc)


def corpus(exclude: frozenset[str] = SLOW) -> dict[str, dict[str, Any]]:
    """The bundled scenarios' parsed documents, by file stem."""
    return {p.stem: tomllib.loads(p.read_text(encoding="utf-8"))
            for p in sorted(SCENARIOS.glob("*.toml")) if p.stem not in exclude}


def to_toml(doc: dict[str, Any]) -> str:
    """TOML text of a document; NEST sentinels become arrays nested that deep."""
    text = tomli_w.dumps(doc)
    return re.sub(r'"@nest:(\d+)@"', lambda m: "[" * int(m[1]) + "1" + "]" * int(m[1]), text)


def nodes(doc: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    """Every value below the root with its path (keys and array indices)."""
    items = (doc.items() if isinstance(doc, dict) else enumerate(doc)
             if isinstance(doc, list) else ())
    out: list[tuple[Path_, Any]] = []
    for k, v in items:
        out.append(((*path, k), v))
        out.extend(nodes(v, (*path, k)))
    return out


def get(doc: Any, path: Path_) -> Any:
    for seg in path:
        doc = doc[seg]
    return doc


def put(doc: Any, path: Path_, value: Any) -> None:
    get(doc, path[:-1])[path[-1]] = value


def dotted(path: Path_) -> str:
    """A path in a variant override's syntax: hardware.units[0].count."""
    out = ""
    for seg in path:
        out += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if out else str(seg))
    return out


def show(value: Any) -> str:
    """A value for a mutation's description: a 100 kB string is not repeated whole."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} chars)"


# --- values ----------------------------------------------------------------------------

scalars = st.one_of(
    st.sampled_from(EXTREME_NUMBERS),
    st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.sampled_from(["", "yes", "no", "true", "none", "auto", "gpu", "a100_80gb", "1", "-1",
                     "10 GB/s", "5 us", "1 TFLOP/s", "1 GB", "fp16", "heft", "1e308 s"]),
    st.text(max_size=12),
)


def tables(depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.dictionaries(st.sampled_from(["name", "count", "x", "preset", "kind", ""]),
                           scalars, max_size=3)
    return leaf if depth <= 0 else st.one_of(
        leaf, st.dictionaries(st.sampled_from(["a", "model", "units"]), tables(depth - 1),
                              min_size=1, max_size=2))


wrong_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    tables(),
    st.lists(tables(0), min_size=1, max_size=3),
)


def extreme_like(value: Any) -> st.SearchStrategy[Any]:
    """An extreme value of the same type, which a schema's type check lets through: an
    int stays an int, a float a float, and a quantity keeps its unit."""
    m = re.fullmatch(r"\s*[-+0-9.eE]+\s*(.*)", value) if isinstance(value, str) else None
    if m:
        return st.sampled_from(EXTREME_MAGNITUDES).map(lambda x: f"{x} {m[1]}".strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return st.sampled_from(EXTREME_INTS)
    if isinstance(value, float):
        return st.sampled_from(EXTREME_FLOATS)
    return st.sampled_from(EXTREME_STRINGS if isinstance(value, str) else EXTREME_NUMBERS)


added_values = st.one_of(
    st.sampled_from(EXTREME_NUMBERS),
    st.tuples(st.sampled_from(EXTREME_MAGNITUDES), st.sampled_from(UNITS)).map(" ".join),
    wrong_values,
)


def misspell(word: str) -> st.SearchStrategy[str]:
    edits = [word + "s", word.upper(), word + " ", "_" + word, word.replace("_", "-"),
             word[:-1], word[1:], word[::-1], ""]
    return st.sampled_from([e for e in edits if e != word] or ["x"])


# --- mutations: each takes the document and a draw, changes it, and says what it did ---

def _delete(doc: dict[str, Any], draw: Any) -> str:
    path, _ = draw(st.sampled_from(nodes(doc)))
    del get(doc, path[:-1])[path[-1]]
    return f"delete {dotted(path)}"


def _wrong_type(doc: dict[str, Any], draw: Any) -> str:
    path, _ = draw(st.sampled_from(nodes(doc)))
    value = draw(wrong_values)
    put(doc, path, value)
    return f"{dotted(path)} = {show(value)}"


def _extreme(doc: dict[str, Any], draw: Any) -> str:
    leaves = [(p, v) for p, v in nodes(doc) if not isinstance(v, dict | list | bool)]
    path, old = draw(st.sampled_from(leaves))
    value = draw(extreme_like(old))
    put(doc, path, value)
    return f"{dotted(path)} = {show(value)}"


def _table_to_scalar(doc: dict[str, Any], draw: Any) -> str:
    tabs = [p for p, v in nodes(doc) if isinstance(v, dict | list)]
    path = draw(st.sampled_from(tabs))
    value = draw(scalars)
    put(doc, path, value)
    return f"{dotted(path)} = {show(value)} (was a table or array)"


def _scalar_to_table(doc: dict[str, Any], draw: Any) -> str:
    leaves = [p for p, v in nodes(doc) if not isinstance(v, dict | list)]
    path = draw(st.sampled_from(leaves))
    value = draw(st.one_of(tables(), st.lists(scalars, max_size=3)))
    put(doc, path, value)
    return f"{dotted(path)} = {show(value)} (was a scalar)"


def _resize_array(doc: dict[str, Any], draw: Any) -> str:
    arrays = [p for p, v in nodes(doc) if isinstance(v, list)]
    if not arrays:
        return _wrong_type(doc, draw)
    path = draw(st.sampled_from(arrays))
    old = get(doc, path)
    times = draw(st.sampled_from([0, 2, 3, 50]))
    put(doc, path, [copy.deepcopy(v) for _ in range(times) for v in old])
    return f"{dotted(path)} repeated x{times}"


def _add(doc: dict[str, Any], draw: Any) -> str:
    tabs = [p for p, v in nodes(doc) if isinstance(v, dict) and _table_kind(p) in ABSENT_KEYS]
    if not tabs:
        return _extreme(doc, draw)
    path = draw(st.sampled_from(tabs))
    key, value = draw(st.sampled_from(ABSENT_KEYS[_table_kind(path)])), draw(added_values)
    get(doc, path)[key] = value
    return f"{dotted((*path, key))} = {show(value)} (added)"


def _table_kind(path: Path_) -> str | int:
    """What a table is, by its key: hardware.units[0] is a "units" table."""
    return path[-2] if isinstance(path[-1], int) and len(path) > 1 else path[-1]


def _rename(doc: dict[str, Any], draw: Any) -> str:
    keyed = [p for p, _ in nodes(doc) if isinstance(p[-1], str)]
    path = draw(st.sampled_from(keyed))
    parent = get(doc, path[:-1])
    new = draw(misspell(path[-1]))
    parent[new] = parent.pop(path[-1])
    return f"rename {dotted(path)} -> {new!r}"


def _override(doc: dict[str, Any], draw: Any) -> str:
    """A variant override through a bent key path, or of any path with a wrong value."""
    variants = doc.setdefault("variants", {})
    if not isinstance(variants, dict):
        return _wrong_type(doc, draw)
    targets = nodes({k: v for k, v in doc.items() if k != "variants"})
    path, old = draw(st.sampled_from(targets))
    key = draw(st.sampled_from([dotted(path), *_bend(dotted(path))]))
    value = draw(st.one_of(extreme_like(old), wrong_values))
    name = draw(st.sampled_from([*variants, "fuzz"])) if variants else "fuzz"
    if not isinstance(variants.get(name), dict):
        variants[name] = {}
    variants[name][key] = value
    return f"variants.{name}.{key!r} = {show(value)}"


def _bend(path: str) -> list[str]:
    """Key paths near a valid one: through a scalar, an index on a table, out of range."""
    return [path + ".x", path + "[0]", path + "[99]", path.replace("[0]", "[7]"),
            path.replace("[0]", ""), path.rsplit(".", 1)[0] + "[0]", path + "[", "." + path,
            path + ".", path.replace(".", ".."), path.upper(), "variants." + path, ""]


def _nest(doc: dict[str, Any], draw: Any) -> str:
    path, _ = draw(st.sampled_from(nodes(doc)))
    depth = draw(st.sampled_from([10, 100, 1000]))
    put(doc, path, NEST.format(depth))
    return f"{dotted(path)} = array nested {depth} deep"


MUTATIONS = {f.__name__.lstrip("_"): f for f in (
    _delete, _wrong_type, _extreme, _table_to_scalar, _scalar_to_table, _resize_array,
    _add, _rename, _override, _nest)}


# Same-type extremes, added keys and overrides pass the schema's type checks more often
# and so reach the builder and the engine: they are drawn more often.
WEIGHTED = sorted(MUTATIONS) + ["extreme"] * 4 + ["add", "override"] * 2


@st.composite
def mutants(draw: Any, docs: dict[str, dict[str, Any]], most: int = 3) -> Mutant:
    """A bundled scenario with one to `most` mutations applied."""
    name = draw(st.sampled_from(sorted(docs)))
    doc = copy.deepcopy(docs[name])
    done = []
    for _ in range(draw(st.sampled_from([1, 1, 2, most]))):  # mostly one: more reach `run`
        if not nodes(doc):
            break
        kind = draw(st.sampled_from(WEIGHTED))
        done.append(MUTATIONS[kind](doc, draw))
    return Mutant(name, doc, tuple(done))
