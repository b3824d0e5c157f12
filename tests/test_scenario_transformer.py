"""`[workload.model] transformer = {...}`: a transformer by its sizes in scenario files,
from a zoo base, a Hugging Face config.json or nothing, and its one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from leptonsim.cli import main
from leptonsim.scenario import load, loads
from leptonsim.zoo import get_model

HEAD = """
[scenario]
name = "t"
[hardware]
topology = "switch"
[[hardware.units]]
name = "gpu"
count = 2
preset = "h100_sxm"
[hardware.link]
preset = "nvlink4"
[workload.model]
batch = 2
"""
DATA = Path(__file__).parent / "data" / "hf"


def _model(text: str):
    (s,) = loads(HEAD + text)
    assert s.step is not None
    return s.step.model


def test_a_base_with_a_size_changed_is_that_model_with_it_changed() -> None:
    model = _model('transformer = { base = "llama3_8b", layers = 2, seq = 128 }\n')
    full = get_model("llama3_8b")
    per_block = (full.params() - model.params()) // 30  # 32 blocks became 2
    assert model.params() == full.params() - 30 * per_block
    assert model.input_shape == (128,)


def test_sizes_from_nothing_build_the_spec_they_name() -> None:
    model = _model("transformer = { layers = 2, hidden = 64, heads = 4, vocab = 100, seq = 16 }\n")
    assert model.params() == 2 * (12 * 64**2 + 13 * 64) + (100 + 16) * 64 + 2 * 64


def test_a_config_json_is_read_relative_to_the_scenario(tmp_path: Path) -> None:
    shutil.copy(DATA / "llama2_7b" / "config.json", tmp_path / "config.json")
    f = tmp_path / "s.toml"
    f.write_text(HEAD + 'transformer = { config = "config.json", seq = 64 }\ntraining = false\n')
    (s,) = load(f)
    assert s.step is not None and s.step.model.params() == 6_738_415_616


def test_a_variant_changes_a_size() -> None:
    text = (HEAD + 'transformer = { base = "llama3_8b", layers = 2, seq = 64 }\n'
            '[variants.shallow]\n"workload.model.transformer.layers" = 1\n'
            '[variants.deep]\n"workload.model.transformer.layers" = 4\n')
    layers = {s.variant: len(s.step.model.layers) for s in loads(text) if s.step is not None}
    assert layers["deep"] - layers["shallow"] == 3 * 8  # 8 layers per block


@pytest.mark.parametrize(("table", "line"), [
    ("{ layers = 2, hidden = 64, heads = 4, vocab = 100 }",
     "workload.model.transformer.seq: expected the seq of a transformer without a base or "
     "config, found nothing"),
    ('{ base = "llama3_8b", kv_heads = 6 }',
     "workload.model.transformer.kv_heads: expected a divisor of heads (32), found 6"),
    ('{ base = "llama3_8b", config = "c.json" }',
     "workload.model.transformer.config: expected one starting point: base or config"),
    ('{ base = "llama3_8b", layers = 100000 }', "workload.model.transformer.layers: "),
    ('{ base = "llama3_8b", norm = "batchnorm" }', "workload.model.transformer.norm: "),
    ('{ config = "missing.json" }', "missing.json: expected a readable config.json"),
])
def test_bad_sizes_are_one_line_naming_the_key(table: str, line: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(HEAD + f"transformer = {table}\n")
    out = tmp_path / "out"
    assert main(["run", str(f), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and line in err[0], err
    assert not out.exists()
