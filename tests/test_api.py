"""The public API (leptonsim/api.py, leptonsim/__init__.py) and docs/api.md, whose every
```python block runs here, in order in one namespace as in a notebook, and prints
exactly the ```text block that follows it."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import leptonsim as ls
from leptonsim import sim
from leptonsim.cost import Roofline
from leptonsim.generators import TaskCost, layered
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"


def doc_blocks(text: str) -> list[tuple[int, str, str]]:
    """(line, language, text) of every fenced block of a markdown text."""
    out, lines, open_at, language = [], text.splitlines(), None, ""
    for number, line in enumerate(lines, 1):
        if open_at is None and line.startswith("```"):
            open_at, language = number, line[3:].strip()
        elif open_at is not None and line.startswith("```"):
            out.append((open_at, language, "\n".join(lines[open_at:number - 1]) + "\n"))
            open_at = None
    return out


def doc_examples(text: str) -> list[tuple[int, str, str | None]]:
    """Each python block with the text block right after it (None: no output shown)."""
    blocks = doc_blocks(text)
    return [(line, code, blocks[i + 1][2] if i + 1 < len(blocks) and blocks[i + 1][1] == "text"
             else None) for i, (line, language, code) in enumerate(blocks) if language == "python"]


def run_examples(examples: list[tuple[int, str, str | None]]) -> list[str]:
    """What each example prints, run in order in one namespace."""
    namespace: dict[str, object] = {"__name__": "docs_api"}
    printed = []
    for line, code, _ in examples:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"docs/api.md:{line}", "exec"), namespace)  # noqa: S102
        printed.append(out.getvalue())
    return printed


def test_every_example_of_docs_api_runs_and_prints_what_the_page_shows(tmp_path, monkeypatch):
    examples = doc_examples(DOC.read_text(encoding="utf-8"))
    assert len(examples) >= 8
    monkeypatch.chdir(tmp_path)  # an example writes out/bert
    for (line, _, shown), printed in zip(examples, run_examples(examples), strict=True):
        assert shown is not None, f"docs/api.md:{line}: show what the example prints"
        assert printed == shown, f"docs/api.md:{line} printed:\n{printed}"
    assert (tmp_path / "out" / "bert" / "summary.json").is_file()


def test_docs_api_lists_every_public_name():
    text = DOC.read_text(encoding="utf-8")
    missing = [n for n in ls.__all__ if f"`ls.{n}" not in text]
    assert not missing


def test_about_twenty_public_names_each_with_its_own_docstring():
    assert 18 <= len(ls.__all__) <= 24
    assert set(ls.__all__) == set(ls._HOME) and set(dir(ls)) >= set(ls.__all__)
    for name in ls.__all__:
        value = getattr(ls, name)
        assert value.__doc__ and value.__doc__.strip(), name
        assert value.__doc__ != type(value).__doc__ or isinstance(value, type), name
        assert not value.__doc__.startswith(f"{name}("), f"{name}: only the dataclass signature"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        ls.nothing  # noqa: B018


def test_import_leptonsim_imports_nothing_else():
    """The names load on first use: importing the package, or asking the CLI for help,
    loads neither the API nor NumPy."""
    code = "import sys, leptonsim.cli as c; c.parser(); print('leptonsim.api' in sys.modules)"
    bare = subprocess.run([sys.executable, "-c", "import sys, leptonsim; print(sorted(m for m in "
                           "sys.modules if m.startswith(('leptonsim.', 'numpy'))))"],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    assert bare.stdout.strip() == "[]"
    cli = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert cli.stdout.strip() == "False"


def test_no_public_name_is_also_a_module():
    """Importing a submodule binds it on the package, so a public function named like a
    module (leptonsim.run, once) would be replaced by it. With every module imported
    first, in a fresh interpreter, the API's functions are still functions."""
    code = ("import importlib, pkgutil, types, leptonsim as ls; "
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(ls.__path__, 'leptonsim.')"
            " if not m.name.endswith('__main__')]; "
            "print(isinstance(ls.run, types.FunctionType), isinstance(ls.model_names, types.FunctionType),"
            " isinstance(ls.formulas, types.ModuleType))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["True", "True", "True"]


CLUSTER = ls.cluster("a100_80gb", 8, link="nvlink3")


@pytest.mark.parametrize(("pp", "tp", "dp"), [(1, 1, 8), (2, 1, 4), (2, 2, 2), (1, 8, 1),
                                              (4, 2, 1)])
def test_dp_defaults_to_the_units_left_over(pp, tp, dp):
    cfg = ls.step("seed_cnn" if tp == 1 else "bert_large", CLUSTER, batch=64, pp=pp,
                  tp=tp).step.config
    assert (cfg.dp, cfg.pp, cfg.tp) == (dp, pp, tp)


def test_a_step_is_its_scenario_file_loaded(tmp_path):
    """ls.step and the same scenario written as TOML and loaded give the same run."""
    hardware = ls.cluster({"preset": "a100_80gb", "efficiency": 0.6}, 4,
                          link={"preset": "pcie4_x16", "latency": "5 us"}, topology="ring")
    step = ls.step("bert_base", hardware, batch=32, tp=2, microbatches=2, fuse=True)
    path = tmp_path / "same.toml"
    path.write_text("""
[scenario]
name = "bert_base"
[hardware]
topology = "ring"
units = [{ name = "a100_80gb", preset = "a100_80gb", count = 4, efficiency = 0.6 }]
link = { preset = "pcie4_x16", latency = "5 us" }
[workload.model]
name = "bert_base"
batch = 32
microbatches = 2
[parallel]
tp = 2
fuse = true
""", encoding="utf-8")
    [loaded] = ls.load(path)
    assert step.cluster == loaded.cluster == hardware.cluster
    assert step.step is not None and step.step.config == loaded.step.config  # type: ignore[union-attr]
    a, b = ls.run(step), ls.run(loaded)
    assert a.metrics.makespan_s == b.metrics.makespan_s
    assert a.report() == b.report()


def test_a_bad_preset_name_is_one_scenario_error_with_a_hint():
    with pytest.raises(ls.ScenarioError) as err:
        ls.cluster("a100_80g", 8, link="nvlink3")
    assert err.value.line() == (
        "ls.cluster: hardware.units[0].preset: expected a device preset ("
        + ", ".join(ls.devices()) + "), found 'a100_80g' (did you mean 'a100_80gb'?)")
    with pytest.raises(ls.ScenarioError, match=r"^ls\.cluster: hardware\.link\.preset: .*"
                                               r"found 'nvlnk3' \(did you mean 'nvlink3'\?\)$"):
        ls.cluster("a100_80gb", 2, link="nvlnk3")


@pytest.mark.parametrize(("call", "line"), [
    (lambda: ls.cluster("a100_80gb", 0, link="nvlink3"),
     "ls.cluster: hardware.units[0].count: expected an integer >= 1, found 0"),
    (lambda: ls.cluster("a100_80gb", 2),
     "ls.cluster: hardware.link: expected a link table (topology 'full' with 2 units needs one), "
     "found nothing"),
    (lambda: ls.cluster("a100_80gb", 2, link={"bandwidth": "-1 GB/s"}),
     "ls.cluster: hardware.link.bandwidth: expected a bandwidth > 0 such as '25 GB/s', "
     "found '-1 GB/s'"),
    (lambda: ls.step("bert_lage", CLUSTER, batch=8),
     f"ls.step: workload.model.name: expected one of {', '.join(map(repr, ls.model_names()))}, "
     "found 'bert_lage' (did you mean 'bert_large'?)"),
    (lambda: ls.step("bert_large", CLUSTER, batch=0),
     "ls.step: workload.model.batch: expected an integer >= 1, found 0"),
    (lambda: ls.step("bert_large", CLUSTER, batch=8, tp=3),
     "ls.step: parallel: expected dp x pp x tp equal to the 8 units of the hardware, "
     "found 2 x 1 x 3 = 6"),
    (lambda: ls.step("bert_large", CLUSTER, batch=8, schedule="gpipee"),
     "ls.step: parallel.schedule: expected one of 'gpipe', '1f1b', 'interleaved', found 'gpipee' "
     "(did you mean 'gpipe'?)"),
])
def test_a_mistake_is_the_line_a_scenario_file_would_give(call, line):
    with pytest.raises(ls.ScenarioError) as err:
        call()
    assert err.value.line() == line


def test_an_unknown_option_of_step_names_the_keys_and_the_closest():
    with pytest.raises(ls.ScenarioError, match=r"^ls\.step: microbatch: expected a key of "
                       r"workload\.model or parallel \(name, .*, embeddings\), found unknown key "
                       r"'microbatch' \(did you mean 'microbatches'\?\)$"):
        ls.step("bert_large", CLUSTER, batch=8, microbatch=4)


def test_run_chooses_the_scheduler_and_network_by_name():
    step = ls.step("seed_cnn", ls.cluster("a100_80gb", 2, link="nvlink3"), batch=16)
    for scheduler in sim.SCHEDULERS:
        for network in sim.NETWORKS:
            r = ls.run(step, scheduler=scheduler, network=network)
            assert (r.scenario.scheduler, r.scenario.network) == (scheduler, network)
            assert f"scheduler {scheduler}, network {network}" in r.report()
    assert ls.run(step).scenario.scheduler == step.scheduler


# -- the scheduler and the network, chosen the same way -----------------------------------

def _graph_and_cluster():
    cluster = fully_connected(replicate(ComputeUnit("u", 1e12, 1e11), 3), LinkSpec(1e-6, 1e9))
    return layered(40, 5, 2, TaskCost(flops=1e9, nbytes=1e6), 1e6, seed=3), cluster


@pytest.mark.parametrize("scheduler", sorted(set(sim.SCHEDULERS) - {"static"}))
@pytest.mark.parametrize("network", sorted(sim.NETWORKS))
def test_simulate_takes_both_by_name_as_the_registries_name_them(scheduler, network):
    graph, cluster = _graph_and_cluster()
    times = Roofline().task_times(graph, cluster)
    plan = sim.SCHEDULERS[scheduler]().plan(graph, cluster, times)
    by_name = ls.simulate(graph, cluster, scheduler, network=network)
    by_plan = sim.engine.run_plan(graph, cluster, plan, times, network)
    assert np.array_equal(by_name.task_start, by_plan.task_start)
    assert by_name.makespan_s == by_plan.makespan_s


@pytest.mark.parametrize(("argument", "value", "line", "scenario_line"), [
    ("scheduler", "hfet", "unknown scheduler 'hfet': expected one of 'static', 'heft', "
                          "'heft_contention', 'greedy'",
     "ls.run: schedule.scheduler: expected one of 'auto', 'static', 'heft', 'heft_contention', "
     "'greedy', found 'hfet' (did you mean 'heft'?)"),
    ("network", "fiffo", "unknown network 'fiffo': expected one of 'fifo', 'fair', "
     "'store_and_forward'",
     "ls.run: schedule.network: expected one of 'fifo', 'fair', 'store_and_forward', found 'fiffo' "
     "(did you mean 'fifo'?)"),
])
def test_an_unknown_scheduler_or_network_is_one_line_naming_the_choices(argument, value, line,
                                                                        scenario_line):
    """The engine names the choices; ls.run checks them as a file's [schedule] is."""
    graph, cluster = _graph_and_cluster()
    with pytest.raises(ValueError) as err:
        ls.simulate(graph, cluster, **{argument: value})
    assert str(err.value) == line
    step = ls.step("seed_cnn", ls.cluster("a100_80gb", 2, link="nvlink3"), batch=16)
    with pytest.raises(ls.ScenarioError) as scenario_err:
        ls.run(step, **{argument: value})
    assert str(scenario_err.value) == scenario_line


def test_ls_run_checks_a_scheduler_as_a_scenario_file_does():
    """The static scheduler needs every task pinned, in a file and in ls.run alike."""
    graph = ls.loads("""
[scenario]
name = "two tasks"
[hardware]
units = [{ name = "u", preset = "a100_80gb", count = 2 }]
link = { preset = "nvlink3" }
[[workload.tasks]]
name = "a"
duration = "1 s"
""")[0]
    with pytest.raises(ls.ScenarioError, match="every task pinned"):
        ls.run(graph, scheduler="static")
    assert ls.run(graph, scheduler="greedy").metrics.makespan_s > 0
