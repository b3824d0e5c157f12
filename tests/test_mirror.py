"""Data-parallel mirroring (parallel/mirror.py): one replica simulated for all gives the
full step's makespan, total work and energy, or is switched off."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.errors import ScenarioError
from leptonsim.result import run
from leptonsim.scenario import loads

REL = 1e-9


def _text(dp: int, pp: int, tp: int, m: int, zero: int, tp_mode: str, topology: str,
          per_node: int, width: int, seq: int, bandwidth: float, latency: float,
          schedule: str = "1f1b", chunks: int = 1, blocks: int = 2, network: str = "fifo",
          overlap: bool = False) -> str:
    units = dp * pp * tp
    block = ('{ op = "layernorm" }, { op = "attention", heads = 4 }, { op = "layernorm" }, '
             f'{{ op = "dense", units = {4 * width} }}, {{ op = "gelu" }}, '
             f'{{ op = "dense", units = {width} }}')
    hw = (f'topology = "two_level"\ntwo_level = {{ units_per_node = {per_node}, intra = '
          f'{{ latency = "{latency:.6g} us", bandwidth = "{bandwidth:.6g} GB/s" }}, inter = '
          f'{{ latency = "{2 * latency:.6g} us", bandwidth = "{bandwidth / 4:.6g} GB/s" }} }}'
          if topology == "two_level" else
          f'topology = "switch"\nlink = {{ latency = "{latency:.6g} us", '
          f'bandwidth = "{bandwidth:.6g} GB/s", energy_per_byte = "10 pJ/B" }}')
    unit = (f'[[hardware.units]]\nname = "gpu"\ncount = {units}\npeak = "50 TFLOP/s"\n'
            'memory_bandwidth = "1 TB/s"\nmemory = "80 GB"\nbusy_power = "300 W"\n'
            'idle_power = "50 W"')
    return f"""
[scenario]
name = "mirror"
[hardware]
{hw}
{unit}
[schedule]
network = "{network}"
[workload.model]
input_shape = [{seq}, {width}]
layers = [{', '.join([block] * blocks)}, {{ op = "dense", units = {2 * width} }}, {{ op = "softmax_xent" }}]
batch = {dp * m}
microbatches = {m}
[parallel]
dp = {dp}
pp = {pp}
tp = {tp}
zero = {zero}
tp_mode = "{tp_mode}"
schedule = "{schedule}"
chunks = {chunks}
bucket = "{width * width * 2:.6g} B"
dp_mode = "MODE"
""" + ("overlap_param_gather = true\n" if overlap else "")


def _run(text: str, mode: str):
    return run(loads(text.replace("MODE", mode))[0])


@st.composite
def cases(draw: st.DrawFn) -> str:
    dp, pp, tp = draw(st.integers(2, 4)), draw(st.integers(1, 3)), draw(st.sampled_from([1, 2]))
    interleaved = pp > 1 and draw(st.booleans())
    per_node = draw(st.sampled_from([d for d in range(1, dp * pp * tp + 1)
                                     if (dp * pp * tp) % d == 0]))
    zero = draw(st.sampled_from([0, 1, 2, 3]))
    return _text(dp, pp, tp, draw(st.integers(1, 3)) * (pp if interleaved else 1),
                 zero, draw(st.sampled_from(["full", "symmetric"])),
                 draw(st.sampled_from(["switch", "two_level"])), per_node,
                 draw(st.sampled_from([16, 32, 64])), draw(st.sampled_from([8, 16, 32])),
                 draw(st.floats(1, 600)), draw(st.floats(0.01, 10)),
                 "interleaved" if interleaved else draw(st.sampled_from(["1f1b", "gpipe"])),
                 2 if interleaved else 1, draw(st.integers(1, 2)) * (2 if interleaved else 1),
                 draw(st.sampled_from(["fifo", "fair", "store_and_forward"])),
                 zero in (1, 2) and draw(st.booleans()))


@settings(max_examples=60, deadline=None)
@given(cases())
def test_mirrored_step_equals_the_full_step(text):
    """Theorem: wherever auto mirrors, the mirrored step's makespan, total work, critical
    path, bytes and energy equal the full step's to 1e-9 relative, on every network
    (cut-through FIFO, max-min fair, store-and-forward); elsewhere auto builds the full
    step."""
    full, auto = _run(text, "full"), _run(text, "auto")
    assert full.scenario.step.config.dp_mode == "full"
    if auto.scenario.step.config.dp_mode == "full":
        assert auto.scenario.graph.size == full.scenario.graph.size
        return
    assert auto.scenario.graph.size < full.scenario.graph.size
    f, a = full.metrics, auto.metrics
    for name in ("makespan_s", "total_work_s", "capacity", "critical_path_s", "transfer_bytes"):
        assert getattr(a, name) == pytest.approx(getattr(f, name), rel=REL), name
    for part in ("compute_j", "idle_j", "network_j", "total_j"):
        assert getattr(auto.energy, part) == pytest.approx(getattr(full.energy, part),
                                                           rel=REL, abs=1e-15), part


def _case(**kw) -> str:
    base = dict(dp=4, pp=1, tp=2, m=2, zero=1, tp_mode="symmetric", topology="switch",
                per_node=4, width=32, seq=16, bandwidth=100.0, latency=1.0)
    return _text(**(base | kw))


@pytest.mark.parametrize("kw", [dict(), dict(zero=0), dict(zero=2, tp=1, m=3),
                                dict(topology="two_level", per_node=2),
                                dict(topology="two_level", per_node=1, tp=1, m=3),
                                dict(pp=2, m=4), dict(pp=3, m=3, zero=0),
                                dict(topology="two_level", per_node=2, pp=2, m=4),  # Llama 3's
                                dict(pp=2, m=4, schedule="interleaved", chunks=2)])
def test_auto_mirrors_where_nothing_tells_the_replicas_apart(kw):
    auto, full = _run(_case(**kw), "auto"), _run(_case(**kw), "full")
    assert auto.scenario.step.config.dp_mode == "mirrored"
    assert auto.metrics.makespan_s == pytest.approx(full.metrics.makespan_s, rel=REL)


@pytest.mark.parametrize("kw, reason", [
    (dict(zero=3), "ZeRO-3"),
    (dict(topology="two_level", per_node=2, tp=1), "turn at different hops"),  # near, far
    (dict(topology="two_level", per_node=8, pp=2), "turn at different hops"),  # 2 a node
    (dict(dp=1, m=2), "one replica")])
def test_auto_builds_every_replica_where_mirroring_would_not_be_exact(kw, reason):
    auto = _run(_case(**kw), "auto")
    assert auto.scenario.step.config.dp_mode == "full"
    with pytest.raises(ScenarioError, match=reason) as err:
        loads(_case(**kw).replace("MODE", "mirrored"))
    assert err.value.path == "parallel.dp_mode"


def test_the_report_says_which_mode_ran():
    from leptonsim.report import summary

    result = _run(_case(), "auto")
    assert summary(result)["symmetry"] == {"tp": "symmetric", "dp": "mirrored"}
    assert "dp_mode mirrored" in result.report()


def test_a_loop_back_stays_on_replica_0s_channels():
    """The mirrored ring message leaves by replica 0's uplink and comes back by its
    downlink: the same hops as the route to replica 1, none of replica 1's channels."""
    from leptonsim.parallel.mirror import routed

    scenario = loads(_case(topology="two_level", per_node=2, pp=2, m=4).replace(
        "MODE", "mirrored"))[0]
    cfg, cluster = scenario.step.config, scenario.cluster
    looped = routed(cfg, cluster)
    assert routed(replace(cfg, dp_mode="full"), cluster) is cluster
    r0, r1 = cfg.rank(0, 0, 0), cfg.rank(1, 0, 0)
    loop, direct = looped.route(r0, r1), cluster.route(r0, r1)
    names = [cluster.channels[c].name for c in loop]
    assert len(loop) == len(direct) == 4 and loop[:2] == direct[:2] and loop[2:] != direct[2:]
    assert all("node0." in n for n in names), names  # replica 0 is node 0
    assert cluster.route(r0, r1) == direct  # the scenario's own cluster is untouched
