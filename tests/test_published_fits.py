"""Runs published on 16, 32, 40 and 80 GB devices fit where they fitted (issue 13, item
6): every row of benchmarks/published.toml the scenario format can express is planned
(benchmarks/published.py's memory_of: the scenario_of split through ls.memory, nothing
simulated), and every stage of it fits the memory of the device it ran on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.scripts import benchmark

ROOT = Path(__file__).resolve().parents[1]


PUBLISHED = benchmark("published")
ROWS, PLATFORMS, STAND_INS = PUBLISHED.load()


def _expressible(row: dict) -> bool:
    try:
        PUBLISHED.model_of(row)
    except PUBLISHED.NotExpressible:
        return False
    return True


EXPRESSIBLE = [r for r in ROWS if _expressible(r)]


def test_the_rows_span_every_published_memory_size() -> None:
    sizes = {PLATFORMS[r["platform"]]["device"] for r in EXPRESSIBLE}
    assert {"v100_16gb", "v100", "a100_40gb", "a100_80gb", "h100_sxm"} <= sizes


@pytest.mark.parametrize("row", EXPRESSIBLE, ids=[r["id"] for r in EXPRESSIBLE])
def test_every_published_run_fits_its_device(row: dict) -> None:
    plan, hw = PUBLISHED.memory_of(row, PLATFORMS, STAND_INS)
    capacity = hw.units[0].memory_bytes  # one device kind per row
    worst = max(m.total_bytes for _, m in plan)
    assert worst <= capacity, f"{row['id']}: {worst / 2**30:.2f} GiB > {capacity / 2**30:.0f} GiB"
