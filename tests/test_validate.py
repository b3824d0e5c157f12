"""Validation (issue 3, part 5): real kernels for step-graph tasks, the calibrated
per-kind cost model, and `leptonsim validate` end to end on tiny scenarios."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from leptonsim.cli import main
from leptonsim.cost.calibrated import CalibratedCost, Profile, profile_cluster
from leptonsim.cost.kinds import Endpoints, KernelCalibration, KindCost, KindFit, endpoint_seconds
from leptonsim.execute.model_kernels import ModelKernels
from leptonsim.graph import GraphBuilder
from leptonsim.kernels.registry import LOSSES
from leptonsim.measure.calibrate import write_profile
from leptonsim.measure.calibration import (
    calibration_batches,
    calibration_graph,
    copy_costs,
    copy_graph,
    fit_nonnegative,
    measure_endpoints,
    neighbour_batches,
)
from leptonsim.ops import Embedding
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.step import build_step
from leptonsim.sim import Static
from leptonsim.sim.engine import run_plan
from leptonsim.trace import Trace
from leptonsim.validate.compare import compare
from leptonsim.validate.figures import gantt_overlay
from leptonsim.zoo import get_model, lstm_lm
from tests.helpers.scenarios import TINY

PROFILE = Profile(peak_flops=1e11, memory_bandwidth=1.5e10, overhead_s=5e-6,
                  link_latency_s=3e-5, link_bandwidth=4e9,
                  efficiency_curve=((1e3, 0.01), (6.5e4, 0.2), (5e5, 0.7), (3.4e7, 1.0)),
                  machine={"cpu": "test"})


GRAPH_SCENARIO = """
[scenario]
name = "fork"
description = "a small fork-join"

[hardware]
topology = "full"

[[hardware.units]]
name = "cpu"
count = 2
peak = "50 GFLOP/s"
memory_bandwidth = "10 GB/s"

[hardware.link]
latency = "20 us"
bandwidth = "4 GB/s"

[workload.generator]
kind = "fork_join"
width = 2
stages = 2
flops = "2 MFLOP"
bytes = "0 B"
edge_bytes = "16 kB"
"""


def _expected_output(model, work, mb):
    phase, layers = work
    if phase == "update":
        return None
    if phase == "F":
        last = model.layers[layers[-1]]
        return () if isinstance(last.op, LOSSES) else (mb, *last.output_shape)
    first = model.layers[layers[0]]
    return None if isinstance(first.op, Embedding) else (mb, *first.input_shape)


@pytest.mark.parametrize("model, batch", [(get_model("seed_cnn"), 4),
                                          (lstm_lm(vocab=50, embed=8, hidden=8, seq_len=5), 4)],
                         ids=["seed_cnn", "lstm"])
def test_model_kernels_give_every_work_item_its_output_shape(model, batch):
    cfg = ParallelConfig(pp=2, batch=batch, microbatches=2, dtype_bytes=4)
    step = build_step(model, cfg, profile_cluster(PROFILE, 2))
    assert step.work
    # shipped to workers by pickle: the copy must work and carry no caches
    kernels = pickle.loads(pickle.dumps(ModelKernels(model, step.work, cfg.microbatch_size)))
    g = step.graph
    for t in range(g.size):
        out = kernels.prepare(g, t)([])
        if t not in step.work:
            continue
        want = _expected_output(model, step.work[t], cfg.microbatch_size)
        if want is None:
            assert out is None or np.asarray(out).size == 0, g.names[t]
        else:
            assert np.shape(out) == want, g.names[t]
            assert np.asarray(out).dtype == np.float32 and np.isfinite(out).all(), g.names[t]


def test_update_kernel_changes_the_parameters_it_shares_with_forward():
    model = get_model("seed_cnn")
    graph, work = calibration_graph(model, ParallelConfig(batch=2, optimizer="sgd"), 1)
    kernels = ModelKernels(model, work, 2, optimizer="sgd")
    update = next(t for t, w in work.items() if w == ("update", (0,)))
    before = kernels.params(0)["kernel"].copy()
    kernels.prepare(graph, update)([])
    assert not np.array_equal(before, kernels.params(0)["kernel"])


def test_calibration_chains_run_on_every_worker_at_once():
    model = get_model("seed_cnn")
    graph, work = calibration_graph(model, ParallelConfig(batch=3), 2, copies=2)
    per_unit = [sorted(w for t, w in work.items() if graph.pin[t] == u) for u in (0, 1)]
    assert per_unit[0] == per_unit[1] and len(per_unit[0]) == 2 * (2 * len(model.layers) + 5)
    kernels = ModelKernels(model, work, 3)
    keys = kernels.keys(graph.size)
    assert {keys[t] for t in work if graph.pin[t] == 0} == {keys[t] for t in work if graph.pin[t] == 1}


def test_calibration_profiles_the_validated_sizes_and_neighbours_never_validated():
    for validated in ([1], [4], [16, 32, 64], [3, 6]):
        neighbours = neighbour_batches(validated)
        assert neighbours and not set(neighbours) & set(validated)
        assert min(neighbours) <= min(validated) or min(validated) == 1
        assert set(calibration_batches(validated)) == set(validated) | set(neighbours)


def test_nonnegative_fit_recovers_a_linear_kernel_model():
    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(12), rng.uniform(1e-5, 1e-2, 12), rng.uniform(1e-5, 1e-3, 12)])
    coef = np.array([2e-5, 1.7, 4.0])
    assert np.allclose(fit_nonnegative(x, x @ coef), coef, rtol=1e-6)
    assert min(fit_nonnegative(x, x @ np.array([1e-5, 0.0, 3.0]))) >= 0


def test_kind_cost_without_calibration_is_the_calibrated_roofline():
    b = GraphBuilder()
    b.task("a", flops=3e6, nbytes=1e5, pin=0, kind="gemm")
    b.task("b", flops=0.0, nbytes=8e6, pin=1, kind="copy")
    b.task("c", duration_s=1e-3, pin=0)
    b.task("d", duration_s=0.0, comm=True, pin=1)
    g = b.build()
    cluster = profile_cluster(PROFILE, 2)
    empty = KindCost(PROFILE, KernelCalibration({}))
    assert np.allclose(empty.task_times(g, cluster), CalibratedCost(PROFILE).task_times(g, cluster))
    fitted = KindCost(PROFILE, KernelCalibration({"gemm": KindFit(1e-4, 2.0, 0.0, 2e-5, 3)}))
    compute = 3e6 / (PROFILE.peak_flops * float(CalibratedCost(PROFILE).efficiency(np.array([3e6]))[0]))
    assert fitted.kernel_seconds(g)[0] == pytest.approx(1e-4 + 2.0 * compute)
    assert fitted.task_times(g, cluster)[0, 0] == pytest.approx(1e-4 + 2.0 * compute + 2e-5)


def test_overlay_draws_the_simulated_and_the_measured_run():
    b = GraphBuilder()
    x = b.task("x", flops=2e6, pin=0, kind="gemm")
    y = b.task("y", flops=2e6, pin=1, kind="gemm")
    b.edge(x, y, 4096)
    g = b.build()
    cluster = profile_cluster(PROFILE, 2)
    cost = KindCost(PROFILE, KernelCalibration({}))
    from leptonsim.execute import SyntheticKernels

    c = compare(g, cluster, Static().plan(g, cluster, cost.task_times(g, cluster)), cost,
                SyntheticKernels(), 1)
    fig = gantt_overlay(c.predicted, c.median_trace, "overlay")
    bars = [col for col in fig.axes[0].collections if isinstance(col, PolyCollection)]
    hatched = [col for col in bars if col.get_hatch()]
    # two units and one busy link, each drawn once simulated and once measured
    assert len(hatched) == 3 and len(bars) == 6
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert all("simulated" in s and "measured" in s for s in labels)


def _files(out: Path) -> dict:
    for name in ("scatter.png", "gantt_overlay.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return json.loads((out / "validation.json").read_text())


@pytest.fixture()
def profile_file(tmp_path) -> Path:
    return write_profile(PROFILE, tmp_path / "profile.toml")


# The end-to-end error this test may see. docs/validation.md records |error| <= 9.8 %
# for the benchmark's steps (b32, b128) behind the disturbance gate, median of 5. This
# test runs ungated (--no-wait), median of 3, on a small step (b4, tasks of 0.1-1 ms),
# on a 2-core machine that other jobs share: calibration and execution are then each
# slowed by whatever else runs. 21 such runs at load averages 4.4-6.0 gave -70 % to
# +110 %. A factor of 4 either way holds that with margin and still catches a unit slip
# or a prediction of another step (orders of magnitude); the accuracy itself is the
# benchmark's to measure (benchmarks/validation.py).
RATIO = 4.0


def test_validate_model_scenario_writes_its_files(tmp_path, profile_file, capsys):
    (tmp_path / "tiny.toml").write_text(TINY)
    out = tmp_path / "out"
    assert main(["validate", str(tmp_path / "tiny.toml"), "--repeats", "3", "--no-wait",
                 "--profile", str(profile_file), "--out", str(out)]) == 0
    report = _files(out)
    assert 1 / RATIO - 1 <= report["error"] <= RATIO - 1 and report["measured_makespan_s"] > 0
    assert report["workers"] == 2 and len(report["measured_makespans_s"]) == 3
    assert {"conv2d", "conv2d.bwd", "optimizer"} <= set(report["by_kind"])
    assert all(np.isfinite(k["median_abs_error"]) for k in report["by_kind"].values())
    fits = report["calibration"]["fits"]
    assert "conv2d" in fits and 2 in report["calibration"]["batches"]["seed_cnn"]
    assert report["cost_tier"] == "profiled"
    assert set(report["other_tiers"]) == {"interpolated", "kind"}
    assert all(1 / RATIO - 1 <= t["error"] <= RATIO - 1 for t in report["other_tiers"].values())
    link = report["calibration"]["link_to_idle_worker"]
    assert link["latency_s"] > 0 and link["bandwidth_Bps"] > 0
    assert "error" in capsys.readouterr().out


def test_validate_graph_scenario_uses_synthetic_kernels(tmp_path, profile_file):
    (tmp_path / "fork.toml").write_text(GRAPH_SCENARIO)
    out = tmp_path / "out"
    assert main(["validate", str(tmp_path / "fork.toml"), "--repeats", "1", "--no-wait",
                 "--profile", str(profile_file), "--out", str(out)]) == 0
    report = _files(out)
    assert np.isfinite(report["error"]) and report["calibration"]["fits"] == {}


@pytest.mark.parametrize("args, needle", [
    (["missing.toml"], "no such file"),
    (["{tiny}", "--repeats", "0"], "--repeats"),
    (["{tiny}", "--workers", "3"], "--workers"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, profile_file, capsys, args, needle):
    (tmp_path / "tiny.toml").write_text(TINY)
    argv = [a.replace("{tiny}", str(tmp_path / "tiny.toml")) for a in args]
    code = main(["validate", *argv, "--profile", str(profile_file), "--no-wait",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and needle in err
    assert not (tmp_path / "out").exists()


def test_variants_needing_more_cores_than_this_machine_are_skipped(
        tmp_path, profile_file, capsys, monkeypatch):
    monkeypatch.setattr("leptonsim.measure.machine.machine_cores", lambda: 1)
    (tmp_path / "tiny.toml").write_text(TINY + '\n[variants.one]\n"parallel.pp" = 1\n'
                                        '"hardware.units[0].count" = 1\n'
                                        '\n[variants.two]\n"parallel.pp" = 2\n')
    out = tmp_path / "out"
    assert main(["validate", str(tmp_path / "tiny.toml"), "--repeats", "1", "--no-wait",
                 "--profile", str(profile_file), "--out", str(out)]) == 0
    assert _files(out / "one")["workers"] == 1 and not (out / "two").exists()
    assert "skipped tiny [two]: it needs 2 workers, one per core, and this machine has 1" \
        in capsys.readouterr().err
    (tmp_path / "two.toml").write_text(TINY)  # nothing fits: one line, exit 2
    assert main(["validate", str(tmp_path / "two.toml"), "--no-wait", "--profile",
                 str(profile_file), "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "parallel: expected at most 1 workers" in err
    assert "found 2" in err and not (tmp_path / "none").exists()


def test_measured_traces_start_at_their_first_task():
    from leptonsim.validate.compare import shift_to_first_start

    t = Trace(["a", "b"], ["k", "k"], ["w0"], [], np.array([0, 1]), np.array([0, 0]),
              np.array([2e-4, 5e-4]), np.array([4e-4, 9e-4]), *([np.zeros(0)] * 6))
    shifted = shift_to_first_start(t)
    assert shifted.task_start.tolist() == [0.0, pytest.approx(3e-4)]
    assert shifted.makespan_s == pytest.approx(7e-4)


ENDS = Endpoints(send_s=1e-5, send_bandwidth=1e9, recv_s=2e-5, recv_bandwidth=5e8, latency_s=3e-5)


def _cross_graph(pinned: bool = True):
    """p (unit 0) sends 1 kB to c (unit 1) and 500 B to l (unit 0); z (unit 1) gates c
    with a zero-byte dependency."""
    b = GraphBuilder()
    p = b.task("p", flops=1e6, pin=0 if pinned else -1, kind="gemm")
    c = b.task("c", flops=1e6, pin=1, kind="gemm")
    local = b.task("l", flops=1e6, pin=0, kind="gemm")
    z = b.task("z", flops=1e6, pin=1, kind="gemm")
    b.edge(p, c, 1000.0)
    b.edge(p, local, 500.0)
    b.edge(z, c, 0.0)
    return b.build()


def test_endpoint_copies_are_charged_to_the_sender_and_the_receiver_only():
    copies = endpoint_seconds(_cross_graph(), ENDS)
    assert copies.tolist() == pytest.approx([1e-5 + 1000 / 1e9, 2e-5 + 1000 / 5e8, 0.0, 0.0])


def test_kind_cost_adds_the_copies_to_the_slots_of_pinned_graphs_only():
    cluster = profile_cluster(PROFILE, 2)
    plain, with_ends = KindCost(PROFILE, KernelCalibration({})), \
        KindCost(PROFILE, KernelCalibration({}, endpoints=ENDS))
    g = _cross_graph()
    added = with_ends.task_times(g, cluster) - plain.task_times(g, cluster)
    assert np.allclose(added, endpoint_seconds(g, ENDS)[None, :])
    assert np.array_equal(with_ends.kernel_seconds(g), plain.kernel_seconds(g))
    unpinned = _cross_graph(pinned=False)  # a scheduler places it: no copies to charge yet
    assert np.array_equal(with_ends.task_times(unpinned, cluster),
                          plain.task_times(unpinned, cluster))


def test_with_endpoints_the_link_only_carries_the_latency():
    cal = KernelCalibration({}, link=(1e-4, 1e9), endpoints=ENDS)
    assert cal.simulated_link == (ENDS.latency_s, float("inf"))
    assert KernelCalibration({}, link=(1e-4, 1e9)).simulated_link == (1e-4, 1e9)
    g = _cross_graph()
    cluster = profile_cluster(PROFILE, 2, cal.simulated_link)
    cost = KindCost(PROFILE, cal)
    times = cost.task_times(g, cluster)
    trace = run_plan(g, cluster, Static().plan(g, cluster, times), times)
    start = dict(zip(trace.task.tolist(), trace.task_start.tolist(), strict=True))
    # c's slot starts when p's slot (with its copy-in) ends plus the latency, not later
    assert start[1] == pytest.approx(max(start[0] + times[0, 0] + ENDS.latency_s,
                                         start[3] + times[0, 3]))


def test_copy_costs_recover_the_send_and_receive_costs_from_the_gaps():
    sizes, messages = (10_000, 400_000), 5
    g, size, sends = copy_graph(sizes, messages)
    send = {n: 2e-5 + n / 8e9 for n in sizes}
    recv = {n: 3e-5 + n / 6e9 for n in sizes}
    start, end = np.zeros(g.size), np.zeros(g.size)
    spins = np.flatnonzero(size >= 0)
    chains = [spins[g.pin[spins] == w] for w in (0, 1)]
    for w, chain in enumerate(chains):  # a timeline: gap 1e-5 plus what each gap carries
        t = 0.0
        for k, task in enumerate(chain):
            start[task], end[task] = t, t + float(g.duration_s[task])
            carried = (send[int(size[task])] if w == 0 and sends[task] else
                       recv[int(size[task])] if w == 1 and k >= 2 and sends[chains[0][k - 2]]
                       else 0.0)
            t = end[task] + 1e-5 + carried
    trace = Trace(g.names, g.kinds or (), ["w0", "w1"], [], spins, g.pin[spins], start[spins],
                  end[spins], *([np.zeros(0)] * 6))
    gap, got_send, got_recv = copy_costs(g, trace, size, sends, sizes)
    assert gap == pytest.approx(1e-5)
    assert got_send == pytest.approx([send[n] for n in sizes])
    assert got_recv == pytest.approx([recv[n] for n in sizes])


def test_endpoint_calibration_measures_positive_costs():
    ends = measure_endpoints(sizes=(16_000, 256_000), messages=3, repeats=2, runs=1)
    assert ends.send_s > 0 and ends.recv_s > 0 and ends.latency_s >= 0
    # positive and finite: how long 256 kB takes depends on the load, so no upper bound
    assert 0 < ends.send(256_000) < math.inf and 0 < ends.recv(256_000) < math.inf


def test_predicted_transfers_add_back_the_copies_the_slots_hold():
    from leptonsim.validate.compare import Comparison

    def trace(start, end):
        return Trace(["p", "c"], ["k", "k"], ["w0", "w1"], ["w0→w1"], np.array([0, 1]),
                     np.array([0, 1]), np.zeros(2), np.ones(2), np.array([0]), np.array([1]),
                     np.array([0]), np.array([1000.0]), np.array([start]), np.array([end]))

    sim, real = trace(1.0, 1.0 + ENDS.latency_s), trace(1.0, 1.0005)
    none = np.zeros(2, bool)
    plain = Comparison(sim, (real,), np.zeros(2), np.zeros(2), none)
    copied = Comparison(sim, (real,), np.zeros(2), np.zeros(2), none, copies=ENDS)
    assert plain.transfer_times()[0].tolist() == pytest.approx([ENDS.latency_s])
    assert copied.transfer_times()[0].tolist() == pytest.approx(
        [ENDS.latency_s + ENDS.send(1000.0) + ENDS.recv(1000.0)])
    assert copied.transfer_times()[1].tolist() == pytest.approx([5e-4])


def test_repeats_are_interleaved_across_cases(monkeypatch):
    """compare_all runs every case once per round, so a slow phase of the machine
    lands on one repeat of several cases; each case still gets all its repeats."""
    from leptonsim.execute import SyntheticKernels
    from leptonsim.validate import compare as cmp

    cluster = profile_cluster(PROFILE, 1)
    cost = KindCost(PROFILE, KernelCalibration({}))
    cases = []
    for flops in (1e6, 2e6, 3e6):
        b = GraphBuilder()
        b.task("x", flops=flops, pin=0, kind="gemm")
        g = b.build()
        cases.append(cmp.Case(g, cluster, Static().plan(g, cluster, cost.task_times(g, cluster)),
                              cost, SyntheticKernels()))
    order: list[float] = []
    real_once = cmp._once
    monkeypatch.setattr(cmp, "_once", lambda case, gate: (order.append(case.graph.flops[0]),
                                                           real_once(case, gate))[1])
    rounds: list[int] = []
    done = cmp.compare_all(cases, 2, progress=rounds.append)
    assert order == [1e6, 2e6, 3e6, 1e6, 2e6, 3e6] and rounds == [1, 2]
    assert [len(c.measured) for c in done] == [2, 2, 2]
