"""The study's bubble_s column: theorems on simulated pipeline steps.

bubble_s (study/row.py) is the idle time, summed over units, inside the pipeline's
window. For GPipe and 1F1B with uniform stages and free transfers each device idles
(p - 1)(t_f + t_b) of a window (m + p - 1)(t_f + t_b) (Huang et al. 2019; Narayanan
et al. 2021), formulas.gpipe_bubble_fraction of it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.formulas import gpipe_bubble_fraction
from leptonsim.result import RunResult, run
from leptonsim.scenario import loads
from leptonsim.study.row import bubble_s, metrics_row


def step(pp: int, m: int, schedule: str = "gpipe", *, training: bool = True, dp: int = 1,
         tp: int = 1, chunks: int = 1, bandwidth: str = "1e16 B/s",
         layers_per_stage: int = 2) -> RunResult:
    """A step of identical dense layers, `layers_per_stage` per virtual stage (so every
    stage costs the same), on dp·pp·tp equal units; the default link is all but free."""
    layer = '[[workload.model.layers]]\nop = "dense"\nunits = 128\n'
    return run(loads(f'''
[scenario]
name = "uniform"
[hardware]
topology = "full"
[[hardware.units]]
name = "gpu"
count = {dp * pp * tp}
peak = "10 TFLOP/s"
memory_bandwidth = "1 TB/s"
memory = "80 GB"
[hardware.link]
latency = "0 s"
bandwidth = "{bandwidth}"
[workload.model]
input_shape = [128]
batch = {4 * m * dp}
microbatches = {m}
training = {str(training).lower()}
{layer * (layers_per_stage * pp * chunks)}
[parallel]
dp = {dp}
pp = {pp}
tp = {tp}
schedule = "{schedule}"
chunks = {chunks}
''')[0])


def transfer_seconds(result: RunResult) -> float:
    t = result.trace
    return float(np.sum(t.xfer_end - t.xfer_start))


def kind_seconds(result: RunResult, kind: str) -> float:
    t = result.trace
    mine = np.array([t.task_kinds[i] == kind for i in t.task.tolist()], bool)
    return float(np.sum((t.task_end - t.task_start)[mine]))


def idle_s(result: RunResult) -> float:
    m = result.metrics
    return len(m.units) * m.makespan_s - sum(u.busy_s for u in m.units)


@settings(max_examples=25, deadline=None)
@given(pp=st.integers(2, 4), m=st.integers(1, 6), schedule=st.sampled_from(["gpipe", "1f1b"]))
def test_a_forward_pipeline_idles_the_gpipe_share(pp: int, m: int, schedule: str) -> None:
    result = step(pp, m, schedule, training=False)
    expected = gpipe_bubble_fraction(pp, m) * pp * result.metrics.makespan_s
    # The transfers are not quite free: each shifts the timeline and is counted as
    # communication, so it moves the bubble by at most (pp + 2) times its duration.
    assert bubble_s(result) == pytest.approx(expected, abs=(pp + 2) * transfer_seconds(result))
    assert bubble_s(result) > 0


@settings(max_examples=25, deadline=None)
@given(pp=st.integers(2, 4), m=st.integers(1, 6), schedule=st.sampled_from(["gpipe", "1f1b"]))
def test_a_training_pipeline_idles_the_gpipe_share_less_the_optimizer_in_the_drain(
        pp: int, m: int, schedule: str) -> None:
    result = step(pp, m, schedule)
    pipeline = [t for t, (what, _) in result.scenario.step.work.items() if what != "update"]
    t = result.trace
    on = np.isin(t.task, pipeline)
    window = float(t.task_end[on].max() - t.task_start[on].min())
    full = gpipe_bubble_fraction(pp, m) * pp * window
    slack = (pp + 2) * transfer_seconds(result)
    # A stage's optimizer step may start as soon as its own last backward ends, inside
    # the drain: that is work, not bubble, so it lowers the bubble by at most its length.
    assert full - kind_seconds(result, "optimizer") - slack <= bubble_s(result) <= full + slack
    assert bubble_s(result) > 0


@settings(max_examples=20, deadline=None)
@given(dp=st.integers(1, 2), tp=st.integers(1, 2), m=st.integers(1, 4), training=st.booleans(),
       schedule=st.sampled_from(["gpipe", "1f1b"]))
def test_without_a_pipeline_there_is_no_bubble(dp: int, tp: int, m: int, training: bool,
                                               schedule: str) -> None:
    result = step(1, m, schedule, training=training, dp=dp, tp=tp, bandwidth="10 GB/s")
    assert bubble_s(result) == 0.0
    assert metrics_row(result, None)["bubble_s"] == 0.0


@settings(max_examples=25, deadline=None)
@given(pp=st.integers(2, 4), groups=st.integers(1, 2), dp=st.integers(1, 2), tp=st.integers(1, 2),
       schedule=st.sampled_from(["gpipe", "1f1b", "interleaved"]), training=st.booleans(),
       bandwidth=st.sampled_from(["1 GB/s", "100 GB/s", "1e16 B/s"]))
def test_the_bubble_is_part_of_the_idle_time(pp: int, groups: int, dp: int, tp: int,
                                             schedule: str, training: bool, bandwidth: str) -> None:
    chunks = 2 if schedule == "interleaved" else 1
    result = step(pp, pp * groups, schedule, training=training, dp=dp, tp=tp, chunks=chunks,
                  bandwidth=bandwidth, layers_per_stage=1)
    row = metrics_row(result, None)
    assert row["bubble_s"] == bubble_s(result)
    assert 0.0 <= bubble_s(result) <= idle_s(result) * (1 + 1e-12)
