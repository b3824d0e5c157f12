"""Validation (issue 3, part 5): real kernels for step-graph tasks, the calibrated
per-kind cost model, and `leptonsim validate` end to end on tiny scenarios."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from leptonsim.calibrate import CalibratedCost, Profile, write_profile
from leptonsim.graph import GraphBuilder
from leptonsim.kernels.registry import LOSSES
from leptonsim.ops import Embedding
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.step import build_step
from leptonsim.sim import Static
from leptonsim.validate import ModelKernels
from leptonsim.validate.calibration import calibration_batches, calibration_graph, fit_nonnegative
from leptonsim.validate.cli import main
from leptonsim.validate.compare import compare
from leptonsim.validate.cost import KernelCalibration, KindCost, KindFit, profile_cluster
from leptonsim.validate.figures import gantt_overlay
from leptonsim.zoo import get_model, lstm_lm

PROFILE = Profile(peak_flops=1e11, memory_bandwidth=1.5e10, overhead_s=5e-6,
                  link_latency_s=3e-5, link_bandwidth=4e9,
                  efficiency_curve=((1e3, 0.01), (6.5e4, 0.2), (5e5, 0.7), (3.4e7, 1.0)),
                  machine={"cpu": "test"})

SCENARIO = """
[scenario]
name = "tiny"
description = "seed_cnn, two pipeline stages"

[hardware]
topology = "full"

[[hardware.units]]
name = "gpu"
count = 2
preset = "v100"

[hardware.link]
preset = "pcie4_x16"

[workload.model]
name = "seed_cnn"
batch = 4
microbatches = 2
precision = "fp32"
optimizer = "sgd"

[parallel]
pp = 2
"""

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
    assert per_unit[0] == per_unit[1] and len(per_unit[0]) == 2 * 2 * len(model.layers) + 5
    kernels = ModelKernels(model, work, 3)
    keys = kernels.keys(graph.size)
    assert {keys[t] for t in work if graph.pin[t] == 0} == {keys[t] for t in work if graph.pin[t] == 1}


def test_calibration_never_uses_a_validated_micro_batch():
    for validated in ([1], [4], [16, 32, 64], [3, 6]):
        batches = calibration_batches(validated)
        assert batches and not set(batches) & set(validated)
        assert min(batches) <= min(validated) or min(validated) == 1


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


def test_validate_model_scenario_writes_its_files(tmp_path, profile_file, capsys):
    (tmp_path / "tiny.toml").write_text(SCENARIO)
    out = tmp_path / "out"
    assert main(["validate", str(tmp_path / "tiny.toml"), "--repeats", "1", "--no-wait",
                 "--profile", str(profile_file), "--out", str(out)]) == 0
    report = _files(out)
    assert np.isfinite(report["error"]) and report["measured_makespan_s"] > 0
    assert report["workers"] == 2 and len(report["measured_makespans_s"]) == 1
    assert {"conv2d", "conv2d.bwd", "optimizer"} <= set(report["by_kind"])
    assert all(np.isfinite(k["median_abs_error"]) for k in report["by_kind"].values())
    fits = report["calibration"]["fits"]
    assert "conv2d" in fits and 2 not in report["calibration"]["batches"]["seed_cnn"]
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
    (tmp_path / "tiny.toml").write_text(SCENARIO)
    argv = [a.replace("{tiny}", str(tmp_path / "tiny.toml")) for a in args]
    code = main(["validate", *argv, "--profile", str(profile_file), "--no-wait",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and needle in err
    assert not (tmp_path / "out").exists()


def test_measured_traces_start_at_their_first_task():
    from leptonsim.trace import Trace
    from leptonsim.validate.compare import shift_to_first_start

    t = Trace(["a", "b"], ["k", "k"], ["w0"], [], np.array([0, 1]), np.array([0, 0]),
              np.array([2e-4, 5e-4]), np.array([4e-4, 9e-4]), *([np.zeros(0)] * 6))
    shifted = shift_to_first_start(t)
    assert shifted.task_start.tolist() == [0.0, pytest.approx(3e-4)]
    assert shifted.makespan_s == pytest.approx(7e-4)
