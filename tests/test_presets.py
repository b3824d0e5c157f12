"""The hardware preset catalog: complete, well-formed, sourced and sane."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from leptonsim.presets import device_presets, link_presets, preset_names

DEVICE_NAMES = {"v100", "v100_16gb", "v100_32gb", "a100_40gb", "a100_80gb", "h100_sxm",
                "h100_pcie", "h200", "b200", "mi300x", "tpu_v4", "tpu_v5e", "l4", "cpu_core",
                "cpu_socket", "jetson_orin"}
LINK_NAMES = {"nvlink2", "nvlink3", "nvlink4", "nvlink5", "pcie4_x16", "pcie5_x16", "infiniband_hdr",
              "infiniband_ndr", "roce_400g",
              "ethernet_100g", "ethernet_25g"}

DEVICE_KEYS = {"description", "peak", "peak_fp32", "memory_bandwidth", "memory", "efficiency",
               "overhead", "idle_power", "busy_power", "price_per_hour", "sms",
               "bandwidth_efficiency"}
PEAK_KEYS = {f"peak_{p}" for p in ("fp64", "tf32", "fp16", "bf16", "fp8", "int8")}
LINK_KEYS = {"description", "bandwidth", "latency", "duplex", "energy_per_byte", "bus_efficiency",
             "in_network_reduction"}

_NUM = r"\d+(?:\.\d+)?"
_PREFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
           "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
           "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12}
PATTERNS = {
    "flops": re.compile(rf"^{_NUM} [kMGTP]?FLOP/s$"),
    "bandwidth": re.compile(rf"^{_NUM} [kMGTP]?B/s$"),
    "bytes": re.compile(rf"^{_NUM} (?:[kKMGTP]i?)?B$"),
    "time": re.compile(rf"^{_NUM} (?:s|ms|us|ns)$"),
    "power": re.compile(rf"^{_NUM} [kM]?W$"),
    "energy_per_byte": re.compile(rf"^{_NUM} [munp]?J/B$"),
}
DEVICE_KINDS = {"peak": "flops", "peak_fp32": "flops", "memory_bandwidth": "bandwidth",
                "memory": "bytes", "overhead": "time", "idle_power": "power", "busy_power": "power"}
LINK_KINDS = {"bandwidth": "bandwidth", "latency": "time", "energy_per_byte": "energy_per_byte"}


def si(value: str) -> float:
    """'312 TFLOP/s' -> 3.12e14; enough of a parser for the sanity relations below."""
    number, unit = value.split(" ", 1)
    m = re.match(r"^(Ki|Mi|Gi|Ti|[kKMGTPmunp]?)(FLOP/s|B/s|B|W|J/B|s)$", unit)
    assert m, f"unrecognised unit in {value!r}"
    return float(number) * _PREFIX[m.group(1)]


def test_all_presets_present() -> None:
    assert set(device_presets()) == DEVICE_NAMES
    assert set(link_presets()) == LINK_NAMES
    names = preset_names()
    assert set(names["devices"]) == DEVICE_NAMES
    assert set(names["links"]) == LINK_NAMES


def test_returns_fresh_dicts() -> None:
    device_presets()["v100"]["peak"] = "1 FLOP/s"
    assert device_presets()["v100"]["peak"] != "1 FLOP/s"


@pytest.mark.parametrize("name", sorted(DEVICE_NAMES))
def test_device_keys_and_units(name: str) -> None:
    preset = device_presets()[name]
    assert DEVICE_KEYS <= set(preset) <= DEVICE_KEYS | PEAK_KEYS
    assert 0.0 < preset["bandwidth_efficiency"] <= 1.0
    assert isinstance(preset["sms"], int) and preset["sms"] >= 0
    # the default peak is one of the device's precisions' peaks
    assert preset["peak"] in {preset[k] for k in PEAK_KEYS | {"peak_fp32"} if k in preset}
    assert isinstance(preset["description"], str) and preset["description"]
    for key, kind in {**DEVICE_KINDS, **{k: "flops" for k in PEAK_KEYS & set(preset)}}.items():
        assert isinstance(preset[key], str), (name, key)
        assert PATTERNS[kind].match(preset[key]), f"{name}.{key} = {preset[key]!r} is not {kind}"
    assert 0.0 < preset["efficiency"] <= 1.0
    assert isinstance(preset["price_per_hour"], float) and preset["price_per_hour"] > 0
    assert si(preset["peak"]) >= si(preset["peak_fp32"]) > 0
    assert si(preset["busy_power"]) > si(preset["idle_power"]) > 0


@pytest.mark.parametrize("name", sorted(LINK_NAMES))
def test_link_keys_and_units(name: str) -> None:
    preset = link_presets()[name]
    assert set(preset) == LINK_KEYS
    assert isinstance(preset["description"], str) and preset["description"]
    for key, kind in LINK_KINDS.items():
        assert isinstance(preset[key], str), (name, key)
        assert PATTERNS[kind].match(preset[key]), f"{name}.{key} = {preset[key]!r} is not {kind}"
    assert preset["duplex"] is True
    assert isinstance(preset["bus_efficiency"], float) and 0.0 < preset["bus_efficiency"] <= 1.0
    assert isinstance(preset["in_network_reduction"], bool)


_TABLE = re.compile(r"^\s*\[[^\]]+\]\s*(#.*)?$")
_KEY_VALUE = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


@pytest.mark.parametrize("resource", ["devices.toml", "links.toml"])
def test_every_value_has_a_source_comment(resource: str) -> None:
    lines = files("leptonsim.presets").joinpath(resource).read_text(encoding="utf-8").splitlines()
    in_table = False
    checked = 0
    for i, line in enumerate(lines):
        if _TABLE.match(line):
            in_table = True
            continue
        m = _KEY_VALUE.match(line)
        if not (in_table and m) or m.group(1) in ("description", "like"):
            continue
        previous = lines[i - 1].strip() if i > 0 else ""
        assert "#" in line or previous.startswith("#"), (
            f"{resource}:{i + 1}: {line.strip()!r} has no source comment on it or just above")
        checked += 1
    assert checked > 0


def test_sanity_relations() -> None:
    d, k = device_presets(), link_presets()
    assert si(d["h100_sxm"]["peak"]) > si(d["a100_80gb"]["peak"]) > si(d["v100"]["peak"])
    assert (si(k["nvlink5"]["bandwidth"]) > si(k["nvlink4"]["bandwidth"])
            > si(k["nvlink3"]["bandwidth"]) > si(k["nvlink2"]["bandwidth"]))
    # in-switch reduction: NVLink SHARP from third-generation NVSwitch (Hopper) on, SHARP on IB
    assert [n for n in k if k[n]["in_network_reduction"]] == [
        "nvlink4", "nvlink5", "infiniband_hdr", "infiniband_ndr"]
    assert (si(k["nvlink4"]["bandwidth"]) > si(k["nvlink3"]["bandwidth"])
            > si(k["pcie5_x16"]["bandwidth"]) > si(k["pcie4_x16"]["bandwidth"]))
    assert si(k["infiniband_ndr"]["bandwidth"]) > si(k["infiniband_hdr"]["bandwidth"])
    assert si(k["ethernet_100g"]["bandwidth"]) > si(k["ethernet_25g"]["bandwidth"])
    # A socket is many cores: its peak and bandwidth are the per-core share times the core count.
    cores = si(d["cpu_socket"]["peak"]) / si(d["cpu_core"]["peak"])
    assert cores == pytest.approx(96)
    assert si(d["cpu_socket"]["memory_bandwidth"]) == pytest.approx(
        cores * si(d["cpu_core"]["memory_bandwidth"]))
