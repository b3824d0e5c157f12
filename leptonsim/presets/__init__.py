"""Sourced hardware presets: devices.toml and links.toml shipped inside the package.

Values are returned raw (strings with units such as "312 TFLOP/s", "2039 GB/s", "5 us");
the scenario layer parses them. Each call returns fresh dicts, so callers may mutate them.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from typing import Any

__all__ = ["device_presets", "failure_presets", "host_presets", "link_presets", "preset_names"]


def _load(resource: str) -> dict[str, dict[str, Any]]:
    """The presets of a catalog, each one that names another with `like` resolved: it
    starts from that preset's values (an earlier entry's), and states only what differs."""
    text = files(__name__).joinpath(resource).read_text(encoding="utf-8")
    out: dict[str, dict[str, Any]] = {}
    for name, values in tomllib.loads(text).items():
        base = values.pop("like", None)
        out[name] = {**out[base], **values} if base is not None else values
    return out


def device_presets() -> dict[str, dict[str, Any]]:
    """Compute-unit presets by name (v100, a100_80gb, h100_sxm, tpu_v4, cpu_core, ...)."""
    return _load("devices.toml")


def link_presets() -> dict[str, dict[str, Any]]:
    """Link presets by name (nvlink3, pcie5_x16, infiniband_ndr, ethernet_100g, ...)."""
    return _load("links.toml")


def failure_presets() -> dict[str, dict[str, Any]]:
    """Failure-rate presets by name (llama3_h100, opt_a100): MTBFs in hours per unit,
    node and job, with their sources: failures.toml."""
    return _load("failures.toml")


def host_presets() -> dict[str, dict[str, Any]]:
    """What offload needs of a device's host: `links` (device preset -> its host link's
    preset) and `cpu_adam` (params_per_s, a node's CPU-Adam rate): hosts.toml."""
    text = files(__name__).joinpath("hosts.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def preset_names() -> dict[str, list[str]]:
    """Names of all presets: {"devices": [...], "links": [...]}, in file order."""
    return {"devices": list(device_presets()), "links": list(link_presets())}
