"""How big and how extreme anything leptonsim builds may be: one table, checked first.

Every size that decides how much memory a command allocates (units, tasks, sweep
points, a batch) and every magnitude that enters the engine's arithmetic is bounded
here, and checked before anything is allocated or simulated, so a mistake such as
`count = 2**63` or a bandwidth of 5e-324 B/s is one clear refusal (exit 2), never a run
that exhausts memory or overflows to inf inside the engine.

The bounds are generous for real studies and tight enough that the largest accepted
input stays under 4 GB of memory. Measured on this project's 2-core test machine with
`/usr/bin/time -v python -m leptonsim run|check FILE` (maximum resident set size):

    run   1,048,576 tasks, 1,048,576 edges of 1 MB (layered, 64 units, greedy)   2.75 GB
    run   1,048,576 tasks, 2,097,152 edges (the same, degree 4)                  4.65 GB
    (the two above first; the same kind of run measured again later:)
    run   2,097,152 tasks, 4,194,304 edges (layered, 64 units, greedy, 1 MB)     1.33 GB
    run   4,194,304 tasks, 4,194,304 edges (the same)                            1.56 GB
    run   4,194,304 tasks, 8,388,608 edges (the largest accepted graph)          2.49 GB
    run   the same with --outputs all (every file written; 4 min)                3.58 GB
    check 4,194,304 tasks, 8,388,608 edges (nothing simulated)                   1.2 GB
    check a 60 MB file of 400,000 explicit tasks, 800,000 edges                 1.16 GB
    run   scenarios/gpt3_ptdp.toml (1,024 units, 615,056 tasks, 657,440 edges)   0.88 GB
    simulate 8,192 units (two_level, 65,536 independent tasks, greedy)          0.60 GB
    simulate 16,384 units (the same)                                             2.16 GB
    run   65,536 units (the same)                      23.5 GB, killed by the kernel

so tasks are bounded at 2^22 and edges at 2^23 (the largest graph's run stays under
4 GB even with every output written), and units at 16,384: the engine's memory grows
with the square of the unit count (x3.6 from 8,192 to 16,384 units). The largest
bundled scenario, GPT-3 on 1,024 units, uses 6 % of the unit bound (a 16,384-unit step
fits) and 15 % and 8 % of the task and edge bounds.

Magnitudes: with every quantity inside its range, the largest number the engine and
the energy and cost code form is about 1e27 FLOP / (1 FLOP/s x 1e-9) = 1e36 s per task,
times 2^22 tasks, times 1e9 W, times 2^14 units: about 1e56, far below the float range
(1.8e308); the smallest nonzero is about 1e-18 J/B x 1e-6 B = 1e-24 J, far above the
subnormals (2.2e-308), so no sum, product or quotient becomes inf, nan or 0 by
underflow, and `summary.json` is always finite (valid JSON).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ScenarioError, SizeError

__all__ = ["SIZES", "MAGNITUDES", "Size", "Magnitude", "check_size", "check_magnitude",
           "guard_size"]


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
    unit: str = ""      # the SI unit, for messages

    def admits(self, x: float) -> bool:
        return x == 0 or self.smallest <= abs(x) <= self.largest

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"between {self.smallest:g}{unit} and {self.largest:g}{unit}"


_MEMORY = "keeps the largest accepted run under 4 GB of memory"

# Sizes: the keys name the thing bounded; each check site names its key path.
SIZES: dict[str, Size] = {
    "file_bytes": Size(64 * 2**20, "bytes", "a scenario file is read whole into memory"),
    "text_chars": Size(1_000, "characters", "names and descriptions are drawn in titles and "
                       "legends, whose layout time grows with their length (100k hung a run)"),
    "variant_name_chars": Size(100, "characters in a variant name",
                               "a variant's name is its output directory's (255 bytes at most)"),
    "integer": Size(2**53, "", "integers meet floats in the cost arithmetic, exact up to 2^53"),
    "nesting": Size(32, "levels of nesting", "the checks walk the document recursively"),
    "units": Size(16_384, "compute units", f"every unit is an object and a process; {_MEMORY}"),
    "links": Size(1_048_576, "links", f"each link is two channels; {_MEMORY}"),
    "tasks": Size(4_194_304, "tasks", f"each task is a trace row and a queue entry; {_MEMORY}"),
    "edges": Size(8_388_608, "edges", f"each edge is a transfer in flight; {_MEMORY}"),
    "model_layers": Size(65_536, "layers", "a layer is an object built before the step's "
                         "tasks are counted (a 126-block transformer has about 1,000); repeated blocks are "
                         "counted before they expand, so nesting cannot exhaust memory"),
    "blocks": Size(65_536, "transformer blocks", "a block is ~10 layer objects built before "
                   "the step's task count is known (the largest published model has 126)"),
    "heft_units": Size(2_048, "compute units for a HEFT scheduler",
                       "HEFT routes every pair of units (units^2 routes); use greedy or static"),
    "heft_cells": Size(2**26, "units x tasks for a HEFT scheduler",
                       "HEFT keeps a units x tasks table of finish times; use greedy or static"),
    "profile_bytes": Size(1_000_000, "bytes of a hardware profile", "a profile is ~3 kB; "
                          "reading --profile /dev/zero must not exhaust memory"),
    "table_rows": Size(2**18, "rows of an op-time table", "a profile's grid is ~10^3 rows; "
                       "a row is ~300 bytes in memory while read: 2^18 rows stay under 100 MB"),
    "precision.batch": Size(2048, "samples in a precision batch", "seed_cnn needs about "
                            "1 MB a sample (1.1 GB measured at 1024): 2048 stays near 2 GB"),
    "sweep_points": Size(1_000_000, "sweep points", "a point is a task and a row in memory: 10^6 use < 1 GB"),
}

# Magnitudes per quantity kind (the scenario format's x-quantity kinds, and x-magnitude
# for plain numbers): physical ranges with many orders of magnitude to spare.
MAGNITUDES: dict[str, Magnitude] = {
    "time": Magnitude(1e-12, 1e8, "s"),             # a picosecond to three years
    "bytes": Magnitude(1e-6, 1e18, "B"),            # fractions of a shared edge; an exabyte
    "bandwidth": Magnitude(1.0, 1e16, "B/s"),       # a byte per second to 10 PB/s
    "flops": Magnitude(1e-6, 1e27, "FLOP"),         # GPT-3 trained in full is 3e23
    "flop_rate": Magnitude(1.0, 1e21, "FLOP/s"),    # a FLOP per second to a zettaFLOP/s
    "power": Magnitude(1e-6, 1e9, "W"),             # a microwatt to a gigawatt
    "energy": Magnitude(1e-15, 1e21, "J"),
    "energy_per_byte": Magnitude(1e-18, 1.0, "J/B"),
    "dimensionless": Magnitude(1e-9, 1e9),          # efficiency, spread, a claimed speed-up
    "price_per_hour": Magnitude(1e-9, 1e6, "USD/h"),
    "objective": Magnitude(1e-12, 1e12),            # E_t, E_r and lambda of E_t + lambda E_r
    "parameter_rate": Magnitude(1.0, 1e15, "params/s"),  # a host's CPU-Adam (offload)
}


def check_size(name: str, count: float, path: str, hint: str = "") -> None:
    """Refuse `count` things of SIZES[name] past its maximum, at key path `path`.
    `count` may be a float estimate (it is never converted to an allocation)."""
    size = SIZES[name]
    if count > size.maximum:
        shown = f"{count:,}" if isinstance(count, int) else f"{count:.3g}"
        raise ScenarioError(path, f"at most {size.maximum:,} {size.noun}",
                            f"<{shown} {size.noun}>",
                            hint="; ".join(h for h in (hint, size.why) if h))


def guard_size(name: str, count: int) -> None:
    """Where things are built one at a time (GraphBuilder): stop at the bound, with a
    SizeError the caller places at its key path (check_size with the count)."""
    size = SIZES[name]
    if count > size.maximum:
        raise SizeError(name, count, size.maximum, size.noun)


def check_magnitude(kind: str, x: float, path: str, what: str, found: object,
                    zero: bool = True) -> None:
    """Refuse a value of kind `kind` outside MAGNITUDES[kind]; `what` names the kind
    ("a bandwidth") and `zero` says whether 0 is a valid value there."""
    magnitude = MAGNITUDES[kind]
    if not magnitude.admits(x):
        also = " or 0" if zero else ""
        raise ScenarioError(path, f"{what} {magnitude.describe()}{also}", found,
                            hint="beyond it the simulation's arithmetic overflows or "
                                 "underflows")
