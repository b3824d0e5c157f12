"""The memory report (issue 13, item 6): each term per pipeline stage, in the terminal
report and summary.json, adding up to the stage's total, with what the terms assume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import leptonsim as ls

TINY = {"transformer": {"name": "tiny", "layers": 4, "hidden": 256, "heads": 4, "vocab": 1024,
                        "seq": 128, "dropout": 0.1}}
TERMS = ("weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes")


@pytest.fixture(scope="module")
def run() -> ls.RunResult:
    cluster = ls.cluster("a100_80gb", 8, link="nvlink3")
    return ls.run(ls.step(TINY, cluster, batch=16, dp=2, pp=2, tp=2, microbatches=4, zero=1,
                          recompute="selective", sp=True))


def test_summary_terms_add_up_to_each_stage_total(run: ls.RunResult, tmp_path: Path) -> None:
    ls.write_outputs(run, tmp_path)
    rows = json.loads((tmp_path / "summary.json").read_text())["memory"]
    assert [r["where"] for r in rows] == ["stage 0 (a100_80gb0)", "stage 1 (a100_80gb2)"]
    for row in rows:
        assert all(row[t] > 0 for t in TERMS)
        assert math.isclose(sum(row[t] for t in TERMS), row["total_bytes"], rel_tol=1e-12)


def test_summary_rows_are_the_memory_plan(run: ls.RunResult, tmp_path: Path) -> None:
    """What the report says is what ls.memory plans for the same step, term by term."""
    ls.write_outputs(run, tmp_path)
    rows = json.loads((tmp_path / "summary.json").read_text())["memory"]
    cluster = ls.cluster("a100_80gb", 8, link="nvlink3")
    plan = ls.memory(TINY, cluster, batch=16, dp=2, pp=2, tp=2, microbatches=4, zero=1,
                     recompute="selective", sp=True)
    for row, (where, m) in zip(rows, plan, strict=True):
        assert row["where"] == where
        assert [row[t] for t in TERMS] == [getattr(m, t) for t in TERMS]


def test_notes_say_how_zero_shards_and_how_many_micro_batches_a_stage_holds(
        run: ls.RunResult, tmp_path: Path) -> None:
    ls.write_outputs(run, tmp_path)
    rows = json.loads((tmp_path / "summary.json").read_text())["memory"]
    for row in rows:
        assert "ZeRO-1: optimizer state and fp32 master weights sharded over dp 2" in row["notes"]
        assert "activations: recompute selective, sequence parallel" in row["notes"]
    # 1F1B: stage s of p holds p - s micro-batches at its peak (Narayanan et al. SC'21)
    assert rows[0]["notes"][-1].startswith("2 micro-batches in flight")
    assert rows[1]["notes"][-1].startswith("1 micro-batch in flight")


def test_terminal_report_lists_every_term_of_every_stage(run: ls.RunResult) -> None:
    text = run.report()
    for where, _ in run.scenario.step.memory:  # type: ignore[union-attr]
        line = next(x for x in text.splitlines() if x.strip().startswith(where))
        for word in ("weights", "grads", "optimizer", "activations", "in flight"):
            assert word in line
    assert "ZeRO-1: optimizer state and fp32 master weights sharded over dp 2" in text
