"""Host-side costs of an eager framework: the optimizer step as the kernels an unfused
optimizer runs (`update_kernels`, ops.base.chained_update), and the host's dispatch of
every kernel (`host_dispatch`, cost/gpu.py "Host dispatch")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.cost import GpuCost
from leptonsim.hardware import ComputeUnit
from leptonsim.ops.base import MASTER_BYTES, chained_update, update_cost
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.sync import optimizer_cost
from leptonsim.parallel.tensor import LayerRole
from leptonsim.scenario import loads
from tests.helpers.scenarios import a100_switch
from tests.helpers.steps import blocks

UNIT = ComputeUnit("u", 1e12, 1e11, overhead_s=5e-6)


# -- update_kernels ------------------------------------------------------------------------

def test_bert_adams_twelve_kernels_move_the_words_its_operands_count() -> None:
    """optimization.py's BertAdam on a weight-decayed fp32 tensor, operand by operand
    (reads + writes): m.mul_ 2, m.add_ 3, v.mul_ 2, v.addcmul_ 3, sqrt 2, + eps 2,
    m / (...) 3, decay x p 2, update += 3, lr x update 2, negation 2, p.add_ 3."""
    words = [2, 3, 2, 3, 2, 2, 3, 2, 3, 2, 2, 3]
    one = update_cost(1000, "update_adam", 4)
    chained = chained_update(one, "update_adam", 4, len(words))
    assert chained.bytes == sum(words) * 4 * 1000
    assert chained.kernels == len(words) and chained.flops == one.flops


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 10**7), st.sampled_from(["update_adam", "update_sgd"]),
       st.sampled_from([2, 4]), st.integers(1, 8), st.integers(1, 32))
def test_each_kernel_boundary_adds_an_intermediate_written_and_read(params, phase, dt,
                                                                    tensors, kernels) -> None:
    """Theorem: N kernels a tensor launch N x the tensors and move the one kernel's bytes
    plus 2 (N - 1) state words a parameter; N = 1 is the one kernel exactly."""
    one = update_cost(params, phase, dt, tensors)
    chained = chained_update(one, phase, dt, kernels)
    assert chained.kernels == tensors * kernels
    extra = 2 * (kernels - 1) * max(dt, MASTER_BYTES) * params
    assert chained.bytes == pytest.approx(one.bytes + extra, rel=1e-12)
    assert chained_update(one, phase, dt, 1) == one


def test_a_model_steps_its_tensors_unfused_at_update_kernels_each() -> None:
    model = blocks(2)
    roles = [LayerRole(False, "", "")] * len(model.layers)
    layers = tuple(range(len(model.layers)))
    plain = optimizer_cost(model, ParallelConfig(batch=1, dtype_bytes=4), roles, layers)
    twelve = optimizer_cost(model, ParallelConfig(batch=1, dtype_bytes=4, update_kernels=12),
                            roles, layers)
    assert twelve.kernels == 12 * plain.kernels
    assert twelve.bytes == pytest.approx(plain.bytes * 29 / 7, rel=1e-12)  # Adam fp32: 7 words
    assert twelve.flops == plain.flops


HEAD = a100_switch(1) + """[workload.model]
name = "gpt2_small"
batch = 4
precision = "fp32"
"""


def _optimizer_bytes(text: str) -> float:
    (s,) = loads(text)
    g = s.graph
    return float(g.nbytes[np.array(g.kinds) == "optimizer"].sum())


def test_the_scenario_key_reaches_the_optimizer_task() -> None:
    assert _optimizer_bytes(HEAD + "update_kernels = 12\n") == pytest.approx(
        _optimizer_bytes(HEAD) * 29 / 7, rel=1e-12)


@pytest.mark.parametrize(("keys", "line"), [
    ('update_kernels = 12\nfused = ["optimizer"]\n',
     "workload.model.update_kernels: expected 1 with fused = [\"optimizer\"]"),
    ("update_kernels = 0\n", "workload.model.update_kernels"),
    ('host_dispatch = "10 us"\n[cost]\nmodel = "roofline"\n',
     "workload.model.host_dispatch: expected 0 with cost.model = 'roofline'"),
    ('host_dispatch = "-1 us"\n', "workload.model.host_dispatch"),
])
def test_bad_keys_are_one_line(keys: str, line: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(HEAD + keys)
    assert main(["run", str(f), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and line in err[0], err


# -- host_dispatch -------------------------------------------------------------------------

@settings(max_examples=80, deadline=None)
@given(st.floats(0, 1e12), st.floats(0, 1e10), st.integers(0, 5000), st.floats(0, 1e-4))
def test_a_task_lasts_its_device_time_or_its_kernels_dispatch(flops, nbytes, kernels,
                                                              dispatch) -> None:
    """Theorem: with host dispatch h, a task of K kernels lasts max(t, K h), t its
    device time without it."""
    f, b, k = np.array([flops]), np.array([nbytes]), np.array([kernels])
    device = GpuCost().work_seconds(f, b, UNIT, kernels=k)
    hosted = GpuCost(host_dispatch=dispatch).work_seconds(f, b, UNIT, kernels=k)
    assert hosted[0] == pytest.approx(max(device[0], kernels * dispatch), rel=1e-12, abs=0)


def test_dispatch_shows_only_where_set_and_only_in_runs_of_small_kernels() -> None:
    """A 12-kernel-per-tensor fp32 update of small tensors is dispatch-bound at 10 us;
    the same scenario without host_dispatch is not, and its GEMM tasks do not move."""
    base = HEAD + "update_kernels = 12\n"
    (plain,) = loads(base)
    (eager,) = loads(base + 'host_dispatch = "10 us"\n')
    cost = [s.cost.compute_times(s.graph, s.cluster.units[0]) for s in (plain, eager)]
    kinds = np.array(plain.graph.kinds)
    opt = kinds == "optimizer"
    kernels = plain.graph.kernels[opt].sum()
    assert cost[1][opt].sum() == pytest.approx(max(cost[0][opt].sum(), kernels * 10e-6))
    assert cost[1][opt].sum() > cost[0][opt].sum()
    assert np.all(cost[1] >= cost[0])
    assert np.all(cost[1] == np.maximum(cost[0], plain.graph.kernels * 10e-6))
