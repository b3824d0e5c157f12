"""Small scenarios shared by several test modules.

TINY: seed_cnn on two V100s in two pipeline stages (validate, calibrate, refusals).
a100_switch: [scenario] and [hardware] of A100s on one NVLink 3 switch.
GENERATED: a generated workload, a template of seed, topology, units, eff, kind, tasks
and scheduler (the CLI's and the output sets' tests).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from leptonsim.result import RunResult, run
from leptonsim.scenario import loads

TINY = """
[scenario]
name = "tiny"
description = "seed_cnn, two pipeline stages"

[hardware]
topology = "full"

[[hardware.units]]
name = "gpu"
count = 2
preset = "v100"

[hardware.link]
preset = "pcie4_x16"

[workload.model]
name = "seed_cnn"
batch = 4
microbatches = 2
precision = "fp32"
optimizer = "sgd"

[parallel]
pp = 2
"""


def a100_switch(units: int | str, name: str = "m") -> str:
    """The head of a scenario: `units` A100 80GB GPUs on one NVLink 3 switch (a str
    such as "{units}" keeps it a template)."""
    return (f'[scenario]\nname = "{name}"\n[hardware]\ntopology = "switch"\n'
            f'[[hardware.units]]\nname = "gpu"\ncount = {units}\npreset = "a100_80gb"\n'
            '[hardware.link]\npreset = "nvlink3"\n')


GENERATED = """
[scenario]
name = "prop"
seed = {seed}
[hardware]
topology = "{topology}"
[[hardware.units]]
name = "gpu"
count = {units}
peak = "10 TFLOP/s"
memory_bandwidth = "1 TB/s"
efficiency = {eff}
[hardware.link]
latency = "2 us"
bandwidth = "25 GB/s"
[workload.generator]
kind = "{kind}"
tasks = {tasks}
width = 4
stages = 2
flops = "1 GFLOP"
edge_bytes = "4 MB"
spread = 0.5
[schedule]
scheduler = "{scheduler}"
"""


FILES = ["gantt.png", "summary.json", "tasks.csv", "trace.json", "transfers.csv"]


def run_result(tasks: int, seed: int) -> RunResult:
    text = GENERATED.format(seed=seed, topology="ring", units=3, eff=0.5, kind="layered",
                           tasks=tasks, scheduler="heft")
    return run(loads(text)[0])


def refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str,
            words: str) -> None:
    """`leptonsim run` on the scenario `text`: exit 2, one line on stderr naming the file
    and `key` and matching the regular expression `words`, and no output written."""
    from leptonsim.cli import main

    f = tmp_path / "bad.toml"
    f.write_text(text)
    out = tmp_path / "out"
    assert main(["run", str(f), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {f}: {key}: "), err
    assert re.search(words, err[0]), err
    assert not out.exists()


def one_gpu_model(preset: str, precision: str) -> str:
    """A scenario of one `preset` GPU training a model at `precision`, batch 8; its
    `{model}` placeholder takes the rest of [workload.model] (name, layers, keys)."""
    return f"""
[scenario]
name = "one gpu"
[hardware]
topology = "full"
[[hardware.units]]
name = "gpu"
count = 1
preset = "{preset}"
[workload.model]
batch = 8
precision = "{precision}"
{{model}}
"""
