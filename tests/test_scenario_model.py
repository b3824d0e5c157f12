"""[workload.model] and [parallel] in scenario files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from leptonsim.cli import main
from leptonsim.errors import ScenarioError
from leptonsim.scenario import loads
from leptonsim.zoo import get_model

DOCS = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"
HEAD = """
[scenario]
name = "m"
[hardware]
topology = "switch"
[[hardware.units]]
name = "gpu"
count = {units}
preset = "a100_80gb"
[hardware.link]
preset = "nvlink3"
"""


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
    text = (HEAD.format(units=units) + '[workload.model]\nname = "gpt2_small"\nbatch = 24\n'
            f'microbatches = 2\n[parallel]\npp = {pp}\ntp = {tp}\n')
    (s,) = loads(text)
    assert s.step is not None and s.step.config.dp * pp * tp == units


def test_unknown_layer_argument_suggests_the_right_one():
    text = HEAD.format(units=1) + ('[workload.model]\ninput_shape = [8]\nbatch = 4\n'
                                   'layers = [{ op = "dense", unit = 3 }]\n')
    with pytest.raises(ScenarioError, match=r"layers\[0\]\.unit.*did you mean 'units'"):
        loads(text)


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
