"""Megatron sequence parallelism (Korthikanti et al., MLSys 2023, section 4.2.2): a
reduce-scatter and an all-gather in place of each all-reduce, the same bytes, the
per-token layers between them on 1/tp of the tokens."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.hardware import LinkSpec
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.tensor import layer_roles
from leptonsim.zoo import get_model
from tests.helpers.steps import run, transformer_block


def _wire_bytes(step) -> float:
    """Bytes of every edge between two units (the transfers the engine simulates)."""
    g = step.graph
    cross = g.pin[g.edge_src] != g.pin[g.edge_dst]
    return float(g.edge_bytes[cross].sum())


def _cfg(tp: int, m: int, sp: bool, **kw) -> ParallelConfig:
    return ParallelConfig(tp=tp, batch=2 * m, microbatches=m, sp=sp, optimizer="sgd", **kw)


def test_gpt2_roles_swap_every_all_reduce_after_the_first_norm():
    """12 blocks: 24 closers reduce-scatter, 24 openers gather (23 blocks' and the LM
    head's); only the first attention, after the replicated first norm, keeps its
    backward all-reduce."""
    model = get_model("gpt2_small")
    roles = layer_roles(model, sp=True)
    count = {key: sum(getattr(r, key.split(":")[0]) == key.split(":")[1] for r in roles)
             for key in ("forward_after:reducescatter", "forward_before:allgather",
                         "backward_before:allgather", "backward_after:reducescatter",
                         "backward_after:allreduce", "forward_after:allreduce")}
    assert count == {"forward_after:reducescatter": 24, "forward_before:allgather": 24,
                     "backward_before:allgather": 24, "backward_after:reducescatter": 24,
                     "backward_after:allreduce": 1, "forward_after:allreduce": 0}
    sequence = [layer.kind for layer, r in zip(model.layers, roles, strict=True) if r.sequence]
    # per block 2 dropouts, 2 adds and 2 norms (the next block's first; the final norm)
    assert set(sequence) == {"add", "dropout", "layernorm"} and len(sequence) == 6 * 12
    assert not any(r.sequence and r.sharded for r in roles)
    plain = layer_roles(model)
    assert [r.sharded for r in roles] == [r.sharded for r in plain]


@settings(max_examples=12, deadline=None)
@given(st.sampled_from([2, 4]), st.integers(1, 3), st.booleans())
def test_same_bytes_on_the_wire_less_compute(tp, m, recompute):
    """Ring all-reduce = reduce-scatter + all-gather: the transfers carry the same bytes;
    the FLOPs drop by exactly (tp - 1)/tp of the sequence-parallel layers'."""
    model = transformer_block()
    plain = run(model, _cfg(tp, m, False, recompute=recompute))[0]
    sp = run(model, _cfg(tp, m, True, recompute=recompute))[0]
    assert _wire_bytes(sp) == pytest.approx(_wire_bytes(plain), rel=1e-12)
    roles = layer_roles(model, sp=True)
    gap = [i for i, r in enumerate(roles) if r.sequence]
    assert [model.layers[i].name for i in gap] == ["ln2"]
    mb = plain.config.microbatch_size
    ln = model.layers[gap[0]]
    per_pass = (ln.cost(mb, "forward", 2).flops * (2 if recompute else 1)
                + ln.cost(mb, "backward_data", 2).flops + ln.cost(mb, "backward_weights", 2).flops)
    saved = tp * m * per_pass * (tp - 1) / tp  # on each of tp simulated ranks
    assert plain.graph.flops.sum() - sp.graph.flops.sum() == pytest.approx(saved, rel=1e-9)


@settings(max_examples=12, deadline=None)
@given(st.sampled_from([2, 4]), st.integers(1, 3), st.floats(1e-7, 1e-5), st.floats(1e9, 1e12))
def test_symmetric_equals_full_with_sequence_parallelism(tp, m, alpha, bw):
    """Nothing contends inside one group: the spelled-out reduce-scatters and all-gathers
    take their closed forms exactly, so the collapsed step lasts as long."""
    model = transformer_block()
    link = LinkSpec(alpha, bw)
    full = run(model, _cfg(tp, m, True, tp_mode="full"), link)
    sym = run(model, _cfg(tp, m, True, tp_mode="symmetric"), link)
    assert sym[2].makespan_s == pytest.approx(full[2].makespan_s, rel=1e-9)


@settings(max_examples=12, deadline=None)
@given(st.sampled_from([2, 4, 8]), st.floats(1e-7, 1e-5), st.floats(1e9, 1e12))
def test_collapsed_communication_time_is_unchanged_and_the_step_shorter(tp, alpha, bw):
    """Symmetric mode, ring: the collapsed collectives' summed time is the all-reduces'
    (2(p-1) alpha + 2(p-1)/p n/B either way), and the step is strictly shorter."""
    model = transformer_block(heads=8)
    link = LinkSpec(alpha, bw)
    out = {}
    for sp in (False, True):
        step, _, trace = run(model, _cfg(tp, 2, sp, tp_mode="symmetric", collective="ring"), link)
        comm = step.graph.comm
        out[sp] = (float(step.graph.duration_s[comm].sum()), trace.makespan_s,
                   step.collapsed_bytes.sum())
    assert out[True][0] == pytest.approx(out[False][0], rel=1e-9)
    assert out[True][2] == pytest.approx(out[False][2], rel=1e-12)
    assert out[True][1] < out[False][1]


def test_sp_is_a_no_op_without_tensor_parallelism():
    model = transformer_block()
    a = run(model, _cfg(1, 2, False))[0].graph
    b = run(model, _cfg(1, 2, True))[0].graph
    assert a.size == b.size and np.array_equal(a.flops, b.flops)
    assert np.array_equal(a.edge_bytes, b.edge_bytes)
