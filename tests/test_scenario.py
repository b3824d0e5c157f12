"""Scenario files: every topology and workload style builds the model it describes,
presets merge under overrides, variants override, and schema and docs agree."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from leptonsim.hardware import Cluster
from leptonsim.scenario import Objective, Scenario, check, load, loads, schema
from leptonsim.scenario.schema import SI_UNIT

DOCS = Path(__file__).resolve().parent.parent / "docs" / "scenarios.md"

FULL = """
[scenario]
name = "full mesh"
description = "four GPUs, every pair linked"
seed = 3

[hardware]
topology = "full"

[[hardware.units]]
name = "gpu"
count = 4
peak = "19.5 TFLOP/s"
memory_bandwidth = "1.5 TB/s"
memory = "16 GiB"
efficiency = 0.8
overhead = "5 us"
idle_power = "50 W"
busy_power = "300 W"
price_per_hour = 2.5

[hardware.link]
latency = "2 us"
bandwidth = "25 GB/s"
duplex = false
energy_per_byte = "10 pJ/B"

[workload.generator]
kind = "layered"
tasks = 30
width = 5
degree = 3
flops = "1 GFLOP"
bytes = "10 MB"
edge_bytes = "1 MB"
spread = 0.1
"""

RING = """
[scenario]
name = "ring"
[hardware]
topology = "ring"
[[hardware.units]]
name = "tpu"
count = 5
preset = "tpu_v4"
[hardware.link]
bandwidth = 50e9
[workload.generator]
kind = "chain"
tasks = 7
duration = "2 ms"
edge_bytes = 1000
"""

SWITCH = """
[scenario]
name = "star"
[hardware]
topology = "switch"
[[hardware.units]]
name = "cpu"
count = 3
peak = "1 TFLOP/s"
memory_bandwidth = "100 GB/s"
efficiency = "50%"
[hardware.link]
preset = "ethernet_100g"
[workload.generator]
kind = "independent"
tasks = 12
duration = "1 s"
[schedule]
scheduler = "greedy"
"""

TWO_LEVEL = """
[scenario]
name = "two nodes"
[hardware]
topology = "two_level"
[[hardware.units]]
name = "gpu"
count = 16
preset = "h100_sxm"
[hardware.two_level]
units_per_node = 8
intra = { preset = "nvlink4" }
inter = { latency = "5 us", bandwidth = "50 GB/s" }
[workload.generator]
kind = "fork_join"
width = 4
stages = 3
flops = "2 TFLOP"
edge_bytes = "64 MB"
"""

EXPLICIT = """
[scenario]
name = "hand-written graph"
[hardware]
topology = "explicit"
switches = ["sw0"]
[[hardware.units]]
name = "gpu"
count = 2
preset = "a100_80gb"
[[hardware.units]]
name = "host"
peak = "2 TFLOP/s"
memory_bandwidth = "200 GB/s"
[[hardware.links]]
name = "nv"
a = "gpu0"
b = "gpu1"
preset = "nvlink3"
[[hardware.links]]
a = "gpu1"
b = "sw0"
latency = "1 us"
bandwidth = "32 GB/s"
[[hardware.links]]
a = "sw0"
b = "host"
bandwidth = "32 GB/s"
duplex = false

[[workload.tasks]]
name = "load"
duration = "3 ms"
kind = "io"
unit = "host"
[[workload.tasks]]
name = "conv1"
flops = "2 GFLOP"
bytes = "40 MB"
kind = "conv2d"
unit = "gpu1"
inputs = [{ from = "load", bytes = "4 MB" }]
[[workload.tasks]]
name = "conv2"
flops = "2 GFLOP"
kind = "conv2d"
after = ["conv1"]
[[workload.tasks]]
name = "head"
flops = 1e6
after = ["load"]
inputs = [{ from = "conv2", bytes = "1 MB" }, { from = "conv1" }]

[schedule]
scheduler = "heft"
"""

EXAMPLES = {"full": FULL, "ring": RING, "switch": SWITCH, "two_level": TWO_LEVEL,
            "explicit": EXPLICIT}


def docs_example() -> str:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, re.DOTALL)
    return next(b for b in blocks if "[scenario]" in b)


def one(text: str) -> Scenario:
    (s,) = loads(text, file="example.toml")
    return s


# -- hardware ---------------------------------------------------------------------------

def test_full_topology_parses_every_unit_and_link_field_to_si() -> None:
    s = one(FULL)
    assert (s.name, s.variant, s.seed, s.file) == ("full mesh", "", 3, "example.toml")
    assert s.description == "four GPUs, every pair linked"
    assert [u.name for u in s.cluster.units] == ["gpu0", "gpu1", "gpu2", "gpu3"]
    u = s.cluster.units[2]
    assert u.peak_flops == pytest.approx(19.5e12)
    assert u.memory_bandwidth == pytest.approx(1.5e12)
    assert u.memory_bytes == 16 * 2**30
    assert (u.efficiency, u.overhead_s, u.idle_power_w, u.busy_power_w) == (
        0.8, 5e-6, 50.0, 300.0)
    assert len(s.cluster.links) == 6 and s.cluster.switches == ()
    spec = s.cluster.links[0].spec
    assert spec.latency_s == pytest.approx(2e-6)
    assert spec.bandwidth == pytest.approx(25e9)
    assert spec.duplex is False
    assert spec.energy_per_byte_j == pytest.approx(10e-12)
    assert s.scheduler == "heft" and s.claims == {} and s.objective is None


def test_ring_with_preset_units_and_bare_si_numbers() -> None:
    s = one(RING)
    assert s.cluster.size == 5 and len(s.cluster.links) == 5
    assert s.cluster.links[0].spec.bandwidth == 50e9
    assert s.cluster.links[0].spec.latency_s == 0.0  # default
    assert s.cluster.links[0].spec.duplex is True  # default
    assert s.cluster.units[0].peak_flops == pytest.approx(275e12)  # tpu_v4 preset


def test_switch_topology_and_percentage_efficiency() -> None:
    s = one(SWITCH)
    assert [u.name for u in s.cluster.units] == ["cpu0", "cpu1", "cpu2"]
    assert s.cluster.switches == ("switch",)
    assert {link.b for link in s.cluster.links} == {"switch"}
    assert s.cluster.units[0].efficiency == pytest.approx(0.5)
    assert math.isinf(s.cluster.units[0].memory_bytes)  # default: unlimited
    assert s.cluster.links[0].spec.bandwidth == pytest.approx(12.5e9)  # ethernet_100g
    assert s.scheduler == "greedy"


def test_two_level_topology() -> None:
    s = one(TWO_LEVEL)
    assert s.cluster.size == 16
    assert s.cluster.switches == ("node0.switch", "node1.switch", "spine")
    assert s.cluster.units_per_node == 8
    uplinks = [link for link in s.cluster.links if link.name.endswith("uplink")]
    assert len(uplinks) == 2 and uplinks[0].spec.bandwidth == 50e9
    port = next(link for link in s.cluster.links if link.name == "node1.port3")
    assert (port.a, port.b) == ("gpu11", "node1.switch")
    assert port.spec.bandwidth == pytest.approx(450e9)  # nvlink4 preset, per direction


def test_explicit_topology_with_switches_and_named_links() -> None:
    s = one(EXPLICIT)
    assert [u.name for u in s.cluster.units] == ["gpu0", "gpu1", "host"]
    assert s.cluster.switches == ("sw0",)
    assert s.cluster.units_per_node is None
    assert [link.name for link in s.cluster.links] == ["nv", "link1", "link2"]
    assert s.cluster.links[2].spec.duplex is False
    # routable: host reaches gpu0 through sw0 and gpu1
    assert len(s.cluster.route(2, 0)) == 3


# -- workload ------------------------------------------------------------------------------

def test_explicit_graph_pins_kinds_and_edge_bytes() -> None:
    g = one(EXPLICIT).graph
    assert list(g.names) == ["load", "conv1", "conv2", "head"]
    assert list(g.pin) == [2, 1, -1, -1]
    assert g.kinds is not None and list(g.kinds) == ["io", "conv2d", "conv2d", "task"]
    assert g.duration_s[0] == pytest.approx(3e-3) and np.isnan(g.duration_s[1:]).all()
    assert list(g.flops) == [0.0, 2e9, 2e9, 1e6]
    assert list(g.nbytes) == [0.0, 40e6, 0.0, 0.0]
    edges = {(g.names[a], g.names[b]): nb for a, b, nb in
             zip(g.edge_src, g.edge_dst, g.edge_bytes, strict=True)}
    assert edges == {("load", "conv1"): 4e6, ("conv1", "conv2"): 0.0, ("load", "head"): 0.0,
                     ("conv2", "head"): 1e6, ("conv1", "head"): 0.0}


def test_generated_graphs_have_the_generators_shape() -> None:
    full = one(FULL).graph
    assert full.size == 30 and full.num_edges == 25 * 3
    assert np.all(full.edge_bytes == 1e6)
    assert np.all((full.flops >= 0.9e9) & (full.flops <= 1.1e9))  # spread 0.1
    assert len(set(full.flops)) > 1
    ring = one(RING).graph
    assert ring.size == 7 and ring.num_edges == 6
    assert np.allclose(ring.duration_s, 2e-3)
    assert one(SWITCH).graph.num_edges == 0
    fj = one(TWO_LEVEL).graph
    assert fj.size == 3 * 5 + 1 and np.all(fj.edge_bytes == 64e6)
    assert np.all(fj.pin == -1)


def test_seed_makes_generated_graphs_reproducible() -> None:
    a, b = one(FULL).graph, one(FULL).graph
    c = one(FULL.replace("seed = 3", "seed = 4")).graph
    assert np.array_equal(a.flops, b.flops) and np.array_equal(a.edge_src, b.edge_src)
    assert not np.array_equal(a.flops, c.flops)


def test_split_max_splits_fixed_duration_tasks() -> None:
    text = RING.replace('duration = "2 ms"', 'duration = "10 s"\nsplit_max = "4 s"')
    g = one(text).graph
    assert g.size == 7 * 3
    assert np.allclose(g.duration_s, 10 / 3)
    assert list(g.names[:3]) == ["t0.0", "t0.1", "t0.2"]


# -- presets, claims, objective, variants ---------------------------------------------

def test_presets_merge_under_overrides() -> None:
    s = one(docs_example().split("[variants")[0])
    u = s.cluster.units[0]
    assert u.peak_flops == pytest.approx(312e12)  # from a100_80gb
    assert u.busy_power_w == 400.0  # from a100_80gb
    assert u.efficiency == 0.8  # override (preset says 0.8 too, so check memory)
    assert u.memory_bytes == 80 * 2**30  # override of the preset's "80 GB"
    spec = s.cluster.links[0].spec
    assert spec.bandwidth == pytest.approx(300e9)  # nvlink3
    assert spec.latency_s == pytest.approx(5e-6)  # override of nvlink3's 2 us
    assert spec.energy_per_byte_j == pytest.approx(44e-12)  # nvlink3
    eff = one(EXPLICIT.replace('preset = "a100_80gb"', 'preset = "a100_80gb"\nefficiency = 0.6'))
    assert eff.cluster.units[0].efficiency == 0.6


def test_claims_and_objective() -> None:
    s = one(docs_example().split("[variants")[0])
    assert s.claims == {"makespan_s": 50.0}
    assert s.claim_source == "seed §4.3"
    assert s.objective == Objective(0.01, 0.02, 0.5)
    assert s.objective.value == pytest.approx(0.02)
    more = one(FULL + '[claims]\nenergy = "3 kWh"\nspeedup = 7.5\n')
    assert more.claims == {"energy_j": pytest.approx(3.6e6 * 3), "speedup": 7.5}
    assert more.claim_source == ""


def test_docs_example_loads_with_its_variants_in_sorted_order() -> None:
    independent, unsplit = loads(docs_example(), file="seed.toml")
    assert (independent.variant, unsplit.variant) == ("independent", "unsplit")
    assert independent.name == unsplit.name == "seed case study"
    assert independent.description == "the same work without dependencies"
    assert independent.graph.size == 200 and independent.graph.num_edges == 0
    assert unsplit.graph.size == 100 and unsplit.graph.num_edges == 99
    assert unsplit.description.startswith("100 conv layers")
    assert unsplit.cluster.size == 10 and unsplit.cluster.switches == ("switch",)


def test_variants_override_list_entries_and_whole_tables() -> None:
    text = FULL + """
[variants.small]
"hardware.units[0].count" = 2
"hardware.units[0].efficiency" = 0.5
[variants.nvlink]
"hardware.link" = { preset = "nvlink3" }
"schedule.scheduler" = "greedy"
"claims.makespan" = "40 s"
"""
    nvlink, small = loads(text)
    assert small.label == "full mesh [small]"
    assert small.cluster.size == 2 and small.cluster.units[1].efficiency == 0.5
    assert small.cluster.links[0].spec.bandwidth == pytest.approx(25e9)
    assert nvlink.cluster.size == 4
    assert nvlink.cluster.links[0].spec.bandwidth == pytest.approx(300e9)
    assert nvlink.cluster.links[0].spec.duplex is True  # the whole table was replaced
    assert nvlink.scheduler == "greedy" and nvlink.claims == {"makespan_s": 40.0}


def test_variant_can_switch_kind_when_the_base_carries_the_keys() -> None:
    text = FULL + '[variants.fj]\n"workload.generator.kind" = "fork_join"\n' \
        '"workload.generator.stages" = 2\n'
    (fj,) = loads(text)
    assert fj.graph.size == 2 * 6 + 1


def test_load_and_check_read_files(tmp_path: Path) -> None:
    path = tmp_path / "ring.toml"
    path.write_text(RING, encoding="utf-8")
    (s,) = load(path)
    assert s.file == str(path) and isinstance(s.cluster, Cluster)
    assert [x.name for x in check(str(path))] == ["ring"]


# -- schema and docs ------------------------------------------------------------------------

def walk(node: object, path: str = ""):
    """Every (path, property name, property schema) in a schema."""
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield path, name, sub
            yield from walk(sub, f"{path}.{name}")
        for word in ("items", "additionalProperties"):
            if isinstance(node.get(word), dict):
                yield from walk(node[word], f"{path}[]")


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema() is not schema()  # fresh copies


def test_schema_documents_every_property_and_closes_every_table() -> None:
    props = list(walk(schema()))
    assert len(props) > 60
    for path, name, sub in props:
        assert sub.get("description"), f"{path}.{name} has no description"
        if "properties" in sub:
            assert sub["additionalProperties"] is False, f"{path}.{name} is open"
        if "x-quantity" in sub:  # a bare number, or (with a pattern) a unit required
            assert sub["type"] == ("string" if "pattern" in sub else ["string", "number"])
            assert sub["x-quantity"] in SI_UNIT
            assert "e.g." in sub["description"]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_validates_against_the_schema(name: str) -> None:
    jsonschema.validate(tomllib.loads(EXAMPLES[name]), schema())


def test_docs_example_validates_against_the_schema() -> None:
    jsonschema.validate(tomllib.loads(docs_example()), schema())


def test_docs_mention_every_property_of_the_schema() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = sorted({name for _, name, _ in walk(schema()) if f"`{name}`" not in text})
    assert not missing, f"docs/scenarios.md does not mention {missing}"


def test_docs_mention_every_enum_value() -> None:
    text = DOCS.read_text(encoding="utf-8")
    values = {v for _, _, sub in walk(schema()) for v in sub.get("enum", [])}
    assert values and all(f"`{v}`" in text for v in values)


def test_schema_names_exactly_the_engines_schedulers_and_networks() -> None:
    from leptonsim import sim
    from leptonsim.scenario.schema import NETWORKS, SCHEDULERS

    assert set(SCHEDULERS) == {"auto", *sim.SCHEDULERS}
    assert set(NETWORKS) == set(sim.NETWORKS)
