"""[noise]: its schema and its Noise (leptonsim.noise); every bound is the schema's, so
a bad value is one line naming its key (a negative sigma, a fraction outside [0, 1])."""

from __future__ import annotations

from typing import Any

from ..noise import Noise, Spread

Schema = dict[str, Any]

SIGMA_MAX = 3.0     # exp(3 Z) spans 10^-4 to 10^4 at 3 standard deviations
SLOWDOWN_MAX = 1e3  # a unit 1,000 times slower is a failure, not a straggler


def _number(meaning: str, low: float, high: float, default: float) -> Schema:
    return {"type": "number", "minimum": low, "maximum": high, "default": default,
            "x-magnitude": "dimensionless", "description": meaning}


def _spread(table: Any, what: str, straggler: str) -> Schema:
    return table(f"{what}: a lognormal factor of median 1, exp(sigma Z), times slowdown "
                 f"with probability fraction; it multiplies {straggler}", {
                     "sigma": _number("Standard deviation of the factor's log", 0, SIGMA_MAX, 0.0),
                     "fraction": _number("Probability that one is slowed down", 0, 1, 0.0),
                     "slowdown": _number("The factor of one slowed down", 1, SLOWDOWN_MAX, 1.0),
                 }, default={})


def noise_schema(table: Any, integer: Any) -> Schema:
    return table("Noise (docs/noise.md): factors drawn per sample, fixed for the sample, "
                 "seeded; `leptonsim run` draws sample 0, `--samples N` N of them", {
                     "units": _spread(table, "Per-unit speed", "a unit's compute task times "
                                      "(stragglers)"),
                     "tasks": _spread(table, "Per-task jitter", "each task's time"),
                     "links": _spread(table, "Per-link bandwidth degradation",
                                      "a link's transfer time (its bandwidth is divided by it)"),
                     "seed": integer("Seed of the draws; default: [scenario] seed", 0),
                 })


def build_noise(doc: dict[str, Any]) -> Noise | None:
    """The Noise of a normalised document, or None without a [noise] table (or with one
    whose spreads are all off)."""
    table = doc.get("noise")
    if table is None:
        return None
    spreads = {k: Spread(float(table[k]["sigma"]), float(table[k]["fraction"]),
                         float(table[k]["slowdown"])) for k in ("units", "tasks", "links")}
    noise = Noise(**spreads, seed=int(table.get("seed", doc["scenario"]["seed"])))
    return None if noise.off else noise
