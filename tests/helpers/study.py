"""Study files and sweep processes shared by the study tests."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leptonsim.cli import main
from leptonsim.study import (
    InlineExecutor,
    loads_sweep,
    run_sweep,
)

ROOT = Path(__file__).resolve().parents[2]


BASE = """
[scenario]
name = "study base"

[hardware]
topology = "switch"

[[hardware.units]]
name = "gpu"
count = 4
peak = "100 TFLOP/s"
memory_bandwidth = "2 TB/s"
efficiency = 0.5
idle_power = "50 W"
busy_power = "300 W"

[hardware.link]
latency = "5 us"
bandwidth = "10 GB/s"
energy_per_byte = "10 pJ/B"

[workload.generator]
kind = "fork_join"
width = 6
stages = 2
flops = "50 GFLOP"
edge_bytes = "16 MB"
"""


def study(sweep: str, base: str = BASE) -> str:
    """A scenario file: the base plus a [sweep] block."""
    return base + "\n" + sweep


GRID = """
[sweep.parameters]
"hardware.units[0].count" = [1, 2]
"hardware.link.bandwidth" = ["10 GB/s", "20 GB/s", "30 GB/s"]
"""


SLOW = study("""
[sweep.parameters]
"hardware.units[0].count" = { start = 1, stop = 8 }
"hardware.link.bandwidth" = [1e9, 1e10, 1e11, 1e12, 1e13]
""", BASE.replace('kind = "fork_join"\nwidth = 6', 'kind = "layered"\ntasks = 3000\nwidth = 20'))


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def run_inline(text: str, out: Path, **kw: object) -> None:
    run_sweep(loads_sweep(text, "study.toml"), out, InlineExecutor(), **kw)  # type: ignore[arg-type]


def spawn_sweep(file: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "leptonsim", "sweep", str(file),
                             "--out", str(out), *extra], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def wait_for_rows(path: Path, proc: subprocess.Popen[str], rows: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_text().count("\n") > rows:
            return
        time.sleep(0.005)
    raise AssertionError(f"sweep ended or stalled before {rows} rows: {proc.poll()}")


def one_line_refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err
