"""The fuzzer: mutated bundled scenarios are run or refused in one line, never a traceback.

Issue 10's contract for every input: exit 0 or 2; a refusal is one line on stderr,
starting "error: ", with nothing written; a success writes every output and strict
JSON; no hang, no more than 4 GB. The mutants and the harness are tests/fuzzing.py and
tests/fuzz_run.py; benchmarks/fuzz_scenarios.py runs thousands of them.
"""

from __future__ import annotations

import math
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

import leptonsim.cli
from tests.fuzz_run import Outcome, preload, run_case
from tests.fuzzing import CHEAP, MUTATIONS, Mutant, corpus, mutants, nodes

DOCS = corpus()


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    preload()


def describe(outcome: Outcome) -> str:
    lines = [f"{f.kind} in {f.command}: {f.signature}" for f in outcome.failures]
    last = outcome.commands[-1]
    return "\n".join([*lines, f"from {outcome.mutant.scenario}.toml: "
                      + "; ".join(outcome.mutant.mutations),
                      last.trace or last.stderr, outcome.text])


# 300 cases: `check` for every mutant, `run` too for the cheap scenarios' (~2.5 min on
# 2 cores; `derandomize` makes them the same on every CI run). No explain phase: its
# line tracer would slow the commands it traces down many times.
@settings(max_examples=300, derandomize=True, deadline=None,
          phases=[Phase.explicit, Phase.generate, Phase.shrink],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutant=mutants(DOCS))
def test_a_mutated_scenario_is_run_or_refused_in_one_line(mutant: Mutant) -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        outcome = run_case(mutant, Path(tmp), run=mutant.scenario in CHEAP)
    assert not outcome.failures, describe(outcome)


@pytest.mark.parametrize("name", sorted(CHEAP))
def test_an_unmutated_cheap_scenario_runs_clean(name: str, tmp_path: Path) -> None:
    outcome = run_case(Mutant(name, DOCS[name], ()), tmp_path, run=True)
    assert [c.code for c in outcome.commands] == [0, 0] and not outcome.failures


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


@settings(max_examples=200, derandomize=True, deadline=None)
@given(mutant=mutants(DOCS))
def test_the_written_toml_is_the_mutated_document(mutant: Mutant) -> None:
    """What the CLI reads is what was mutated (inf and nan included); nesting sentinels
    become arrays that deep."""
    text = mutant.toml()
    if "[[[[[[[[[[" in text:
        assert "@nest:" not in text
        return
    assert _same(mutant.doc, tomllib.loads(text))


def test_every_mutation_applies_to_every_scenario() -> None:
    assert len(MUTATIONS) >= 9 and all(nodes(doc) for doc in DOCS.values())


# The harness itself: each way of breaking the contract is caught and named.

def _case(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: Any, **kw: Any) -> Outcome:
    monkeypatch.setattr(leptonsim.cli, "main", fake)   # the forked child calls this main
    return run_case(Mutant("edge_inference", DOCS["edge_inference"], ()), tmp_path,
                    run=True, **kw)


def _raises(argv: list[str]) -> int:
    return {}["missing"]


def _refuses_in_two_lines(argv: list[str]) -> int:
    print("error: one\nand two", file=__import__("sys").stderr)
    return 2


def _refuses_but_writes(argv: list[str]) -> int:
    Path("out").mkdir()
    (Path("out") / "partial.csv").write_text("x")
    print("error: no", file=__import__("sys").stderr)
    return 2


def _writes_infinity(argv: list[str]) -> int:
    if argv[0] == "run":
        for v in ("batch1", "batch32"):
            (Path("out") / v).mkdir(parents=True)
            for f in ("summary.json", "trace.json", "tasks.csv", "transfers.csv", "gantt.png"):
                (Path("out") / v / f).write_text('{"x": Infinity}' if f == "summary.json" else "[]")
    return 0


def _skips(*skipped: str, write_skipped: bool = False) -> Any:
    """A run that names `skipped` on stderr as the CLI does and writes the others."""
    def fake(argv: list[str]) -> int:
        if argv[0] == "run":
            for v in ("batch1", "batch32"):
                if v in skipped:
                    print(f"run: skipped s [{v}]: f: x: expected y, found z",
                          file=__import__("sys").stderr)
                if v not in skipped or write_skipped:
                    (Path("out") / v).mkdir(parents=True)
                    for f in ("summary.json", "trace.json", "tasks.csv", "transfers.csv",
                              "gantt.png"):
                        (Path("out") / v / f).write_text("{}")
        return 0
    return fake


def test_a_variant_skipped_by_name_writes_nothing_and_the_others_write_theirs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _case(monkeypatch, tmp_path, _skips("batch1")).failures == []


@pytest.mark.parametrize("fake, kind", [
    (_skips("batch1", write_skipped=True), "output"), (_skips("batch1", "batch32"), "output"),
    (_raises, "traceback"), (lambda argv: 1, "exit"), (_refuses_in_two_lines, "refusal"),
    (_refuses_but_writes, "wrote"), (_writes_infinity, "output"), (lambda argv: 0, "output"),
    (lambda argv: len(bytearray(5 * 10**9)), "memory"),
])
def test_the_harness_catches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: Any,
                             kind: str) -> None:
    outcome = _case(monkeypatch, tmp_path, fake)
    assert [f.kind for f in outcome.failures] == [kind]


def test_the_harness_names_where_a_traceback_came_from(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    outcome = _case(monkeypatch, tmp_path, _raises)
    assert outcome.failures[0].signature == "KeyError at test_fuzz_scenarios.py:_raises"


def test_the_harness_stops_a_hang(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    outcome = _case(monkeypatch, tmp_path, lambda argv: time.sleep(3600), timeout=1.0)
    assert [(f.kind, f.signature) for f in outcome.failures] == [
        ("hang", "hang in test_fuzz_scenarios.py:<lambda>")]
