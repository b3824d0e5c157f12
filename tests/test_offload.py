"""Optimizer and activation offload over each unit's PCIe host link (parallel.offload):
the transfers and the CPU's Adam simulated, the memory without the offloaded terms."""

from __future__ import annotations

import re
from importlib.resources import files

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.errors import ScenarioError
from leptonsim.hardware import Cluster, ComputeUnit, LinkSpec, replicate, switch
from leptonsim.models import LayerStack
from leptonsim.ops import Dense
from leptonsim.parallel import offload
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.step import build_step
from leptonsim.parallel.tensor import layer_roles
from leptonsim.presets import host_presets, link_presets
from leptonsim.result import run
from leptonsim.scenario import loads
from leptonsim.sim import simulate
from leptonsim.zoo import get_model

GPU = ComputeUnit("gpu", peak_flops=100e12, memory_bandwidth=1e12, efficiency=0.8)
LLAMA = """
[scenario]
name = "llama2_7b on one A100"
[hardware]
units = [{{ name = "gpu", count = 1, preset = "{preset}" }}]
[workload.model]
name = "llama2_7b"
batch = 1
recompute = "selective"
[parallel]
{parallel}
"""


def mlp(width: int, layers: int):  # type: ignore[no-untyped-def]
    stack = LayerStack("mlp", (16, width))
    for i in range(layers):
        stack.add(f"fc{i}", Dense(width))
    return stack.build()


@settings(max_examples=25, deadline=None)
@given(width=st.integers(8, 256), layers=st.integers(1, 4),
       bandwidth=st.floats(1e9, 1e11), latency=st.floats(0.0, 1e-5),
       bus=st.floats(0.1, 1.0), rate=st.floats(1e7, 1e10))
def test_uncontended_offload_transfers_and_adam_take_their_closed_form(
        width, layers, bandwidth, latency, bus, rate) -> None:
    """Theorem: with one gradient bucket, each host-link transfer (the gradients down,
    the parameters up) lasts latency + bytes / (bandwidth x bus efficiency) exactly,
    its bytes are 2 per parameter, and the CPU's Adam lasts parameters / rate."""
    model = mlp(width, layers)
    host = offload.Host(LinkSpec(latency, bandwidth, bus_efficiency=bus), rate)
    cfg = ParallelConfig(batch=16, offload_optimizer=True, bucket_bytes=1e15)
    step = build_step(model, cfg, Cluster((GPU,)), host=host)
    trace = simulate(step.graph, step.hosts, "static")  # type: ignore[arg-type]
    params = model.params()
    assert len(trace.xfer_bytes) == 2  # one bucket down, one up
    np.testing.assert_array_equal(trace.xfer_bytes, [2.0 * params] * 2)
    rate_on_link = bandwidth * bus  # the channel's achievable bandwidth
    np.testing.assert_array_equal(trace.xfer_end, trace.xfer_start + (
        latency + 2.0 * params * (1.0 / rate_on_link)))
    adam = [i for i, t in enumerate(trace.task) if ".adam." in step.graph.names[t]]
    assert len(adam) == 1
    assert trace.task_end[adam[0]] == trace.task_start[adam[0]] + params / rate
    assert {trace.unit_names[u] for u in trace.task_unit[adam]} == {"gpu.host"}


@pytest.mark.parametrize("dp, tp, zero", [(1, 1, 0), (2, 1, 0), (2, 1, 1), (2, 2, 2)])
def test_memory_with_offload_is_below_by_exactly_the_offloaded_terms(dp, tp, zero) -> None:
    model = mlp(64, 6)
    cluster = switch(replicate(GPU, dp * tp), LinkSpec(1e-6, 1e11))
    host = offload.Host(LinkSpec(1e-6, 3e10), 1e9)
    base = dict(dp=dp, tp=tp, zero=zero, batch=4 * dp, microbatches=2)
    without = build_step(model, ParallelConfig(**base), cluster).memory[0][1]
    optim = build_step(model, ParallelConfig(**base, offload_optimizer=True), cluster,
                       host=host).memory[0][1]
    acts = build_step(model, ParallelConfig(**base, offload_activations=True), cluster,
                      host=host).memory[0][1]
    cfg = ParallelConfig(**base)
    sharded = [r.sharded for r in layer_roles(model)] if tp > 1 else [False] * len(model.layers)
    moved = offload.offloaded_activations(model, (0, len(model.layers)), cfg, sharded, 1)
    assert without.optimizer_bytes > 0 and moved > 0
    assert optim.total_bytes == without.total_bytes - without.optimizer_bytes
    assert acts.activations_bytes == pytest.approx(without.activations_bytes - moved, rel=1e-12)
    assert acts.total_bytes < without.total_bytes


def test_llama2_7b_fits_one_a100_only_with_optimizer_offload_and_moves_4_bytes_a_param(
        ) -> None:
    """16 B/param (108 GB) does not fit 80 GB; offloaded, 4 B/param (fp16 weights and
    gradients) does, and the step sends each parameter's gradient down and its update
    up over PCIe 4.0 x16: ZeRO-Offload's 4 bytes per parameter (Ren et al. 2021, 4.1)."""
    with pytest.raises(ScenarioError, match="fits in each unit's memory"):
        loads(LLAMA.format(preset="a100_80gb", parallel=""))
    [s] = loads(LLAMA.format(preset="a100_80gb", parallel="offload = { optimizer = true }"))
    params = get_model("llama2_7b").params()
    memory = s.step.memory[0][1]  # type: ignore[union-attr]
    assert memory.weights_bytes + memory.gradients_bytes == 4 * params
    assert memory.optimizer_bytes == 0
    result = run(s)
    names = result.trace.channel_names
    pcie = [c for c, n in enumerate(names) if n.startswith("gpu.pcie")]
    moved = np.bincount(result.trace.xfer_channel, result.trace.xfer_bytes, len(names))[pcie]
    np.testing.assert_allclose(sorted(moved), [2.0 * params] * 2, rtol=1e-12)
    link = link_presets()[host_presets()["links"]["a100_80gb"]]
    assert link["bandwidth"] == "31.5 GB/s"
    # the same step on a GPU that holds Adam's state runs faster: no PCIe, no CPU Adam
    [big] = loads(LLAMA.format(preset="a100_80gb", parallel="").replace(
        'preset = "a100_80gb"', 'preset = "a100_80gb", memory = "200 GiB"'))
    slow, fast = result.metrics.makespan_s, run(big).metrics.makespan_s
    cpu_adam = params / host_presets()["cpu_adam"]["params_per_s"]
    assert slow > fast + cpu_adam / 2


def test_activation_offload_sends_each_segment_down_and_up() -> None:
    """Every segment but a virtual stage's last goes down after its forward and comes up
    before its backward, the same bytes both ways, and the backward waits for it."""
    model = mlp(32, 5)
    host = offload.Host(LinkSpec(1e-6, 3e10), 1e9)
    cfg = ParallelConfig(batch=8, microbatches=2, offload_activations=True)
    step = build_step(model, cfg, Cluster((GPU,)), host=host)
    trace = simulate(step.graph, step.hosts, "static")  # type: ignore[arg-type]
    down = [c for c, n in enumerate(trace.channel_names) if "gpu→gpu.host" in n]
    up = [c for c, n in enumerate(trace.channel_names) if "gpu.host→gpu" in n]
    per = np.bincount(trace.xfer_channel, trace.xfer_bytes, len(trace.channel_names))
    assert per[down] == per[up] > 0
    assert np.isin(trace.xfer_channel, down).sum() == 4 * cfg.microbatches  # 5 layers, 4 moved
    end = dict(zip(trace.xfer_dst_task.tolist(), trace.xfer_end.tolist(), strict=True))
    start = dict(zip(trace.task.tolist(), trace.task_start.tolist(), strict=True))
    assert all(start[t] >= e for t, e in end.items())


def test_offload_off_leaves_the_step_as_it_was() -> None:
    model = mlp(32, 3)
    cfg = ParallelConfig(batch=4)
    step = build_step(model, cfg, Cluster((GPU,)))
    assert step.hosts is None
    assert build_step(model, cfg, Cluster((GPU,)), host=offload.Host(
        LinkSpec(1e-6, 1e10), 1e9)).graph.names == step.graph.names


@pytest.mark.parametrize("edit, words", [
    ("offload = { optimiser = true }", "parallel.offload.optimiser: expected a key of"),
    ("offload = { optimizer = true }\nzero = 3", "parallel.offload.optimizer: expected zero 0"),
    ("offload = { activations = true }\nfuse = true", "parallel.offload.activations: "),
])
def test_bad_offload_input_is_one_line_exit_2(edit, words, tmp_path, capsys) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(LLAMA.format(preset="a100_80gb", parallel=edit))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: "), err
    assert words in err, err


def test_offload_without_a_host_link_is_one_line_exit_2(tmp_path, capsys) -> None:
    """The V100 preset names no host link (no PCIe 3 preset): the file must give one."""
    path = tmp_path / "v100.toml"
    path.write_text(LLAMA.format(preset="v100", parallel="offload = { optimizer = true }"))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "parallel.offload.host_link: expected a link table" in err, err
    assert not (tmp_path / "out").exists()


def test_every_host_preset_names_a_link_preset_and_has_a_source() -> None:
    catalog = host_presets()
    assert set(catalog["links"].values()) <= set(link_presets())
    assert catalog["cpu_adam"]["params_per_s"] > 0
    lines = files("leptonsim.presets").joinpath("hosts.toml").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z0-9_]+\s*=", line):
            assert "#" in line or lines[i - 1].startswith("#"), line


def test_a_given_host_link_replaces_the_catalogs() -> None:
    """A V100 (PCIe 3.0 x16, 15.75 GB/s a direction) offloads over the link the file gives."""
    parallel = 'offload = { optimizer = true, host_link = { preset = "pcie4_x16", ' \
               'bandwidth = "15.75 GB/s" } }'
    text = LLAMA.format(preset="v100", parallel=parallel).replace("llama2_7b", "gpt2_small")
    [s] = loads(text)
    pcie = [c for c in s.cluster.channels if c.name.startswith("gpu.pcie")]
    assert [c.bandwidth for c in pcie] == [15.75e9 * 0.7] * 2  # pcie4_x16's bus efficiency


@pytest.mark.parametrize("zero, microbatches", [(0, 2), (1, 2), (2, 1), (2, 3)])
def test_each_rank_sends_its_shard_down_per_reduction_and_up_once(zero, microbatches) -> None:
    """Under ZeRO each rank offloads its 1/dp shard (ZeRO-Offload on ZeRO-2, section 4.2),
    every micro-batch's under ZeRO-2 (each is reduce-scattered); the update comes up once."""
    model, dp = mlp(64, 4), 2
    cluster = switch(replicate(GPU, dp), LinkSpec(1e-6, 1e11))
    host = offload.Host(LinkSpec(1e-6, 3e10), 1e9)
    cfg = ParallelConfig(dp=dp, zero=zero, batch=dp * microbatches, microbatches=microbatches,
                         offload_optimizer=True)
    step = build_step(model, cfg, cluster, host=host)
    trace = simulate(step.graph, step.hosts, "static")  # type: ignore[arg-type]
    per = np.bincount(trace.xfer_channel, trace.xfer_bytes, len(trace.channel_names))
    shard = 2.0 * model.params() / (dp if zero else 1)
    reductions = microbatches if zero == 2 else 1
    for d in range(dp):
        down = trace.channel_names.index(f"gpu{d}.pcie gpu{d}→gpu{d}.host")
        up = trace.channel_names.index(f"gpu{d}.pcie gpu{d}.host→gpu{d}")
        assert per[down] == pytest.approx(reductions * shard, rel=1e-12)
        assert per[up] == pytest.approx(shard, rel=1e-12)
