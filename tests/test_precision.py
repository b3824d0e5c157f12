"""The seed's third formula on real kernels: E_t and E_r per precision, beside time."""

from __future__ import annotations

import argparse
import csv
import math

import matplotlib.image
import pytest

from leptonsim.formulas import seed_objective, seed_objective_argmin
from leptonsim.precision import (
    DTYPES,
    LAMBDAS,
    PrecisionReport,
    add_precision_command,
    format_report,
    measure,
    measure_errors,
    plot,
    workload,
    write_csv,
)


@pytest.fixture(scope="module")
def report() -> PrecisionReport:
    return measure("seed_cnn", batch=4, repeats=1, lam=0.5)


@pytest.mark.parametrize("model", ["seed_cnn", "gpt_block"])
def test_float64_against_itself_is_exact(model: str) -> None:
    assert measure_errors(workload(model, batch=2), "float64") == (0.0, 0.0)


def test_errors_fall_with_precision_on_seed_cnn(report: PrecisionReport) -> None:
    rows = {r.dtype: r for r in report.rows}
    assert [r.dtype for r in report.rows] == list(DTYPES)
    for attr in ("training_error", "inference_error"):
        e16, e32, e64 = (getattr(rows[d], attr) for d in DTYPES)
        assert e16 > e32 > e64 == 0.0, (attr, e16, e32)
        assert 1e-5 < e16 < 0.1 and e32 < 1e-5  # unit roundoff: 4.9e-4 (fp16), 6e-8 (fp32)


def test_objective_is_the_seeds_formula_of_the_measured_errors(report: PrecisionReport) -> None:
    for row in report.rows:
        for lam in LAMBDAS:
            assert row.objective(lam) == seed_objective(row.training_error, row.inference_error, lam)
    options = {r.dtype: (r.training_error, r.inference_error) for r in report.rows}
    assert report.best_objective() == seed_objective_argmin(options, 0.5) == "float64"
    best = min(report.rows, key=lambda r: r.train_s * (1 + r.objective(0.5)))
    assert report.best_tradeoff() == best.dtype
    assert all(r.infer_s > 0 and r.train_s > 0 for r in report.rows)


def test_report_names_the_choices(report: PrecisionReport) -> None:
    text = format_report(report)
    assert "E_t+0.5E_r" in text and "argmin E_t + 0.5 E_r: float64" in text
    assert f"argmin train time x (1 + E_t + 0.5 E_r): {report.best_tradeoff()}" in text


def test_csv_has_a_header_and_a_row_per_precision(report: PrecisionReport, tmp_path) -> None:
    path = write_csv(report, tmp_path / "sub" / "precision.csv")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["dtype", "training_error", "inference_error", "objective_lam0.1",
                       "objective_lam0.5", "objective_lam1", "infer_ms", "train_ms",
                       "train_speedup_vs_float64", "tradeoff_ms"]
    assert [r[0] for r in rows[1:]] == list(DTYPES)
    for r, row in zip(rows[1:], report.rows, strict=True):
        assert math.isclose(float(r[4]), row.objective(0.5), rel_tol=1e-3)


def test_plot_is_a_png(report: PrecisionReport, tmp_path) -> None:
    path = plot(report, tmp_path / "precision.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(path).shape[2] in (3, 4)


def command() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_precision_command(p.add_subparsers(dest="command"))
    return p


def test_command_prints_and_writes(tmp_path, capsys) -> None:
    args = command().parse_args(["precision", "--model", "gpt_block", "--batch", "2", "--repeats", "1",
                                 "--lam", "0.25", "--out", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "E_t+0.25E_r" in out and "float16" in out
    assert (tmp_path / "precision.csv").exists() and (tmp_path / "precision.png").exists()


@pytest.mark.parametrize("argv", [["--batch", "0"], ["--lam", "-1"], ["--lam", "nan"], ["--model", "x"]])
def test_command_rejects_bad_input(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        command().parse_args(["precision", *argv])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
