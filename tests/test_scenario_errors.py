"""Every user mistake in a scenario file is one line: file, key path, expected, found.

Each case edits a valid scenario in one place (the edit must apply, so a case can't
silently test the unedited file) and asserts the exact key path and the telling words.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leptonsim.errors import ScenarioError
from leptonsim.scenario import load, loads
from tests.helpers.scenario_cases import CASES, FILE, GEN, TASKS, TWO_LEVEL, Case


def test_cases_are_distinct() -> None:
    assert len(CASES) >= 20
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({c.text() for c in CASES}) == len(CASES)


def test_the_unedited_scenarios_are_valid() -> None:
    for text in (GEN, TASKS, TWO_LEVEL):
        assert loads(text, file=FILE)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_mistake_is_one_line_with_file_path_and_words(c: Case) -> None:
    with pytest.raises(ScenarioError) as info:
        loads(c.text(), file=FILE)
    err = info.value
    line = str(err)
    assert err.path == c.path
    assert err.file == FILE
    assert "\n" not in line
    head = f"{FILE}: {c.path}: expected " if c.path else f"{FILE}: expected "
    assert line.startswith(head), line
    for word in c.words:
        assert word in line, f"{word!r} not in {line!r}"
    assert "Traceback" not in line and "jsonschema" not in line.lower()


def test_the_first_mistake_in_the_file_is_reported() -> None:
    text = GEN.replace("count = 4", "count = 0").replace('"25 GB/s"', '"-25 GB/s"')
    with pytest.raises(ScenarioError) as info:
        loads(text, file=FILE)
    assert info.value.path == "hardware.units[0].count"
    # ... and the same one every time
    for _ in range(3):
        with pytest.raises(ScenarioError) as again:
            loads(text, file=FILE)
        assert str(again.value) == str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError) as info:
        load(path)
    assert info.value.file == str(path) and info.value.path == ""
    assert str(info.value) == f"{path}: expected an existing scenario file, found no such file"


def test_errors_from_a_file_name_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(GEN.replace("efficiency = 0.8", "efficiency = 1.5"), encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"bad\.toml: hardware\.units\[0\]\.efficiency: "
                       r"expected a number in \(0, 1\], found 1\.5$"):
        load(path)


def test_a_directory_is_not_a_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="expected a readable scenario file"):
        load(tmp_path)


@given(st.text(alphabet="abcdefgh_0123456789", min_size=1, max_size=12))
def test_a_string_value_is_typed_as_text_where_the_key_takes_text(raw: str) -> None:
    """--set scenario.name=2024 is the name "2024", not the integer."""
    from leptonsim.scenario.command_line import parse_set
    assert parse_set(f"scenario.name={raw}").value == raw


@given(st.sampled_from(["resnet50", "seed_cnn", "bert_base"]), st.data())
def test_a_zoo_name_is_taken_in_any_case(name: str, data: st.DataObject) -> None:
    """ResNet50 is resnet50, in the file and in an override; a misspelling is still one line."""
    flips = data.draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    spelt = "".join(c.upper() if f else c for c, f in zip(name, flips, strict=True))
    text = (f'[scenario]\nname = "z"\n[[hardware.units]]\nname = "g"\ncount = 1\n'
            f'preset = "a100_80gb"\n[workload.model]\nname = "{spelt}"\nbatch = 2\n')
    (s,) = loads(text)
    assert s.step is not None and s.step.model.name == name
    with pytest.raises(ScenarioError, match="did you mean"):
        loads(text.replace(spelt, spelt + "x"))
