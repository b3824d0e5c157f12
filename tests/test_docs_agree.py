"""The docs say what the code does: docs/results.md describes every key summary.json
holds and what the formula rows' `within_bounds` and `proven` mean; docs/scenarios.md
says to which tasks a unit's `overhead` is added."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from leptonsim.cost import Roofline, fixed_times
from leptonsim.graph import GraphBuilder
from leptonsim.hardware import ComputeUnit
from leptonsim.report import summary
from leptonsim.result import RunResult, run
from leptonsim.scenario import load

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "results.md").read_text()
DOCUMENTED = set(re.findall(r"`([a-z_]+)`", DOC))
SCENARIOS = (ROOT / "docs" / "scenarios.md").read_text()


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


@pytest.fixture(scope="module")
def results() -> list[RunResult]:
    # claims (the seed's case study), memory (a DNN step), links and unproven bounds
    return [run(s) for name in ("seed_case_study", "edge_inference", "comm_bound_fork_join")
            for s in load(ROOT / "scenarios" / f"{name}.toml")[:1]]


def test_every_summary_key_is_documented(results: list[RunResult]):
    keys = set().union(*(_keys(summary(r)) for r in results))
    assert {"proven", "within_bounds", "memory", "claims"} <= keys
    assert not sorted(keys - DOCUMENTED)


def test_within_bounds_is_null_only_for_estimates_and_proven_says_whether_it_is_a_theorem(
        results: list[RunResult]):
    rows = [row for r in results for row in r.formulas]
    assert any(row.within_bounds is not None and not row.proven for row in rows)  # unproven bound
    for row in rows:
        estimate = row.verdict in ("estimate", "not simulated")
        assert (row.within_bounds is None) == estimate, row.name
        assert not (estimate and row.proven), row.name
    table = re.search(r"\| `within_bounds` \|([^\n]*)\n", DOC)
    assert table and "`null`" in table.group(1).split("|")[1] and "null" not in table.group(1).split("|")[0]


def test_overhead_is_added_to_roofline_tasks_only_as_documented():
    unit = ComputeUnit("u", peak_flops=1e12, memory_bandwidth=1e12, efficiency=0.5,
                       overhead_s=1e-3)
    b = GraphBuilder()
    b.task("roofline", flops=1e9)
    b.task("fixed", duration_s=0.01)
    b.task("collapsed", duration_s=0.01, comm=True)
    g = b.build()
    t = fixed_times(g, unit, Roofline().compute_times(g, unit))
    assert t.tolist() == pytest.approx([1e9 / 0.5e12 + 1e-3, 0.01 / 0.5, 0.01], rel=1e-12)
    row = next(line for line in SCENARIOS.splitlines() if line.startswith("| `overhead` |"))
    assert "every roofline-costed task; not to a task given a `duration`" in row
    assert "nor to communication" in row


def test_architecture_md_has_a_row_for_every_module_and_package() -> None:
    """docs/architecture.md's table names every top-level module (`x.py`) and package
    (`x/`) of leptonsim, and nothing that does not exist."""
    table = (ROOT / "docs" / "architecture.md").read_text().split("## Packages and modules")[1]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([a-z_]+(?:\.py|/))`", row)}
    package = ROOT / "leptonsim"
    actual = {p.name for p in package.glob("*.py") if not p.name.startswith("__")}
    actual |= {f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").exists()}
    assert named == actual


def _scenario_blocks() -> list[tuple[str, str]]:
    """Every ```toml block of docs/*.md (the tutorial has its own test) that is a whole
    scenario: it has a [scenario] table."""
    out = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        if page.name == "tutorial.md":
            continue
        for i, block in enumerate(re.findall(r"^```toml\n(.*?)^```", page.read_text(),
                                             re.M | re.S)):
            if re.search(r"^\[scenario\]", block, re.M):
                out.append((f"{page.name}#{i}", block))
    return out


SCENARIO_BLOCKS = _scenario_blocks()


@pytest.mark.parametrize(("where", "text"), SCENARIO_BLOCKS, ids=[w for w, _ in SCENARIO_BLOCKS])
def test_every_whole_scenario_the_docs_show_loads(where: str, text: str) -> None:
    from leptonsim.scenario import loads_each
    assert loads_each(text, file=f"docs/{where}")


def test_the_presets_page_shows_whole_scenarios() -> None:
    """Its examples are copied into files: each is a scenario, not a fragment."""
    blocks = re.findall(r"^```toml\n(.*?)^```", (ROOT / "docs" / "presets.md").read_text(),
                        re.M | re.S)
    assert blocks and all(re.search(r"^\[scenario\]", b, re.M) for b in blocks)


def test_every_summary_validates_against_the_printed_schema(
        results: list[RunResult], capsys: pytest.CaptureFixture[str]) -> None:
    """What `leptonsim schema --summary` promises holds for the files run writes, and
    the schema is closed: a key summary() gains without a schema line is refused."""
    import json

    import jsonschema

    from leptonsim.cli import main
    from leptonsim.summary_schema import summary_schema

    assert main(["schema", "--summary"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == summary_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for r in results:
        jsonschema.validate(json.loads(json.dumps(summary(r))), schema)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**summary(r), "unlisted": 1}, schema)
