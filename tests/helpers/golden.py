"""Golden figures: a run's figures against tests/golden/NAME.json, or rewritten there when
LEPTONSIM_UPDATE_GOLDEN=1 (after an intended change)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def check_golden(stem: str, got: dict[str, dict[str, float]]) -> None:
    """Every variant's figures equal the golden file's, to 1e-9 relative."""
    golden = GOLDEN / f"{stem}.json"
    if os.environ.get("LEPTONSIM_UPDATE_GOLDEN") == "1":
        golden.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    expected = json.loads(golden.read_text())
    assert sorted(got) == sorted(expected)
    for variant, values in expected.items():
        for key, value in values.items():
            assert got[variant][key] == pytest.approx(value, rel=1e-9), f"{variant}.{key}"
