"""The command line, end to end: files written, bad input, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.report import summary
from leptonsim.result import run
from leptonsim.scenario import loads
from tests.helpers.scenario_cases import CASES
from tests.helpers.scenarios import GENERATED

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "scenarios" / "seed_case_study.toml"


def test_run_writes_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SEED), "--out", str(tmp_path)]) == 0
    report = capsys.readouterr().out
    assert "claim: seed §4.3" in report and "work/span lower bound" in report
    for variant in ("independent", "chain", "seed_assumptions"):
        out = tmp_path / variant
        assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
            "gantt.png", "summary.json", "tasks.csv", "trace.json", "transfers.csv"]
        assert (out / "gantt.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        trace = json.loads((out / "trace.json").read_text())
        tasks = [e for e in trace["traceEvents"] if e["ph"] == "X"]
        doc = json.loads((out / "summary.json").read_text())
        assert len(tasks) == doc["tasks"]
        for key in ("makespan_s", "critical_path_s", "total_work_s", "parallel_efficiency"):
            assert isinstance(doc[key], float)
        assert {"name", "busy_s", "utilization"} <= set(doc["units"][0])


def test_an_interrupted_run_is_one_line_exit_130_and_no_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while simulating: no traceback, the shell's 128 + SIGINT, nothing written."""
    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("leptonsim.result.run", interrupted)
    assert main(["run", str(SEED), "--out", str(tmp_path / "out")]) == 130
    err = capsys.readouterr().err
    assert err == "error: leptonsim run: interrupted (no output is left half written)\n"
    assert not (tmp_path / "out").exists()


def test_a_reader_that_goes_away_leaves_every_file_written(tmp_path: Path) -> None:
    """`leptonsim run ... | head`: the pipe closes after the first line; the run goes on."""
    proc = subprocess.Popen([sys.executable, "-m", "leptonsim", "run", str(SEED), "--out",
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"== seed case study")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 0 and err == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain", "independent",
                                                         "seed_assumptions"]
    assert all((tmp_path / v / "summary.json").exists() for v in ("chain", "seed_assumptions"))


@pytest.mark.parametrize("c", CASES[::3], ids=[c.id for c in CASES[::3]])
def test_bad_input_is_one_line_exit_2_and_no_output(c, tmp_path: Path) -> None:
    scenario = tmp_path / "case.toml"
    scenario.write_text(c.text())
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "leptonsim", "run", str(scenario), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(scenario) in lines[0] and c.path in lines[0]
    assert not out.exists()


def test_schema_command_prints_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["$schema"].startswith("https://json-schema.org/")


def test_check_lists_variants(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SEED)]) == 0
    assert capsys.readouterr().out.count("ok: seed case study") == 3


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from(["full", "ring", "switch"]), st.integers(1, 6),
       st.floats(0.1, 1.0), st.sampled_from(["independent", "chain", "fork_join", "layered"]),
       st.integers(1, 40), st.sampled_from(["heft", "greedy"]))
def test_same_scenario_and_seed_give_byte_identical_summary(seed, topology, units, eff, kind,
                                                            tasks, scheduler):
    text = GENERATED.format(seed=seed, topology=topology, units=units, eff=eff, kind=kind,
                           tasks=tasks, scheduler=scheduler)
    first = json.dumps(summary(run(loads(text)[0])), indent=2)
    second = json.dumps(summary(run(loads(text)[0])), indent=2)
    assert first == second


def test_summary_file_is_byte_identical_across_processes(tmp_path: Path) -> None:
    scenario = ROOT / "scenarios" / "heterogeneous.toml"
    texts = []
    for i in range(2):
        subprocess.run([sys.executable, "-m", "leptonsim", "run", str(scenario), "--out",
                        str(tmp_path / str(i))], check=True, capture_output=True, cwd=ROOT)
        texts.append((tmp_path / str(i) / "heft" / "summary.json").read_bytes())
    assert texts[0] == texts[1]


def test_every_claim_key_is_compared_with_its_simulated_figure():
    text = GENERATED.format(seed=1, topology="full", units=2, eff=0.5, kind="chain", tasks=4,
                           scheduler="heft")
    text = text.replace("efficiency = 0.5", 'efficiency = 0.5\nbusy_power = "300 W"')
    text += '[claims]\nmakespan = "1 s"\nenergy = "1 J"\nspeedup = 2\nsource = "test"\n'
    claims = summary(run(loads(text)[0]))["claims"]
    assert sorted(c["key"] for c in claims) == ["energy_j", "makespan_s", "speedup"]
    assert all(c["simulated"] is not None and c["relative_error"] is not None for c in claims)


DP = ROOT / "scenarios" / "seed_cnn_data_parallel.toml"


def test_version_names_the_package(capsys: pytest.CaptureFixture[str]) -> None:
    from leptonsim import __version__
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"leptonsim {__version__}\n"


def test_variant_runs_one_and_set_has_the_last_word(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--set applies after the file's variants: dp4's 4 GPUs become 2 with dp = 2."""
    assert main(["check", str(DP), "--variant", "dp4", "--set", "hardware.units[0].count=2",
                 "--set", "parallel.dp=2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "[dp4]: 2 units" in out[0]
    assert main(["run", str(DP), "--variant", "dp2", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dp2"]


@pytest.mark.parametrize(("args", "words"), [
    (["--variant", "dp3"], ["--variant: expected one of the file's variants (dp1, dp2, dp4, "
                            "dp8), found 'dp3'"]),
    (["--set", "parallel.dp"], ["--set: expected KEY=VALUE"]),
    (["--set", "parallel.dpp=2"], ["--set parallel.dpp:", "did you mean 'parallel.dp'?"]),
    (["--set", "parallel.dp=abc"], ["--set parallel.dp: expected a TOML value", "'abc'"]),
    (["--set", "workload.model.batch=0"], ["--set workload.model.batch: expected an integer"]),
    (["--set", "hardware.units[0].preset=h100"], ["did you mean 'h100_sxm' or 'h100_pcie'?"]),
])
def test_a_bad_command_line_override_is_one_line_naming_the_flag(
        args: list[str], words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(DP), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {DP}: ")
    for word in words:
        assert word in err


def test_variant_of_a_file_without_variants_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = DP.read_text().split("[variants.")[0]
    (tmp_path / "one.toml").write_text(base)
    assert main(["check", str(tmp_path / "one.toml"), "--variant", "dp2"]) == 2
    assert "--variant: expected a file with [variants.*] tables" in capsys.readouterr().err


def test_the_report_leads_with_the_answer_and_the_comparison_names_what_differs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(DP), "--variant", "dp2", "--out", str(tmp_path / "a"),
                 "--quiet-formulas"]) == 0
    report = capsys.readouterr().out
    first = report.splitlines()[2:6]
    assert [line.split()[0] for line in first] == ["step", "throughput", "MFU", "memory"]
    assert "seed parallel time" not in report
    assert main(["run", str(DP), "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    table = out[out.index("variants side by side"):].splitlines()[1:]
    assert table[0].split()[:4] == ["variant", "count", "dp", "step"]
    assert [row.split()[:3] for row in table[1:]] == [[f"dp{n}", str(n), str(n)] for n in (1, 2, 4, 8)]
    doc = json.loads((tmp_path / "b" / "dp4" / "summary.json").read_text())
    assert doc["settings"] == [{"key": "hardware.units[0].count", "value": 4},
                               {"key": "parallel.dp", "value": 4}]
    assert doc["run"]["dp"] == 4 and doc["run"]["units"] == [{"kind": "gpu", "count": 4}]


def test_ten_thousand_units_read_as_a_count(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The report at the far end of the scale: 10,000 mirrored replicas, no 1e+04."""
    assert main(["run", str(DP), "--variant", "dp2", "--set", "hardware.units[0].count=10000",
                 "--set", "parallel.dp=10000", "--set", "workload.model.batch=10000",
                 "--set", "parallel.dp_mode=auto", "--out", str(tmp_path),
                 "--outputs", "summary", "--quiet-formulas"]) == 0
    out = capsys.readouterr().out
    assert "of 10,000 units" in out and "e+0" not in out
