"""ZeRO-1/2/3 and FSDP (issue 13, item 5): the model state each stage keeps, the
collectives it adds to the step graph, and its bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leptonsim.parallel.memory import model_state_bytes

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("zero, gb", [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_figure_1(zero: int, gb: float) -> None:
    """Rajbhandari et al., SC'20, Figure 1: 7.5B parameters, fp16 Adam (K = 12), dp 64:
    120 GB baseline, 31.4 GB (P_os), 16.6 GB (P_os+g), 1.9 GB (P_os+g+p), as printed
    (one decimal)."""
    state = model_state_bytes(7.5e9, 0.0, optimizer="adam", dtype_bytes=2, dp=64, zero=zero)
    assert round(sum(state) / 1e9, 1) == gb


counts = st.floats(0.0, 1e12)
dtypes = st.sampled_from([1, 2, 4, 8])
optimizers = st.sampled_from(["sgd", "adam"])


@given(counts, counts, optimizers, dtypes, st.integers(1, 4096))
def test_model_state_never_grows_with_the_stage(trainable: float, frozen: float,
                                                optimizer: str, dtype: int, dp: int) -> None:
    """Theorem: every term is non-increasing in the stage, and at dp = 1 every stage
    keeps exactly what zero = 0 keeps."""
    terms = [model_state_bytes(trainable, frozen, optimizer=optimizer, dtype_bytes=dtype,
                               dp=dp, zero=z) for z in range(4)]
    for lower, higher in zip(terms, terms[1:], strict=False):
        assert all(h <= lo for h, lo in zip(higher, lower, strict=True))
    ones = [model_state_bytes(trainable, frozen, optimizer=optimizer, dtype_bytes=dtype,
                              dp=1, zero=z) for z in range(4)]
    assert ones == [ones[0]] * 4


@given(counts, optimizers, dtypes, st.integers(1, 4096))
def test_stage_3_divides_the_whole_trainable_state_by_dp(trainable: float, optimizer: str,
                                                         dtype: int, dp: int) -> None:
    full = sum(model_state_bytes(trainable, 0.0, optimizer=optimizer, dtype_bytes=dtype))
    sharded = sum(model_state_bytes(trainable, 0.0, optimizer=optimizer, dtype_bytes=dtype,
                                    dp=dp, zero=3))
    assert sharded == pytest.approx(full / dp, rel=1e-12)


def _bert(extra: str, model_extra: str = "") -> str:
    text = (ROOT / "scenarios" / "bert_tensor_parallel.toml").read_text()
    text = text.replace('precision = "fp16"\n', f'precision = "fp16"\n{model_extra}', 1)
    return text.replace("[parallel]\ntp = 8\n", f"[parallel]\ntp = 8\n{extra}", 1)


@pytest.mark.parametrize("extra, model_extra, words", [
    ("zero = 4\n", "", "parallel.zero: expected an integer in [0, 3], found 4"),
    ("zero = -1\n", "", "parallel.zero: expected an integer in [0, 3], found -1"),
    ('zero = "3"\n', "", "parallel.zero: expected an integer in [0, 3], found '3'"),
    ("zero = 2\n", "training = false\n", "zero 2 shards training state"),
])
def test_bad_zero_is_one_line_exit_2(extra: str, model_extra: str, words: str,
                                     tmp_path: Path) -> None:
    scenario = tmp_path / "zero.toml"
    scenario.write_text(_bert(extra, model_extra))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "leptonsim", "run", str(scenario), "--out",
                           str(out)], capture_output=True, text=True, cwd=ROOT)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and proc.stdout == "" and not out.exists()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith(f"error: {scenario}: ") and words in lines[0]
