"""Names of swept key paths: [sweep.labels], humanised defaults, and where they go."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from leptonsim.study import InlineExecutor, loads_sweep, run_sweep
from leptonsim.study.labels import humanise, labels_of, read_labels
from tests.helpers.study import GRID, study


def test_key_paths_are_humanised_to_what_they_name() -> None:
    assert humanise("hardware.units[0].count") == "units"   # a count: what it counts
    assert humanise("hardware.link.bandwidth") == "bandwidth"
    assert humanise("hardware.link.preset") == "link preset"  # vague alone
    assert humanise("workload.generator.kind") == "generator kind"
    assert humanise("hardware.two_level.units_per_node") == "units per node"
    # alike at one depth: more of the path until they differ
    assert labels_of(["hardware.units[0].count", "hardware.units[1].count"]) == {
        "hardware.units[0].count": "units[0]", "hardware.units[1].count": "units[1]"}
    assert labels_of(["hardware.link.bandwidth", "hardware.two_level.inter.bandwidth"]) == {
        "hardware.link.bandwidth": "link bandwidth",
        "hardware.two_level.inter.bandwidth": "inter bandwidth"}


SEGMENT = st.sampled_from(["hardware", "link", "units[0]", "units[1]", "count", "kind",
                           "bandwidth", "inter", "intra", "preset", "units"])


@given(st.lists(st.lists(SEGMENT, min_size=1, max_size=4).map(".".join), min_size=1,
                max_size=6, unique=True),
       st.dictionaries(st.integers(0, 5), st.sampled_from(["GPUs", "speed", "units"])))
def test_no_two_parameters_read_alike(paths: list[str], given_: dict[int, str]) -> None:
    """Theorem: whatever the key paths and the labels given, the labels are distinct
    (a label two would share falls back to the key paths, which are distinct)."""
    named = {paths[i]: v for i, v in given_.items() if i < len(paths)}
    labels = labels_of(paths, named)
    assert list(labels) == paths
    assert len(set(labels.values())) == len(paths)


def test_labels_reach_the_sweep_and_its_manifest(tmp_path: Path) -> None:
    text = study(GRID + '[sweep.labels]\n"hardware.link.bandwidth" = "link speed"\n')
    sweep = loads_sweep(text, "study.toml")
    assert sweep.labels == {"hardware.units[0].count": "units",
                            "hardware.link.bandwidth": "link speed"}
    done = run_sweep(sweep, tmp_path, InlineExecutor(), progress=False)
    manifest = json.loads((tmp_path / "sweep.json").read_text())
    assert manifest["labels"] == sweep.labels
    assert read_labels(done.sorted, sweep.parameter_names) == sweep.labels
    # the CSV keeps its key paths as column names: what a resumed sweep matches
    assert done.sorted.read_text().splitlines()[0].split(",")[2:4] == list(sweep.labels)
    alone = tmp_path / "alone" / "results.csv"  # copied without its sweep.json
    alone.parent.mkdir()
    alone.write_bytes(done.sorted.read_bytes())
    assert read_labels(alone, sweep.parameter_names)["hardware.link.bandwidth"] == "bandwidth"
