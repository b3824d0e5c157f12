"""docs/tutorial.md cannot drift from the code: its scenarios load, the files it shows are
the files in docs/tutorial/, its commands name files that exist, and every figure it
shows is in docs/figures/tutorial/. (docs/tutorial/make_figures.py, run by CI, runs the
commands and checks their output.)"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from types import ModuleType

import pytest

from leptonsim.scenario import check, loads
from leptonsim.study import load_sweep, loads_sweep
from tests.helpers.scripts import script

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "tutorial.md"
TEXT = DOC.read_text(encoding="utf-8")
TUTORIAL_FILES = sorted((ROOT / "docs" / "tutorial").glob("*.toml"))


def _module(name: str) -> ModuleType:
    return script(ROOT / "docs" / "tutorial" / f"{name}.py", f"tutorial_{name}")


make_figures = _module("make_figures")
table = _module("table")


def _blocks(language: str) -> list[tuple[int, str]]:
    """(line number, text) of every ```language block of the tutorial."""
    out, start, lines = [], None, TEXT.splitlines()
    for number, line in enumerate(lines, 1):
        if start is None and line.strip() == f"```{language}":
            start = number
        elif start is not None and line.startswith("```"):
            out.append((start, "\n".join(lines[start:number - 1]) + "\n"))
            start = None
    return out


TOML_BLOCKS = _blocks("toml")


def test_the_tutorial_has_its_three_questions() -> None:
    assert [h for h in re.findall(r"^## (Q\d)\.", TEXT, re.M)] == ["Q1", "Q2", "Q3"]
    assert len(TOML_BLOCKS) >= 3 and len(TUTORIAL_FILES) >= 3


@pytest.mark.parametrize(("line", "text"), TOML_BLOCKS, ids=[f"line{n}" for n, _ in TOML_BLOCKS])
def test_every_toml_block_loads_or_is_an_excerpt_of_the_file_it_names(line: int, text: str) -> None:
    if re.search(r"^\[scenario\]", text, re.M):
        assert loads(text, file=f"docs/tutorial.md:{line}")
        if re.search(r"^\[sweep", text, re.M):
            assert len(loads_sweep(text, file=f"docs/tutorial.md:{line}")) > 0
        return
    first, _, rest = text.partition("\n")
    named = re.fullmatch(r"# (\S+\.toml) \(excerpt\)", first.strip())
    assert named, f"docs/tutorial.md:{line}: a partial scenario must start '# PATH (excerpt)'"
    source = (ROOT / named.group(1)).read_text(encoding="utf-8")
    assert rest in source, f"docs/tutorial.md:{line}: not a verbatim excerpt of {named.group(1)}"


@pytest.mark.parametrize("path", TUTORIAL_FILES, ids=lambda p: p.name)
def test_every_tutorial_scenario_is_shown_in_full_and_checks(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text in [t for _, t in TOML_BLOCKS], f"docs/tutorial.md does not show {path.name} as it is"
    assert check(path)
    if "[sweep" in text:
        assert len(load_sweep(path)) <= 64, "keep the tutorial's sweeps small (CI runs them)"


def test_every_command_runs_leptonsim_or_a_tutorial_script_on_files_that_exist() -> None:
    commands = make_figures.commands(TEXT)
    assert len(commands) >= 6
    for command in commands:
        argv = command.argv()  # raises on anything but leptonsim / python docs/tutorial/...
        assert argv[0] == sys.executable
        for word in shlex.split(command.text):
            if word.endswith((".toml", ".py")):
                assert (ROOT / word).is_file(), f"docs/tutorial.md:{command.line}: no file {word}"
        if " --out " in command.text:
            assert shlex.split(command.text.split(" --out ")[1])[0].startswith("out/tutorial/")
    sweeps = [c for c in commands if c.text.startswith("leptonsim sweep")]
    assert sweeps and all("--plot" in c.text for c in sweeps)


def test_every_figure_shown_exists_and_every_figure_there_is_shown() -> None:
    shown = make_figures.referenced()
    assert len(shown) >= 3
    figures = ROOT / "docs" / "figures" / "tutorial"
    for name in shown:
        path = figures / name
        assert path.is_file(), f"docs/tutorial.md shows {name}; run python docs/tutorial/make_figures.py"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in figures.glob("*.png")} == set(shown)
    assert set(shown) == set(make_figures.COPIED) | set(make_figures.DRAWN)


def test_every_image_link_points_into_figures_tutorial() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", TEXT)
    assert images and all(i.startswith("figures/tutorial/") for i in images)
    assert all(len(alt) > 20 for alt in re.findall(r"!\[([^\]]*)\]", TEXT)), "describe each figure"


def test_output_check_allows_elisions_and_catches_changes() -> None:
    actual = ["a", "b", "c", "d", "e"]
    assert make_figures.mismatch(["a", "b", "...", "d"], actual) is None
    assert make_figures.mismatch(["...", "c", "d", "...", "e"], actual) is None
    assert make_figures.mismatch([], actual) is None
    assert make_figures.mismatch(["a", "c"], actual) is not None      # not consecutive
    assert make_figures.mismatch(["d", "...", "b"], actual) is not None  # out of order
    assert make_figures.mismatch(["a", "x"], actual) is not None


def test_commands_take_the_output_under_them() -> None:
    md = "text\n```console\n$ leptonsim check a.toml\nok\n$ leptonsim check b.toml\n```\n$ not this\n"
    got = make_figures.commands(md)
    assert [(c.text, c.expected) for c in got] == [("leptonsim check a.toml", ["ok"]),
                                                   ("leptonsim check b.toml", [])]
    with pytest.raises(ValueError, match="may only run"):
        make_figures.Command(1, "rm -rf out").argv()


def test_table_prints_readable_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "r.csv"
    csv.write_text("variant,hardware.link.bandwidth,makespan_s,energy_j,parallel_efficiency\n"
                   "a,25000000000.0,0.0141,56.5,0.5\nb,1.2e12,0.002,61.8,0.25\n")
    assert table.main([str(csv), "variant", "hardware.link.bandwidth", "makespan_s", "energy_j",
                       "parallel_efficiency", "--where", "variant=a"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["variant", "bandwidth", "makespan_s", "energy_j", "parallel_efficiency"]
    assert out[1].split() == ["a", "25", "GB/s", "14.1", "ms", "56.5", "J", "50.0%"]
    assert table.main([str(csv), "--pivot", "variant", "hardware.link.bandwidth", "makespan_s"]) == 0
    pivot = capsys.readouterr().out.splitlines()
    assert pivot[0].endswith("25 GB/s  1.2 TB/s") and pivot[2].endswith("2 ms")
