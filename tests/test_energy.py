"""Energy and cost of a run: a hand-computed trace, and properties of any run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.energy import EnergyReport, cost_usd, energy_of, hourly_price
from leptonsim.hardware import Cluster, ComputeUnit, Link, LinkSpec
from leptonsim.result import run
from leptonsim.scenario import loads
from leptonsim.sim import simulate
from leptonsim.trace import Trace
from tests.strategies import clusters, graphs


def _unit(name: str, idle: float, busy: float) -> ComputeUnit:
    return ComputeUnit(name, peak_flops=1e12, memory_bandwidth=1e11, idle_power_w=idle,
                       busy_power_w=busy)


def test_hand_computed_energy_of_a_tiny_trace() -> None:
    # u0 -- link a (1 nJ/B) -- sw -- link b (3 nJ/B) -- u1
    cluster = Cluster((_unit("u0", 10, 100), _unit("u1", 5, 50)),
                      (Link("a", "u0", "sw", LinkSpec(0.0, 1e9, energy_per_byte_j=1e-9)),
                       Link("b", "sw", "u1", LinkSpec(0.0, 1e9, energy_per_byte_j=3e-9))),
                      ("sw",))
    assert [c.name for c in cluster.channels][0] == "a u0→sw"
    trace = Trace(
        task_names=["t0", "t1"], task_kinds=["task", "task"], unit_names=["u0", "u1"],
        channel_names=[c.name for c in cluster.channels],
        task=np.array([0, 1]), task_unit=np.array([0, 1]),
        task_start=np.array([0.0, 3.0]), task_end=np.array([2.0, 4.0]),
        # one transfer of 1 MB from u0 to u1: hop u0→sw (channel 0), hop sw→u1 (channel 2)
        xfer_src_task=np.array([0, 0]), xfer_dst_task=np.array([1, 1]),
        xfer_channel=np.array([0, 2]), xfer_bytes=np.array([1e6, 1e6]),
        xfer_start=np.array([2.0, 2.5]), xfer_end=np.array([2.5, 3.0]))
    report = energy_of(cluster, trace)
    # makespan 4 s; u0 busy 2 s, idle 2 s; u1 busy 1 s, idle 3 s
    assert report.compute_j == pytest.approx(2 * 100 + 1 * 50)
    assert report.idle_j == pytest.approx(2 * 10 + 3 * 5)
    assert report.network_j == pytest.approx(1e6 * 1e-9 + 1e6 * 3e-9)
    assert report.total_j == pytest.approx(250 + 35 + 4e-3)


def test_cost_and_hourly_price() -> None:
    assert cost_usd(1800.0, 4, 2.0) == pytest.approx(4.0)
    assert cost_usd(0.0, 8, 3.0) == 0.0
    assert hourly_price([1.0, None, 2.0], 0.5) == pytest.approx(3.5)
    assert hourly_price([1.0, None], None) is None
    assert hourly_price([], None) == 0.0


def _powered(cluster: Cluster, idle: float, busy: float) -> Cluster:
    units = tuple(dataclasses.replace(u, idle_power_w=idle, busy_power_w=busy)
                  for u in cluster.units)
    return Cluster(units, cluster.links, cluster.switches)


WATTS = st.floats(0, 500, allow_subnormal=False)  # a subnormal power underflows the bound's product


@settings(max_examples=40, deadline=None)
@given(graphs(), clusters(), WATTS, WATTS, WATTS)
def test_energy_bounds_and_monotone_in_busy_power(graph, cluster, idle, busy, more) -> None:
    busy = max(busy, idle)  # a unit never draws less computing than idling
    trace = simulate(graph, _powered(cluster, idle, busy))
    report = energy_of(_powered(cluster, idle, busy), trace)
    makespan = trace.makespan_s
    assert report.total_j >= idle * cluster.size * makespan * (1 - 1e-9)
    assert report.total_j <= busy * cluster.size * makespan * (1 + 1e-9) + report.network_j
    higher = energy_of(_powered(cluster, idle, busy + more), trace)
    assert higher.total_j >= report.total_j
    assert higher.idle_j == report.idle_j and higher.network_j == report.network_j


def test_energy_of_a_scenario_run_counts_link_energy() -> None:
    text = """
[scenario]
name = "two units"
[hardware]
topology = "full"
[[hardware.units]]
name = "u"
count = 2
peak = "1 TFLOP/s"
memory_bandwidth = "1 TB/s"
idle_power = "10 W"
busy_power = "100 W"
[hardware.link]
bandwidth = "1 GB/s"
energy_per_byte = "5 pJ/B"
[workload]
tasks = [
  { name = "a", duration = "1 s", unit = "u0" },
  { name = "b", duration = "1 s", unit = "u1", inputs = [{ from = "a", bytes = "1 GB" }] },
]
[schedule]
scheduler = "static"
"""
    result = run(loads(text)[0])
    report = result.energy
    assert isinstance(report, EnergyReport)
    assert result.metrics.makespan_s == pytest.approx(3.0)  # 1 s, 1 s transfer, 1 s
    assert report.network_j == pytest.approx(1e9 * 5e-12)
    assert report.compute_j == pytest.approx(2 * 100.0)
    assert report.idle_j == pytest.approx(2 * 2 * 10.0)

