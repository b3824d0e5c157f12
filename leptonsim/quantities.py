"""Physical quantities written with units ("25 GB/s", "5 us") <-> SI floats.

Parsing happens once, at the scenario boundary; everything past it works in SI base
units (seconds, bytes, B/s, FLOP, FLOP/s, W, J, J/B, Hz). A bare number means the base
unit. Units are case-sensitive on purpose: "Gb" is gigabits, "GB" gigabytes, "mW"
milliwatts. A unit of the wrong kind is named in the error, so "25 GB" given for a
bandwidth says it is a size and suggests "25 GB/s".
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from collections.abc import Mapping
from types import MappingProxyType

from .errors import QuantityError

KINDS: tuple[str, ...] = (
    "time", "bytes", "bandwidth", "flops", "flop_rate", "power",
    "energy", "energy_per_byte", "frequency", "dimensionless",
)

EXAMPLES: Mapping[str, str] = MappingProxyType({
    "time": "5 us",
    "bytes": "16 GB",
    "bandwidth": "25 GB/s",
    "flops": "4 GFLOP",
    "flop_rate": "312 TFLOP/s",
    "power": "400 W",
    "energy": "10 J",
    "energy_per_byte": "10 pJ/B",
    "frequency": "1.41 GHz",
    "dimensionless": "0.8",
})

# How a kind is named in messages: "expected a bandwidth such as '25 GB/s'".
_NAMES: Mapping[str, str] = MappingProxyType({
    "time": "a duration",
    "bytes": "a size in bytes",
    "bandwidth": "a bandwidth",
    "flops": "a FLOP count",
    "flop_rate": "a compute rate",
    "power": "a power",
    "energy": "an energy",
    "energy_per_byte": "an energy per byte",
    "frequency": "a frequency",
    "dimensionless": "a plain number",
})

_DECIMAL = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_SMALL = {"p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6}


def _byte_units() -> dict[str, float]:
    units = {f"{p}B": f for p, f in _DECIMAL.items() if p != "E"}
    units["KB"] = 1e3  # common (if non-SI) spelling of kilobyte
    units.update({f"{p}iB": 1024.0 ** i for i, p in enumerate("KMGT", start=1)})
    bits = {"bit": 1.0, "b": 1.0, "kbit": 1e3, "Mbit": 1e6, "Gbit": 1e9, "Tbit": 1e12}
    bits.update({f"{p}b": f for p, f in _DECIMAL.items() if p not in ("", "E")})
    bits["Kb"] = 1e3
    units.update({u: f / 8.0 for u, f in bits.items()})  # lowercase b: bits
    return units


def _flop_units() -> dict[str, float]:
    return {f"{p}{s}": f for p, f in _DECIMAL.items() for s in ("FLOP", "FLOPs")}


def _flop_rate_units() -> dict[str, float]:
    units = {f"{u}/s": f for u, f in _flop_units().items()}
    # Capital-S "FLOPS" is the conventional rate spelling; "FLOPs" is a count.
    units.update({f"{p}FLOPS": f for p, f in _DECIMAL.items()})
    return units


def _build_units() -> dict[str, dict[str, float]]:
    size = _byte_units()
    energy = {f"{p}J": f for p, f in _SMALL.items()}
    energy.update({"Wh": 3600.0, "kWh": 3.6e6})
    per_byte = {f"{e}/B": f for e, f in energy.items() if "h" not in e}
    per_byte.update({f"{e}/bit": f * 8.0 for e, f in energy.items() if "h" not in e})
    bandwidth = {f"{u}/s": f for u, f in size.items()}
    bandwidth.update({"bps": 1 / 8.0, "kbps": 1e3 / 8, "Mbps": 1e6 / 8, "Gbps": 1e9 / 8})
    return {
        "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0},
        "bytes": size,
        "bandwidth": bandwidth,
        "flops": _flop_units(),
        "flop_rate": _flop_rate_units(),
        "power": {"mW": 1e-3, "W": 1.0, "kW": 1e3, "MW": 1e6},
        "energy": energy,
        "energy_per_byte": per_byte,
        "frequency": {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9},
        "dimensionless": {"%": 1e-2},
    }


_UNITS = _build_units()
_KIND_OF_UNIT = {u: kind for kind, table in _UNITS.items() for u in table}

# Units format_quantity picks from, smallest first; past either end it falls back to
# the base unit in scientific notation.
_DISPLAY: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "time": ("ns", "us", "ms", "s"),
    "bytes": ("B", "kB", "MB", "GB", "TB", "PB"),
    "bandwidth": ("B/s", "kB/s", "MB/s", "GB/s", "TB/s", "PB/s"),
    "flops": ("FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP", "EFLOP"),
    "flop_rate": ("FLOP/s", "kFLOP/s", "MFLOP/s", "GFLOP/s", "TFLOP/s", "PFLOP/s", "EFLOP/s"),
    "power": ("mW", "W", "kW", "MW"),
    "energy": ("pJ", "nJ", "uJ", "mJ", "J", "kJ", "MJ"),
    "energy_per_byte": ("pJ/B", "nJ/B", "uJ/B", "mJ/B", "J/B"),
    "frequency": ("Hz", "kHz", "MHz", "GHz"),
    "dimensionless": ("",),
})

_NUMBER_AND_UNIT = re.compile(
    r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*?)\s*", re.DOTALL | re.ASCII
)


def units(kind: str) -> tuple[str, ...]:
    """Every unit spelling accepted for `kind` (micro may also be written µ or μ)."""
    return tuple(_table(kind))


def parse_quantity(value: str | int | float, kind: str) -> float:
    """`value` in SI base units of `kind`; a bare number already is SI.

    Raises QuantityError naming the kind, an example and what was wrong (a unit of
    another kind, an unknown unit, a non-finite value, a bool)."""
    table = _table(kind)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _finite(_to_float(value, kind, value), kind, value)
    if not isinstance(value, str):
        raise QuantityError(_expected(kind, f"got a {type(value).__name__}"), value)
    match = _NUMBER_AND_UNIT.fullmatch(value)
    if match is None:
        word = value.strip().lstrip("+-").lower()
        detail = "not a finite number" if word in ("nan", "inf", "infinity") else ""
        raise QuantityError(_expected(kind, detail), value)
    number, unit = match.group(1), match.group(2).replace("µ", "u").replace("μ", "u")
    if unit and unit not in table:
        raise QuantityError(_expected(kind, _unit_hint(kind, number, unit)), value)
    return _finite(_scale(_to_float(number, kind, value), table.get(unit, 1.0)), kind, value)


def format_quantity(value: float, kind: str) -> str:
    """`value` (SI) with 3 significant digits and an SI prefix: "19.5 TFLOP/s"."""
    _table(kind)
    value = float(value)
    names = _DISPLAY[kind]
    factors = [_UNITS[kind].get(name, 1.0) for name in names]
    if not math.isfinite(value) or value == 0.0:  # reports may show inf; base unit then
        return _join(f"{value:g}", names[factors.index(1.0)])
    rounded = _round3(abs(value))
    # Largest unit not above the value; rounding first keeps 999.7 ms from printing 1e+03.
    index = max((i for i, f in enumerate(factors) if rounded >= f * (1 - 1e-12)), default=0)
    mantissa = rounded / factors[index]
    sign = "-" if value < 0 else ""
    if 1e-4 <= mantissa < 1e5 * (1 - 1e-12):  # tolerance: 1e23 / 1e18 is 99999.99...
        return _join(sign + _positional(mantissa), names[index])
    # Beyond every prefix: scientific notation in the base unit reads better.
    return _join(f"{sign}{rounded:.3g}", names[factors.index(1.0)])


def _table(kind: str) -> dict[str, float]:
    # An unknown kind is a programming error, not a user's: plain ValueError.
    if kind not in _UNITS:
        raise ValueError(f"unknown quantity kind {kind!r}; kinds are {', '.join(KINDS)}")
    return _UNITS[kind]


def _expected(kind: str, detail: str = "") -> str:
    text = f"{_NAMES[kind]} such as {EXAMPLES[kind]!r}"
    return f"{text} ({detail})" if detail else text


def _unit_hint(kind: str, number: str, unit: str) -> str:
    other = _KIND_OF_UNIT.get(unit)
    if other is not None:
        got = "a percentage" if unit == "%" else _NAMES[other]
        rate = f"{unit}/s"
        if rate in _UNITS[kind]:  # "25 GB" for a bandwidth: the /s was forgotten
            return f"got {got}; did you mean '{number} {rate}'?"
        return f"got {got}"
    table = _UNITS[kind]
    respelled = re.sub(r"(?<=[bB])(ps|/sec|/second)$", "/s", unit)  # GBps, Gb/sec
    same_letters = [u for u in table if u.lower() in (unit.lower(), respelled.lower())
                    and _sense(u) == _sense(unit)]  # never bytes for bits: 8x apart
    close = same_letters or difflib.get_close_matches(unit, list(table), n=3, cutoff=0.6)
    if close:
        return f"unknown unit {unit!r}; did you mean {' or '.join(map(repr, close))}?"
    if kind == "dimensionless":
        return f"unknown unit {unit!r}; a plain number takes no unit, or '%'"
    return f"unknown unit {unit!r}; units include {', '.join(_DISPLAY[kind])}"


def _sense(unit: str) -> str:
    """'B' for a unit of bytes, 'b' for one of bits, '' for neither (SI: B is a byte)."""
    return "B" if "B" in unit else "b" if "b" in unit else ""


def _to_float(number: object, kind: str, found: object) -> float:
    try:
        return float(number)  # type: ignore[arg-type]
    except (OverflowError, ValueError, TypeError):
        raise QuantityError(_expected(kind, "not a finite number"), found) from None


def _scale(x: float, factor: float) -> float:
    # Sub-unit factors are reciprocals of integers; dividing by that integer is correctly
    # rounded, so "5 us" is exactly 5e-6 (5 * 1e-6 is not).
    return x / round(1.0 / factor) if factor < 1.0 else x * factor


def _finite(x: float, kind: str, found: object) -> float:
    if not math.isfinite(x):
        raise QuantityError(_expected(kind, "not a finite number"), found)
    return x


def _round3(x: float) -> float:
    """x > 0 rounded to 3 significant digits, never past the largest finite float."""
    rounded = float(f"{x:.3g}")
    if math.isinf(rounded):  # 1.797e308 rounds up to 1.8e308 = inf; round down instead
        rounded = float(f"{x * (1 - 5e-3):.3g}")
    return rounded


def _positional(m: float) -> str:
    """m (already 3 significant digits) without exponent or trailing zeros: "1250", "0.5"."""
    decimals = max(0, 2 - math.floor(math.log10(m)))
    text = f"{m:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _join(number: str, unit: str) -> str:
    return f"{number} {unit}" if unit else number
