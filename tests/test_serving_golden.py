"""Golden run of the bundled serving scenario: every variant's summary figures.

Set LEPTONSIM_UPDATE_GOLDEN=1 to rewrite tests/golden/serve_llama3_8b_chat.json after
an intended change (docs/serving.md quotes these figures).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from leptonsim.scenario.serving import load_services
from leptonsim.serve.run import run
from tests.helpers.golden import check_golden

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("requests_per_s", "output_tokens_per_s", "goodput_requests_per_s", "preemptions",
        "mean_batch", "mean_kv_utilisation", "iterations")
LATENCIES = ("ttft", "tpot", "e2e")


def figures(summary: dict) -> dict[str, float]:
    out = {k: summary[k] for k in KEYS}
    out |= {f"{k}_{p}": summary[k][p] for k in LATENCIES for p in ("p50", "p99")}
    return out


@pytest.mark.parametrize("stem", ["serve_llama3_8b_chat"])
def test_golden_serving_run(stem: str) -> None:
    services = load_services(str(ROOT / "scenarios" / f"{stem}.toml"))
    got = {variant: figures(run(s).summary) for variant, s in services}
    check_golden(stem, got)
