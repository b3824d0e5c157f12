"""The scenario pipeline's stages (parse -> variants -> normalize -> build hardware ->
build workload), the two bugs they fixed, variants that cannot be built, keys that
would have no effect, and the one "did you mean"."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.errors import DoesNotFit, ScenarioError, closest, did_you_mean
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate
from leptonsim.limits import SIZES
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.step import build_step
from leptonsim.scenario import (
    Unbuilt,
    build_hardware,
    build_workload,
    check_structure,
    loads,
    loads_each,
    normalize,
    parse,
    schema,
    variants,
)
from leptonsim.scenario.variants import Override, apply_override, overridden, parse_key_path
from leptonsim.zoo import get_model

HEAD = '''
[scenario]
name = "s"

[[hardware.units]]
name = "gpu"
count = {units}
preset = "a100_80gb"

[hardware.link]
preset = "nvlink3"
'''
CNN = HEAD + '''
[workload.model]
name = "seed_cnn"
batch = 8
'''
CHAIN = HEAD + '''
[workload.generator]
kind = "chain"
tasks = 4
duration = "1 ms"
'''


def _one_line_error(text: str, path: str) -> str:
    with pytest.raises(ScenarioError) as info:
        loads(text, file="f.toml")
    assert info.value.path == path, info.value.line()
    line = info.value.line()
    assert "\n" not in line
    return line


# -- bug 1: [schedule] network = "fifo" changed a DNN step's scheduler ------------------

@pytest.mark.parametrize("schedule", ["", '[schedule]\nnetwork = "fifo"\n',
                                      '[schedule]\nnetwork = "fair"\n',
                                      '[schedule]\nscheduler = "auto"\n'])
def test_a_dnn_step_is_scheduled_static_whatever_else_schedule_says(schedule: str) -> None:
    (s,) = loads(CNN.format(units=2) + schedule)
    assert s.scheduler == "static"


@pytest.mark.parametrize("schedule", ["", '[schedule]\nnetwork = "fair"\n'])
def test_a_task_graph_is_scheduled_heft_by_default(schedule: str) -> None:
    (s,) = loads(CHAIN.format(units=2) + schedule)
    assert s.scheduler == "heft"


def test_fifo_named_or_not_gives_the_same_run() -> None:
    from leptonsim.result import run

    plain, named = (run(loads(CNN.format(units=2) + extra)[0]).metrics.makespan_s
                    for extra in ("", '[schedule]\nnetwork = "fifo"\n'))
    assert plain == named


# -- bug 2: optimize built and memory-checked the file's own [parallel] ------------------

GPT3_64 = '''
[scenario]
name = "GPT-3 175B on 64 A100"

[hardware]
topology = "two_level"

[[hardware.units]]
name = "gpu"
count = 64
preset = "a100_80gb"

[hardware.two_level]
units_per_node = 8
intra = { preset = "nvlink3" }
inter = { preset = "infiniband_hdr" }

[workload.model]
name = "gpt3_175b"
batch = 64
'''


def test_optimize_finds_a_split_of_gpt3_where_plain_data_parallelism_does_not_fit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "gpt3.toml"
    f.write_text(GPT3_64)
    out = tmp_path / "out"
    code = main(["optimize", str(f), "--top", "1", "--max-microbatches", "8", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    (winner,) = json.loads((out / "ranking.json").read_text())["candidates"]
    dp, pp, tp = (int(part[2:]) for part in winner["label"].split()[:3])
    assert dp * pp * tp == 64 and pp * tp > 1
    assert winner["simulated"] > 0


def test_optimize_never_builds_the_files_parallel(tmp_path: Path) -> None:
    f = tmp_path / "cnn.toml"
    f.write_text(CNN.format(units=2) + "[parallel]\ndp = 3\n")  # 3 x 1 x 1 is not 2 units
    assert main(["check", str(f)]) == 2
    assert main(["optimize", str(f), "--top", "1", "--out", str(tmp_path / "o")]) == 0


def test_a_candidate_whose_step_cannot_be_built_is_ranked_with_null_figures_and_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    """The estimate and the memory plan may disagree near the limit (gpt3_175b on 64 A100,
    `--top 5`): the candidate is simulated as infinite, ranking.json, which never holds
    Infinity, says null, and both say why it was not built; the search goes on down the
    ranking until `--top` candidates are built."""
    from importlib import import_module

    from leptonsim.errors import SimulationError

    module = import_module("leptonsim.optimize.search")  # the package exports its function
    real, calls = module.build_step, []

    def first_does_not_fit(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise SimulationError("does not fit: as the memory plan says")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "build_step", first_does_not_fit)
    f = tmp_path / "cnn.toml"
    f.write_text(CNN.format(units=2))
    assert main(["optimize", str(f), "--top", "2", "--out", str(tmp_path / "o")]) == 0
    ranked = json.loads((tmp_path / "o" / "ranking.json").read_text())["candidates"]
    assert [c["simulated"] is None for c in ranked] == [False, False, True]
    assert [c["unbuilt"] for c in ranked] == ["", "", "does not fit: as the memory plan says"]
    printed = capsys.readouterr().out
    assert f"not built: {ranked[2]['label']}: does not fit: as the memory plan says" in printed
    assert "inf" not in printed


def test_optimize_still_validates_the_file(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(CNN.format(units=2).replace('preset = "nvlink3"', 'bandwidth = "25 GB"'))
    assert main(["optimize", str(f), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {f}: hardware.link.bandwidth: ")
    assert not (tmp_path / "o").exists()


# -- the memory plan's structured error ------------------------------------------------------

def test_does_not_fit_carries_the_need_and_the_advice() -> None:
    small = ComputeUnit("tiny", 100e12, 2e12, memory_bytes=1e9, efficiency=0.5)
    cluster = fully_connected(replicate(small, 2, "gpu"), LinkSpec(0.0, 1e12))
    with pytest.raises(DoesNotFit) as info:
        build_step(get_model("gpt2_small"), ParallelConfig(pp=2, batch=8, microbatches=2), cluster)
    err = info.value
    assert err.need_bytes > err.capacity_bytes == 1e9
    assert err.need.startswith("stage 0 (gpu0) needs ") and "more than its" in err.need
    assert err.advice.startswith("try more tp/pp") and "(dp=1 pp=2 tp=1)" in err.advice
    assert str(err) == f"does not fit: {err.need}; {err.advice}"


# -- variants ---------------------------------------------------------------------------------

TWO_VARIANTS = CNN + '''
[variants.small]
"workload.model.name" = "seed_cnn"

[variants.huge]
"workload.model.name" = "gpt3_175b"
'''


def test_a_variant_that_does_not_fit_is_named_and_the_others_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "v.toml"
    f.write_text(TWO_VARIANTS.format(units=2))
    for command in (["check", str(f)], ["run", str(f), "--out", str(tmp_path / "out")]):
        assert main(command) == 0
        captured = capsys.readouterr()
        (line,) = captured.err.strip().splitlines()
        assert line.startswith(f"{command[0]}: skipped s [huge]: {f}: parallel: expected a "
                               "configuration of gpt3_175b that fits in each unit's memory")
        assert "s [small]" in captured.out and "s [huge]" not in captured.out
    assert (tmp_path / "out" / "small" / "summary.json").exists()
    assert not (tmp_path / "out" / "huge").exists()


def test_when_no_variant_can_be_built_the_first_error_is_the_commands(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "v.toml"
    f.write_text(TWO_VARIANTS.format(units=2).replace('= "seed_cnn"\n\n[variants.huge]',
                                                      '= "gpt3_175b"\n\n[variants.huge]'))
    assert main(["check", str(f)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {f}: parallel: expected a configuration of gpt3_175b")
    assert "in variant 'huge'" in line  # the first by name


def test_loads_each_returns_what_could_not_be_built_in_its_place() -> None:
    out = loads_each(TWO_VARIANTS.format(units=2), file="f.toml")
    assert [type(s).__name__ for s in out] == ["Unbuilt", "Scenario"]  # huge, small
    unbuilt = out[0]
    assert isinstance(unbuilt, Unbuilt) and unbuilt.label == "s [huge]"
    assert unbuilt.error.file == "f.toml" and unbuilt.error.path == "parallel"
    with pytest.raises(ScenarioError):
        loads(TWO_VARIANTS.format(units=2))  # strict


def test_the_base_need_not_fit_when_it_has_variants() -> None:
    base = CNN.replace('"seed_cnn"', '"gpt3_175b"')  # 175B parameters on one A100
    text = base.format(units=1) + '\n[variants.cnn]\n"workload.model.name" = "seed_cnn"\n'
    (s,) = loads(text)
    assert s.variant == "cnn" and s.step is not None and s.step.model.name == "seed_cnn"
    with pytest.raises(ScenarioError, match="fits in each unit's memory"):
        loads(base.format(units=1))  # run on its own, it does not


def test_the_base_must_still_be_a_valid_document() -> None:
    text = CNN.format(units=1).replace("batch = 8", 'batch = "eight"')
    _one_line_error(text + '\n[variants.b]\n"workload.model.batch" = 8\n', "workload.model.batch")


_PATHS = ["scenario.name", "hardware.topology", "hardware.units[0].count", "hardware.link",
          "workload.model.batch", "workload.model.name", "parallel.dp", "parallel.bucket",
          "schedule.scheduler", "schedule.network", "objective", "workload"]
_VALUES = st.one_of(st.integers(-2, 64), st.sampled_from(["", "x", "25 MB", "static", "ring"]),
                    st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(), max_size=2),
                    st.dictionaries(st.sampled_from(["name", "count", "kind"]), st.integers(0, 3),
                                    max_size=2))


@given(st.lists(st.tuples(st.sampled_from(_PATHS), _VALUES), min_size=1, max_size=3))
def test_a_variant_is_refused_exactly_when_its_whole_document_is(
        changes: list[tuple[str, object]]) -> None:
    """Only the tables a variant touched are checked again: the verdict and the error
    are those of a check of the whole overridden document."""
    doc = parse(CNN.format(units=2))
    overrides = [Override(parse_key_path("v", k), v, k) for k, v in changes]
    try:
        whole = copy.deepcopy(doc)
        for o in overrides:
            apply_override(whole, o.path, copy.deepcopy(o.value), o.where)
        check_structure(whole)
        expected = ""
    except ScenarioError as err:
        expected = err.line()
    try:
        overridden(doc, overrides)
        got = ""
    except ScenarioError as err:
        got = err.line()
    assert got == expected


def test_more_unit_entries_than_the_unit_bound_are_refused_before_they_are_checked() -> None:
    entry = '{ name = "gpu", preset = "a100_80gb" }, '
    text = CNN.format(units=1).replace(
        '[[hardware.units]]\nname = "gpu"\ncount = 1\npreset = "a100_80gb"\n',
        f"[hardware]\nunits = [{entry * (SIZES['units'].maximum + 1)}]\n")
    line = _one_line_error(text, "hardware.units")
    assert f"{SIZES['units'].maximum + 1:,} entries, each at least one unit" in line


# -- keys that would have no effect ------------------------------------------------------

def test_input_shape_beside_a_zoo_model_is_an_error() -> None:
    line = _one_line_error(CNN.format(units=1) + "input_shape = [28, 28, 1]\n",
                           "workload.model.input_shape")
    assert "no input_shape for a zoo model ('seed_cnn' has its own)" in line


def test_a_parallel_table_beside_a_task_graph_is_an_error() -> None:
    line = _one_line_error(CHAIN.format(units=2) + "[parallel]\ntp = 2\n", "parallel")
    assert "no [parallel] table beside a task graph" in line


def test_chunks_without_the_interleaved_schedule_is_an_error_at_chunks() -> None:
    text = CNN.format(units=2).replace("batch = 8", "batch = 8\nmicrobatches = 2")
    line = _one_line_error(text + "[parallel]\npp = 2\nchunks = 2\n", "parallel.chunks")
    assert "chunks = 1 for schedule '1f1b'" in line
    (s,) = loads(text + '[parallel]\npp = 2\nchunks = 2\nschedule = "interleaved"\n')
    assert s.step is not None


# -- the stages ------------------------------------------------------------------------------

def _defaults(node: dict) -> dict:
    return {k: sub["default"] for k, sub in node["properties"].items() if "default" in sub}


def test_normalize_fills_every_schema_default_of_a_model_scenario() -> None:
    (v,) = variants(parse(CNN.format(units=2)))
    doc = normalize(v.doc)
    props = schema()["properties"]
    for table in ("parallel", "schedule", "claims"):
        for k, default in _defaults(props[table]).items():
            assert k in doc[table], f"{table}.{k}"
            if not isinstance(doc[table][k], float):  # quantities are parsed to SI
                assert doc[table][k] == default, f"{table}.{k}"
    model = props["workload"]["properties"]["model"]
    assert set(_defaults(model)) <= set(doc["workload"]["model"])
    assert "parallel" not in normalize(parse(CHAIN.format(units=2)))  # a task graph has none


def test_normalize_at_a_key_path_is_the_same_table_as_in_the_whole_document() -> None:
    doc = parse(CNN.format(units=2))
    whole = normalize(doc)
    assert normalize(doc["hardware"], "hardware") == whole["hardware"]
    assert normalize(doc["workload"]["model"], "workload.model") == whole["workload"]["model"]
    assert normalize({}, ["parallel"]) == whole["parallel"]


def test_one_table_is_checked_and_normalised_at_its_key_path() -> None:
    with pytest.raises(ScenarioError) as info:
        check_structure({"name": "seed_cnn", "batch": "eight"}, "workload.model")
    assert info.value.path == "workload.model.batch" and "expected an integer" in str(info.value)
    with pytest.raises(ScenarioError) as info:
        check_structure({"units": [{"name": "gpu", "count": 2, "preset": "a100_80gb"}],
                         "topology": "rign"}, ["hardware"])
    assert info.value.path == "hardware.topology" and "did you mean 'ring'?" in str(info.value)


def test_the_workload_stage_builds_from_its_tables_alone() -> None:
    """What a caller without a file does: normalise the hardware, the model and the split
    one table at a time, then build the workload for the cluster."""
    hw = {"units": [{"name": "gpu", "count": 2, "preset": "a100_80gb"}],
          "link": {"preset": "nvlink3"}}
    cluster = build_hardware({"hardware": normalize(hw, "hardware")})
    doc = {"workload": {"model": normalize({"name": "seed_cnn", "batch": 8}, "workload.model")},
           "parallel": normalize({"tp": 1}, "parallel")}
    workload = build_workload(doc, cluster)
    (s,) = loads(CNN.format(units=2))
    assert workload.graph.size == s.graph.size and workload.graph.num_edges == s.graph.num_edges


def test_the_stages_compose_to_loads() -> None:
    text = CNN.format(units=2)
    (v,) = variants(parse(text))
    doc = normalize(v.doc)
    cluster = build_hardware(doc)
    workload = build_workload(doc, cluster)
    (s,) = loads(text)
    assert cluster.size == s.cluster.size and workload.graph.size == s.graph.size
    assert workload.step is not None and s.step is not None


def _imports(path: Path) -> set[str]:
    """The sibling modules of scenario/ a module imports, anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out |= {node.module} if node.module else {a.name for a in node.names}
    return out


def test_scenario_modules_import_each_other_without_a_cycle() -> None:
    folder = Path(__file__).resolve().parents[1] / "leptonsim" / "scenario"
    graph = {p.stem: _imports(p) for p in folder.glob("*.py") if p.stem != "__init__"}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(m == goal or (m not in seen and reaches(m, goal, seen | {m}))
                   for m in graph.get(start, ()))

    assert not [m for m in graph if reaches(m, m, {m})]


# -- one "did you mean" ------------------------------------------------------------------------

@given(st.lists(st.text(min_size=1), min_size=1), st.data())
def test_a_choice_itself_is_closest_to_it(choices: list[str], data: st.DataObject) -> None:
    """Theorem: the ratio of a word with itself is 1, the most there is."""
    word = data.draw(st.sampled_from(choices))
    best = closest(word, choices)
    assert best is not None and best.lower() == word.lower()
    assert did_you_mean(word, choices) == f"did you mean {best!r}?"


def test_every_unknown_name_gets_the_same_suggestion() -> None:
    from leptonsim.kernels.network import network
    from leptonsim.zoo import ZOO

    with pytest.raises(KeyError, match=did_you_mean("resnet5", ZOO).replace("?", r"\?")):
        get_model("resnet5")
    model = get_model("seed_cnn")
    names = [layer.name for layer in model.layers]
    wrong = names[0] + "x"
    with pytest.raises(ValueError, match=did_you_mean(wrong, names).replace("?", r"\?")):
        network(model, {wrong: ["input"]})
