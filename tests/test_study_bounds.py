"""Bounds of the sweep and optimize commands: samples and rows (leptonsim.limits), --price,
--top; each refused in one line before anything is allocated or run."""

from __future__ import annotations

from pathlib import Path

import pytest

from leptonsim.cli import main
from leptonsim.errors import ScenarioError
from leptonsim.limits import MAGNITUDES, SIZES
from leptonsim.study import loads_sweep
from tests.helpers.study import GRID, ROOT, rows_of, study

MOST = SIZES["sweep_points"].maximum
LHS = """[sweep]
mode = "lhs"
samples = {n}
[sweep.parameters]
"hardware.link.bandwidth" = {{ min = "10 GB/s", max = "400 GB/s" }}
"""


@pytest.mark.parametrize("n", [MOST + 1, 10**10, 2**63 - 1])
def test_samples_beyond_the_bound_are_refused_before_drawing(n: int) -> None:
    with pytest.raises(ScenarioError) as info:
        loads_sweep(study(LHS.format(n=n)), "study.toml")
    assert info.value.line() == (f"study.toml: sweep.samples: expected an integer from 1 to "
                                 f"{MOST}, found {n}")


def test_points_times_variants_are_bounded_too() -> None:
    variants = "".join(f"[variants.v{i}]\n'schedule.scheduler' = 'greedy'\n" for i in range(3))
    with pytest.raises(ScenarioError) as info:
        loads_sweep(study(variants + LHS.format(n=MOST // 2)), "study.toml")
    assert info.value.path == "sweep"
    assert f"at most {MOST} rows (points x variants)" in info.value.line()


def test_the_bound_itself_is_accepted() -> None:
    spec = loads_sweep(study(LHS.format(n=3)), "study.toml").spec
    assert spec.size == 3 and MOST >= 10**6


def sweep_argv(tmp_path: Path, *extra: str) -> list[str]:
    file = tmp_path / "study.toml"
    file.write_text(study("[sweep]\n" + GRID))
    return ["sweep", str(file), "--out", str(tmp_path / "o"), "--workers", "1", *extra]


@pytest.mark.parametrize("price", ["inf", "-inf", "nan", "-1", "1e308",
                                   str(MAGNITUDES["price_per_hour"].largest * 2), "two"])
def test_a_price_that_is_not_finite_and_bounded_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], price: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(sweep_argv(tmp_path, f"--price={price}"))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"expected a price from 0 to {MAGNITUDES['price_per_hour'].largest} USD per " \
           f"unit-hour, found '{price}'" in err
    assert not (tmp_path / "o").exists()


def test_the_largest_price_gives_finite_costs(tmp_path: Path) -> None:
    most = str(MAGNITUDES["price_per_hour"].largest)
    assert main(sweep_argv(tmp_path, "--price", most)) == 0
    costs = [float(r["cost_usd"]) for r in rows_of(tmp_path / "o" / "results.csv")]
    assert len(costs) == 6 and all(0 < c < float("inf") for c in costs)


@pytest.mark.parametrize("option, value", [("--top", "0"), ("--top", "-1"), ("--top", "x"),
                                           ("--max-microbatches", "0")])
def test_optimize_counts_must_be_positive(capsys: pytest.CaptureFixture[str], option: str,
                                          value: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["optimize", str(ROOT / "scenarios" / "optimize_bert_large.toml"), option, value,
              "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    assert f"expected an integer >= 1, found '{value}'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
