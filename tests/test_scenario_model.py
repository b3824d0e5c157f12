"""[workload.model] and [parallel] in scenario files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from leptonsim.cli import main
from leptonsim.errors import ScenarioError
from leptonsim.scenario import loads
from leptonsim.zoo import get_model
from tests.helpers.scenarios import a100_switch

DOCS = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"
HEAD = a100_switch("{units}")


def declared_example() -> str:
    """The layer-by-layer seed_cnn example of docs/scenarios.md."""
    blocks = re.findall(r"```toml\n(\[workload\.model\]\ninput_shape.*?)```", DOCS.read_text(), re.S)
    assert blocks, "docs/scenarios.md lost its declared-model example"
    return blocks[0]


def test_declared_seed_cnn_from_the_docs_equals_the_zoo_model():
    (s,) = loads(HEAD.format(units=1) + declared_example())
    zoo = loads(HEAD.format(units=1) + '[workload.model]\nname = "seed_cnn"\nbatch = 128\n')[0]
    assert s.step is not None and zoo.step is not None
    assert s.graph.flops.sum() == pytest.approx(zoo.graph.flops.sum())
    assert sum(m.weights_bytes for _, m in s.step.memory) == pytest.approx(
        get_model("seed_cnn").params() * 2)


def test_parallel_degrees_must_match_the_units():
    model = '[workload.model]\nname = "gpt2_small"\nbatch = 8\n'
    text = HEAD.format(units=4) + model + '[parallel]\ndp = 1\ntp = 2\n'
    with pytest.raises(ScenarioError, match=r"parallel: expected dp x pp x tp equal to the 4 units"):
        loads(text)
    text = HEAD.format(units=6) + model + '[parallel]\npp = 4\n'
    with pytest.raises(ScenarioError, match=r"parallel: expected dp x pp x tp equal to the 6 units"):
        loads(text)


@pytest.mark.parametrize("units, pp, tp", [(8, 2, 1), (8, 1, 2), (4, 2, 2), (3, 1, 1)])
def test_data_parallelism_takes_the_units_left_over(units, pp, tp):
    text = (HEAD.format(units=units) + '[workload.model]\nname = "bert_base"\nbatch = 24\n'
            f'microbatches = 2\n[parallel]\npp = {pp}\ntp = {tp}\n')
    (s,) = loads(text)
    assert s.step is not None and s.step.config.dp * pp * tp == units


def test_unknown_layer_argument_suggests_the_right_one():
    text = HEAD.format(units=1) + ('[workload.model]\ninput_shape = [8]\nbatch = 4\n'
                                   'layers = [{ op = "dense", unit = 3 }]\n')
    with pytest.raises(ScenarioError, match=r"layers\[0\]\.unit.*did you mean 'units'"):
        loads(text)


SPLITS = [  # model, tp, the refusal: gpt2_small's head has 50,257 (unpadded) vocabulary units
    ('name = "bert_base"', 8, r"parallel\.tp: expected a tp that divides the attention heads "
     r"\(12\) and every split dense width \(768, 3072\), found 8 \(layer layer\.0\.attn: "
     r"12 heads do not split into 8 equal parts\)$"),
    ('name = "gpt2_small"', 2, r"parallel\.tp: .*found 2 \(layer lm_head: 50257 units"),
    ('input_shape = [16]\nlayers = [{ op = "dense", units = 6 }, { op = "relu" }, '
     '{ op = "dense", units = 16 }]', 4,
     r"parallel\.tp: expected a tp that divides every split dense width \(6\), found 4 "
     r"\(layer dense0: 6 units"),
]


@pytest.mark.parametrize("model, tp, line", SPLITS)
def test_a_tensor_split_that_cannot_exist_is_refused(model: str, tp: int, line: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]):
    f = tmp_path / "split.toml"
    f.write_text(HEAD.format(units=tp) + f"[workload.model]\n{model}\nbatch = 8\n"
                 f"[parallel]\ntp = {tp}\n")
    out = tmp_path / "out"
    assert main(["run", str(f), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(line, err[0]), err
    assert err[0].startswith(f"error: {f}: ") and not out.exists()


def test_a_tensor_split_in_a_variant_names_the_variant_key():
    text = (HEAD.format(units=4) + '[workload.model]\nname = "bert_base"\nbatch = 8\n'
            '[parallel]\ntp = 4\n[variants.odd]\n"hardware.units[0].count" = 8\n'
            '"parallel.tp" = 8\n')
    with pytest.raises(ScenarioError, match=r'variants\.odd\."parallel\.tp": expected a tp that '
                                            r"divides the attention heads \(12\)"):
        loads(text)


ARGS = [  # every boolean, integer, choice and pair argument of the ops is type-checked
    ('{ op = "dense", units = 3, use_bias = "no" }', "use_bias", "true or false", "'no'"),
    ('{ op = "attention", heads = 2, use_bias = 0 }', "use_bias", "true or false", "0"),
    ('{ op = "dense", units = 3, tied = "yes" }', "tied", "true or false", "'yes'"),
    ('{ op = "dense", units = 3.0 }', "units", "an integer", "3.0"),
    ('{ op = "dense", units = true }', "units", "an integer", "True"),
    ('{ op = "conv2d", filters = 4, kernel = 3.0 }', "kernel",
     "an integer or an array of 2 integers", "3.0"),
    ('{ op = "conv2d", filters = 4, kernel = 3, padding = "Same" }', "padding",
     "one of 'valid', 'same'", "'Same'"),
    ('{ op = "maxpool2d", pool = 2, stride = [1, 2, 3] }', "stride",
     "an integer or an array of 2 integers", r"\[1, 2, 3\]"),
    ('{ op = "lstm", units = 4, return_sequences = "false" }', "return_sequences",
     "true or false", "'false'"),
    ('{ op = "moe", experts = 4, top_k = 2, expert_ffn = 8, imbalance = "x" }', "imbalance",
     "a number", "'x'"),
    ('{ op = "moe", experts = 4, top_k = 2, expert_ffn = 8, activation = "relu" }',
     "activation", "one of 'swiglu', 'gelu'", "'relu'"),
]


@pytest.mark.parametrize("layer, key, expected, found", ARGS)
def test_an_op_argument_of_the_wrong_type_is_refused(layer: str, key: str, expected: str, found: str):
    shape = "[8, 8]" if any(op in layer for op in ("lstm", "attention", "moe")) else "[8, 8, 3]"
    text = HEAD.format(units=1) + (f'[workload.model]\ninput_shape = {shape}\nbatch = 4\n'
                                   f'layers = [{layer}]\n')
    with pytest.raises(ScenarioError, match=rf"layers\[0\]\.{key}: expected {expected}, "
                                            rf"found {found}$"):
        loads(text)


def test_op_arguments_of_the_right_types_are_accepted():
    text = HEAD.format(units=1) + (
        '[workload.model]\ninput_shape = [8, 8, 3]\nbatch = 4\nlayers = [\n'
        '{ op = "conv2d", filters = 4, kernel = [3, 3], stride = 1, padding = "same", '
        'use_bias = false },\n{ op = "maxpool2d", pool = [2, 2] }, { op = "flatten" },\n'
        '{ op = "dense", units = 3, use_bias = false }]\n')
    (s,) = loads(text)
    assert s.step is not None and s.step.model.layers[-1].op.use_bias is False


def test_memory_overflow_is_a_scenario_mistake(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    f = tmp_path / "big.toml"
    f.write_text(HEAD.format(units=1) + '[workload.model]\nname = "gpt3_175b"\nbatch = 1\n')
    assert main(["check", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"error: {f}: parallel: expected a configuration of gpt3_175b "
                             "that fits in each unit's memory, found stage 0 (gpu) needs ")
    assert "more than its" in err[0] and "(try more tp/pp" in err[0]


def test_model_command_prints_the_layer_table(capsys: pytest.CaptureFixture[str]):
    assert main(["model", "seed_cnn"]) == 0
    assert "Total params: 225,034" in capsys.readouterr().out
    assert main(["model", "resnet5"]) == 2
    assert "did you mean 'resnet50'" in capsys.readouterr().err


RESIDUAL_BLOCKS = """[workload.model]
batch = 4
input_shape = [16, 32]
layers = [
  { repeat = 3, layers = [
      { op = "layernorm", name = "ln" }, { op = "attention", heads = 4, name = "attn" },
      { op = "add", residual = "block" },
      { op = "dense", units = 64, name = "fc" }, { op = "gelu" }, { op = "dense", units = 32 },
      { op = "add", residual = "attn" } ] },
  { op = "dense", units = 10 }, { op = "softmax_xent" } ]
"""


def test_a_repeated_block_with_residual_adds_is_its_layers_copied():
    (s,) = loads(HEAD.format(units=1) + RESIDUAL_BLOCKS)
    assert s.step is not None
    names = [layer.name for layer in s.step.model.layers]
    assert names[:8] == ["ln.0", "attn.0", "add2", "fc.0", "gelu4", "dense5", "add6", "ln.1"]
    assert len(names) == 3 * 7 + 2
    per_block = 4 * (32 * 32 + 32) + 2 * 32 + (32 * 64 + 64) + (64 * 32 + 32)
    assert s.step.model.params() == 3 * per_block + 32 * 10 + 10


@pytest.mark.parametrize(("layer", "line"), [
    ('{ op = "add", residual = "input" }', r"layers\[1\]\.residual: expected a layer whose "
     r"output is \(16, 64\), as the previous layer's, found 'input' outputs \(16, 32\)"),
    ('{ op = "add", residual = "nope" }', r"layers\[1\]\.residual: expected the name of an "
     r"earlier layer"),
    ('{ repeat = 2, layers = [{ op = "rleu" }] }', r"layers\[1\]\.layers\[0\]\.op: expected one "
     r"of .*found 'rleu' \(did you mean 'relu'\?\)"),
    ('{ repeat = 65536, layers = [{ repeat = 65536, layers = [{ op = "relu" }] }] }',
     r"workload\.model\.layers: expected at most 65,536 layers, found 4,294,967,297 "),
])
def test_bad_blocks_and_residuals_are_one_line(layer: str, line: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]):
    f = tmp_path / "b.toml"
    f.write_text(HEAD.format(units=1) + '[workload.model]\nbatch = 4\ninput_shape = [16, 32]\n'
                 f'layers = [{{ op = "dense", units = 64, name = "fc" }}, {layer}]\n')
    assert main(["run", str(f), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(line, err[0]), err


@pytest.mark.parametrize("value, mode", [('"none"', "none"), ('"selective"', "selective"),
                                         ('"full"', "full"), ("true", "full"), ("false", "none")])
def test_recompute_is_a_mode_or_a_boolean(value: str, mode: str) -> None:
    text = HEAD.format(units=1) + f'[workload.model]\nname = "gpt2_small"\nbatch = 2\nrecompute = {value}\n'
    (s,) = loads(text)
    assert s.step is not None and s.step.config.recompute == mode


def test_an_unknown_recompute_mode_is_one_line_naming_the_choices() -> None:
    text = HEAD.format(units=1) + '[workload.model]\nname = "gpt2_small"\nbatch = 2\nrecompute = "some"\n'
    with pytest.raises(ScenarioError, match=r"workload\.model\.recompute: expected one of 'none', "
                                            r"'selective', 'full' or true or false, found 'some'"):
        loads(text)
