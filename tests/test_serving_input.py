"""Bad serving input: one line naming the file and key, exit 2 (issue 15, "Bad input");
the request generator's kinds and the trace CSV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from leptonsim.cli import main
from leptonsim.serve.requests import lengths
from tests.helpers.serving import serving_toml

TRACE = "arrival_s,prompt_tokens,output_tokens\n0.0,100,10\n0.5,200,20\n0.25,50,5\n"


def _refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
             command: str = "check") -> str:
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert main([command, str(path), "--out", str(tmp_path / "out")] if command == "run"
                else [command, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(path) in err
    return err


@pytest.mark.parametrize(("serving", "memory", "says"), [
    ({"slo": {"ttft": "2"}}, "80 GB", "slo.ttft: expected a duration > 0 with its unit"),
    ({"slo": {"tpot": 0.1}}, "80 GB", "slo.tpot: expected a duration > 0 with its unit"),
    ({"replicas": 2, "tp": 2}, "80 GB", "workload.serving.replicas: expected replicas x tp"),
    ({}, "17 GB", "workload.serving.tp: expected a split whose weights"),
    ({"output": {"kind": "fixed", "mean": 4000, "max": 4096}, "scheduler": "sarathi"}, "18.8 GB",
     "workload.serving.tp: expected a KV cache of at least"),
    ({"model": "llama9"}, "80 GB", "workload.serving.model: expected a zoo transformer"),
    ({"model": "mixtral_8x7b"}, "80 GB", "expected a dense transformer"),
    ({"tp": 3, "replicas": 1}, "80 GB", "workload.serving.tp: expected a divisor"),
    ({"token_budget": 512}, "80 GB", "workload.serving.token_budget"),
    ({"arrivals": {"kind": "poisson"}}, "80 GB", "rate"),
    ({"prompt": {"kind": "uniform", "min": 50, "max": 10}}, "80 GB",
     "workload.serving.prompt.max: expected at least min"),
    ({"scheduler": "fifo"}, "80 GB", "workload.serving.scheduler"),
])
def test_bad_serving_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       serving: dict, memory: str, says: str) -> None:
    assert says in _refusal(tmp_path, capsys, serving_toml(memory, **serving))


@pytest.mark.parametrize(("csv", "says"), [
    ("arrival_s,prompt_tokens\n0,1\n", "without output_tokens"),
    (TRACE, "row 4: 0.25 after 0.5"),
    ("arrival_s,prompt_tokens,output_tokens\n0,1.5,3\n", "row 2: '1.5'"),
])
def test_bad_trace_names_the_row(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 csv: str, says: str) -> None:
    (tmp_path / "trace.csv").write_text(csv)
    text = serving_toml(arrivals={"kind": "trace", "trace": "trace.csv"},
                        prompt={"kind": "trace"}, output={"kind": "trace"})
    err = _refusal(tmp_path, capsys, text, "run")
    assert "workload.serving.arrivals.trace" in err and says in err


def test_a_trace_is_served_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    (tmp_path / "trace.csv").write_text(TRACE.replace("0.25", "0.75"))
    (tmp_path / "s.toml").write_text(serving_toml(
        arrivals={"kind": "trace", "trace": "trace.csv"}, prompt={"kind": "trace"},
        output={"kind": "trace"}))
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 0
    rows = (tmp_path / "out" / "requests.csv").read_text().splitlines()
    assert [r.split(",")[2:5] for r in rows[1:]] == [
        ["0.0", "100", "10"], ["0.5", "200", "20"], ["0.75", "50", "5"]]
    assert "3 requests" in capsys.readouterr().out


def test_run_writes_its_files_and_check_says_ok(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.toml").write_text(serving_toml())
    assert main(["check", str(tmp_path / "s.toml")]) == 0
    assert capsys.readouterr().out.startswith("ok: serving test: llama3_8b x 1 replicas")
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "latency_cdf.png", "requests.csv", "summary.json", "timeline.png"]


@pytest.mark.parametrize("kind", ["fixed", "uniform", "lognormal", "zipf"])
def test_lengths_stay_in_their_bounds(kind: str) -> None:
    table = {"kind": kind, "mean": 300, "min": 20, "max": 900, "sigma": 1.5, "alpha": 1.2}
    x = lengths(table, 5000, 1, "prompt")
    assert x.min() >= 20 and x.max() <= 900
    assert (x == 300).all() if kind == "fixed" else len(np.unique(x)) > 50


def test_zipf_puts_most_mass_on_the_shortest() -> None:
    x = lengths({"kind": "zipf", "min": 1, "max": 1000, "alpha": 2.0}, 20_000, 0, "output")
    # P(1) = 1 / zeta_1000(2) = 0.608; 20,000 draws put the share within 0.02 (> 5 sd)
    assert abs((x == 1).mean() - 0.608) < 0.02


def test_schema_prints_the_serving_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    serving = json.loads(capsys.readouterr().out)["properties"]["workload"]["properties"][
        "serving"]
    assert {"scheduler", "arrivals", "prompt", "output", "slo"} <= set(serving["properties"])


def test_set_and_variant_reach_a_serving_file(capsys: pytest.CaptureFixture[str]) -> None:
    """--set and --variant mean the same for a serving file as for a training one."""
    bundled = Path(__file__).resolve().parents[1] / "scenarios" / "serve_llama3_8b_chat.toml"
    assert main(["check", str(bundled), "--variant", "vllm",
                 "--set", "workload.serving.requests=7"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "[vllm]" in out[0] and ", 7 requests," in out[0]
    assert main(["check", str(bundled), "--set", "workload.serving.requests=0"]) == 2
    assert "--set workload.serving.requests: expected" in capsys.readouterr().err
