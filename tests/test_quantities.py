"""Units in, SI floats out, and back: examples from the unit definitions, then theorems."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from leptonsim.errors import QuantityError
from leptonsim.quantities import EXAMPLES, KINDS, format_quantity, parse_quantity, units

# Expected values are written from the unit definitions (1 GB = 1e9 B, 1 Gb = 1e9/8 B,
# 1 KiB = 2**10 B, 1 Wh = 3600 J), not taken from the implementation.
EXAMPLE_TABLE = [
    ("time", "5 us", 5e-6), ("time", "5us", 5e-6), ("time", "2 µs", 2e-6),
    ("time", "2 μs", 2e-6), ("time", "1.5 ms", 1.5e-3), ("time", "10 ns", 1e-8),
    ("time", "3 s", 3.0), ("time", "2 min", 120.0), ("time", "1 h", 3600.0),
    ("time", "0.25", 0.25), ("time", 7, 7.0), ("time", 2.5, 2.5), ("time", "-3 ms", -3e-3),
    ("time", " +4 s ", 4.0), ("time", ".5 s", 0.5),
    ("bytes", "16 GB", 16e9), ("bytes", "1 kB", 1e3), ("bytes", "1 KB", 1e3),
    ("bytes", "2 MB", 2e6), ("bytes", "1 TB", 1e12), ("bytes", "1 PB", 1e15),
    ("bytes", "12 B", 12.0), ("bytes", "1 KiB", 2.0**10), ("bytes", "1 MiB", 2.0**20),
    ("bytes", "1 GiB", 2.0**30), ("bytes", "1 TiB", 2.0**40), ("bytes", "8 bit", 1.0),
    ("bytes", "8 Kb", 1e3), ("bytes", "8 Mb", 1e6), ("bytes", "8 Gb", 1e9),
    ("bandwidth", "25 GB/s", 25e9), ("bandwidth", "100 Gb/s", 12.5e9),
    ("bandwidth", "1.5 TB/s", 1.5e12), ("bandwidth", "10 MiB/s", 10 * 2.0**20),
    ("bandwidth", "400 Gbps", 50e9), ("bandwidth", "1e9", 1e9),
    ("flops", "1e9 FLOP", 1e9), ("flops", "1e9FLOP", 1e9), ("flops", "4 GFLOP", 4e9),
    ("flops", "2 TFLOPs", 2e12), ("flops", "1 kFLOP", 1e3), ("flops", "3 MFLOP", 3e6),
    ("flops", "5 PFLOP", 5e15), ("flops", "7 FLOP", 7.0),
    ("flop_rate", "312 TFLOP/s", 312e12), ("flop_rate", "19.5 TFLOPS", 19.5e12),
    ("flop_rate", "1 PFLOP/s", 1e15), ("flop_rate", "2 GFLOPS", 2e9),
    ("flop_rate", "1e12", 1e12),
    ("power", "400 W", 400.0), ("power", "5 mW", 5e-3), ("power", "1.5 kW", 1500.0),
    ("energy", "10 J", 10.0), ("energy", "3 mJ", 3e-3), ("energy", "4 uJ", 4e-6),
    ("energy", "5 nJ", 5e-9), ("energy", "6 pJ", 6e-12), ("energy", "2 kJ", 2e3),
    ("energy", "1 Wh", 3600.0), ("energy", "1 kWh", 3.6e6),
    ("energy_per_byte", "10 pJ/B", 1e-11), ("energy_per_byte", "1 pJ/bit", 8e-12),
    ("energy_per_byte", "2 nJ/B", 2e-9),
    ("frequency", "1.41 GHz", 1.41e9), ("frequency", "100 MHz", 1e8),
    ("frequency", "5 kHz", 5e3), ("frequency", "50 Hz", 50.0),
    ("dimensionless", "0.8", 0.8), ("dimensionless", 3, 3.0),
    ("dimensionless", "80%", 0.8), ("dimensionless", "1e-3", 1e-3),
]


@pytest.mark.parametrize(("kind", "text", "si"), EXAMPLE_TABLE)
def test_examples_parse_to_si(kind: str, text: str | float, si: float) -> None:
    assert parse_quantity(text, kind) == pytest.approx(si, rel=1e-12)


def test_every_kind_has_an_example_and_a_table_row() -> None:
    assert set(EXAMPLES) == set(KINDS)
    assert {kind for kind, _, _ in EXAMPLE_TABLE} == set(KINDS)


def test_units_of_different_kinds_are_disjoint() -> None:
    seen: dict[str, str] = {}
    for kind in KINDS:
        for unit in units(kind):
            assert unit not in seen, f"{unit!r} is both {seen[unit]} and {kind}"
            seen[unit] = kind


@pytest.mark.parametrize(
    ("text", "kind", "got"),
    [
        ("25 GB", "bandwidth", "got a size in bytes"),
        ("5 GHz", "time", "got a frequency"),
        ("312 TFLOP/s", "flops", "got a compute rate"),
        ("312 TFLOPS", "flops", "got a compute rate"),
        ("4 GFLOP", "flop_rate", "got a FLOP count"),
        ("400 W", "energy", "got a power"),
        ("10 J", "power", "got an energy"),
        ("5 us", "bytes", "got a duration"),
        ("25 GB/s", "bytes", "got a bandwidth"),
        ("10 pJ/B", "energy", "got an energy per byte"),
        ("80%", "time", "got a percentage"),
    ],
)
def test_wrong_kind_is_named(text: str, kind: str, got: str) -> None:
    with pytest.raises(QuantityError, match=re.escape(got)) as info:
        parse_quantity(text, kind)
    assert info.value.found == text
    assert f"such as {EXAMPLES[kind]!r} (" in info.value.expected


def test_bandwidth_without_per_second_gets_the_full_phrase_and_a_suggestion() -> None:
    with pytest.raises(QuantityError) as info:
        parse_quantity("25 GB", "bandwidth")
    assert info.value.expected.startswith("a bandwidth such as '25 GB/s' (got a size in bytes")
    assert "did you mean '25 GB/s'" in info.value.expected


def _suggested(text: str, kind: str) -> list[str]:
    with pytest.raises(QuantityError) as info:
        parse_quantity(text, kind)
    hint = info.value.expected.partition("did you mean ")[2]
    return re.findall(r"'([^']+)'", hint)


def test_miscased_unit_suggests_the_unit_of_the_same_sense() -> None:
    """A lower-case b is a bit, an upper-case B a byte: 8x apart, never swapped."""
    assert _suggested("25 gb/s", "bandwidth") == ["Gb/s"]
    assert _suggested("900 GBps", "bandwidth") == ["GB/s"]
    assert _suggested("900 GB/sec", "bandwidth") == ["GB/s"]


@given(st.sampled_from([u for u in units("bandwidth") if "b" in u.lower()]), st.data())
def test_a_suggestion_never_turns_bits_into_bytes(unit: str, data: st.DataObject) -> None:
    flips = data.draw(st.lists(st.booleans(), min_size=len(unit), max_size=len(unit)))
    mangled = "".join(c.swapcase() if f and c not in "bB" else c for c, f in zip(unit, flips, strict=True))
    assume(mangled not in units("bandwidth"))
    sense = "B" if "B" in unit else "b"
    for suggestion in _suggested(f"3 {mangled}", "bandwidth"):
        assert (sense in suggestion) and ({"B", "b"} - {sense}).isdisjoint(suggestion)


@pytest.mark.parametrize("kind", KINDS)
def test_every_foreign_unit_is_rejected_as_the_wrong_kind(kind: str) -> None:
    for other in KINDS:
        for unit in units(other) if other != kind else ():
            with pytest.raises(QuantityError, match=r"\(got "):
                parse_quantity(f"1 {unit}", kind)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "bad",
    [True, False, float("nan"), float("inf"), -float("inf"), "nan", "inf", "-inf s",
     "1e400 s", "1e308 PB", "", "  ", "GB", "abc", "1,5 s", "5 furlongs", None, [1], 10**400],
)
def test_non_quantities_are_rejected(kind: str, bad: object) -> None:
    with pytest.raises(QuantityError) as info:
        parse_quantity(bad, kind)  # type: ignore[arg-type]
    assert info.value.found is bad


def test_non_finite_values_say_so() -> None:
    for bad in (float("nan"), "inf", "1e400 s"):
        with pytest.raises(QuantityError, match="not a finite number"):
            parse_quantity(bad, "time")


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown quantity kind 'length'; kinds are time"):
        parse_quantity("1 m", "length")
    with pytest.raises(ValueError, match="unknown quantity kind"):
        format_quantity(1.0, "length")


@pytest.mark.parametrize(
    ("si", "kind", "text"),
    [(25e9, "bandwidth", "25 GB/s"), (2e-6, "time", "2 us"),
     (19.5e12, "flop_rate", "19.5 TFLOP/s"), (1.23e-3, "time", "1.23 ms"),
     (0.9997, "time", "1 s"), (0.0, "bytes", "0 B"), (-3e9, "bytes", "-3 GB"),
     (0.8, "dimensionless", "0.8")],
)
def test_format_examples(si: float, kind: str, text: str) -> None:
    assert format_quantity(si, kind) == text


# --- theorems -------------------------------------------------------------------------

kinds = st.sampled_from(KINDS)
positive = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False)
finite = st.floats(allow_nan=False, allow_infinity=False)


@given(kinds, positive)
def test_format_then_parse_is_within_half_a_percent(kind: str, x: float) -> None:
    # 3 significant digits lose at most 0.5 units in the third digit: < 0.5 % of x.
    text = format_quantity(x, kind)
    assert abs(parse_quantity(text, kind) - x) <= 5e-3 * x, text
    assert abs(parse_quantity(format_quantity(-x, kind), kind) + x) <= 5e-3 * x


@given(kinds, positive)
def test_format_shows_at_most_three_significant_digits(kind: str, x: float) -> None:
    # Zeros before the first and after the last non-zero digit are not significant.
    mantissa = format_quantity(x, kind).split(" ")[0].split("e")[0]
    assert len(mantissa.replace(".", "").strip("0")) <= 3, mantissa


@given(kinds, finite)
def test_a_bare_number_is_si_for_every_kind(kind: str, x: float) -> None:
    assert parse_quantity(x, kind) == x
    assert parse_quantity(repr(x), kind) == x


@given(kinds, st.data())
def test_space_before_the_unit_is_optional_and_minus_negates(kind: str, data: st.DataObject
                                                             ) -> None:
    unit = data.draw(st.sampled_from(units(kind)))
    number = data.draw(st.floats(min_value=1e-6, max_value=1e6).map(lambda v: f"{v:.6g}"))
    spaced = parse_quantity(f"{number} {unit}", kind)
    assert parse_quantity(f"{number}{unit}", kind) == spaced
    assert parse_quantity(f"-{number} {unit}", kind) == -spaced
    assert spaced > 0


@given(st.integers(min_value=-10**6, max_value=10**6),
       st.sampled_from([("us", "e-6"), ("ms", "e-3"), ("ns", "e-9")]))
def test_sub_unit_prefixes_are_correctly_rounded(n: int, unit_and_exponent: tuple[str, str]
                                                 ) -> None:
    # "5 us" must be the float nearest 5e-6, exactly as Python reads "5e-6".
    unit, exponent = unit_and_exponent
    assert parse_quantity(f"{n} {unit}", "time") == float(f"{n}{exponent}")


@pytest.mark.parametrize("kind", KINDS)
def test_each_example_parses_as_its_own_kind_only(kind: str) -> None:
    value = parse_quantity(EXAMPLES[kind], kind)
    assert math.isfinite(value) and value > 0
    if kind == "dimensionless":
        return  # a bare number is accepted by every kind, by design
    for other in KINDS:
        if other != kind:
            with pytest.raises(QuantityError):
                parse_quantity(EXAMPLES[kind], other)
