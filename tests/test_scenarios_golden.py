"""Golden runs of every bundled scenario: each variant still simulates to the same
figures, satisfies the trace invariants, and never violates a proven bound.

Set LEPTONSIM_UPDATE_GOLDEN=1 to rewrite tests/golden/ after an intended change.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from leptonsim.result import RunResult, run
from leptonsim.scenario import load
from tests.helpers.golden import check_golden
from tests.helpers.traces import check_trace_invariants

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(p for p in (ROOT / "scenarios").glob("*.toml")
               if not p.stem.startswith("serve_"))  # test_serving_golden.py runs those
KEYS = ("makespan_s", "critical_path_s", "total_work_s", "capacity", "parallel_efficiency",
        "transfer_bytes")


def figures(result: RunResult) -> dict[str, float]:
    return {k: getattr(result.metrics, k) for k in KEYS}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_run(path: Path) -> None:
    results = {s.variant or "base": run(s) for s in load(path)}
    for result in results.values():
        check_trace_invariants(result.scenario.graph, result.trace,
                               exclusive_channels=result.scenario.network != "fair")
        assert not [r.name for r in result.formulas if r.proven and not r.within_bounds]
    got = {variant: figures(r) for variant, r in results.items()}
    check_golden(path.stem, got)


def test_seed_case_study_matches_its_closed_forms() -> None:
    """100 layers of 10 s split at 5 s, 10 units at E = 0.8 (seed §4.3)."""
    runs = {s.variant: run(s).metrics.makespan_s for s in load(ROOT / "scenarios/seed_case_study.toml")}
    pieces, units, eff = 100 * math.ceil(10 / 5), 10, 0.8
    assert runs["independent"] == pytest.approx(math.ceil(pieces / units) * 5 / eff)  # 125 s
    assert runs["chain"] == pytest.approx(100 * 5 / eff)                              # 625 s
    assert runs["seed_assumptions"] == pytest.approx(math.ceil(100 / units) * 5)       # 50 s
