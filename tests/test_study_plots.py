"""Study figures: valid PNG and SVG, titled, every axis labelled with its unit."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from leptonsim.result import run
from leptonsim.scenario import loads
from leptonsim.study import InlineExecutor, loads_sweep, plot_study, run_sweep
from leptonsim.study.plots import figures, pareto_front
from leptonsim.study.row import metrics_row
from leptonsim.study.table import read_table
from tests.helpers.study import BASE, study

SWEEP = """
[variants.heft]
"schedule.scheduler" = "heft"
[variants.greedy]
"schedule.scheduler" = "greedy"
[sweep.parameters]
"hardware.units[0].count" = [1, 2, 4]
"hardware.link.bandwidth" = ["10 GB/s", "1 TB/s"]
"""
UNIT = re.compile(r"\((s|J|×|%|count|B/s|USD)\)")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("study")
    run_sweep(loads_sweep(study(SWEEP), "study.toml"), out, InlineExecutor())
    return out / "results.sorted.csv"


def _labelled(fig: Figure) -> None:
    title = fig.get_suptitle() or " ".join(ax.get_title() for ax in fig.axes)
    assert title.strip(), "figure without a title"
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            assert UNIT.search(ax.get_ylabel()), ax.get_ylabel()
            continue
        assert UNIT.search(ax.get_xlabel()), ax.get_xlabel()
        assert UNIT.search(ax.get_ylabel()) or ax.get_ylabel() == "configuration", ax.get_ylabel()


def test_every_figure_has_a_title_and_axes_with_units(results: Path) -> None:
    figs = figures(read_table(results))
    assert set(figs) == {"scaling", "breakdown", "pareto",
                         "heatmap_hardware_units_0_count__hardware_link_bandwidth"}
    for fig in figs.values():
        _labelled(fig)
    speed, eff = figs["scaling"].axes[:2]
    assert speed.get_xlabel() == "compute units (count)"
    assert speed.get_ylabel().endswith("(×)") and eff.get_ylabel().endswith("(%)")
    assert figs["pareto"].axes[0].get_xlabel() == "makespan per step (s)"
    assert figs["pareto"].axes[0].get_ylabel() == "energy per step (J)"
    heat = figs["heatmap_hardware_units_0_count__hardware_link_bandwidth"]
    assert heat.axes[0].get_xlabel() == "hardware.units[0].count (count)"
    assert heat.axes[0].get_ylabel() == "hardware.link.bandwidth (B/s)"
    assert [t.get_text() for t in heat.axes[0].get_yticklabels()] == ["10 GB/s", "1 TB/s"]
    assert {ax.get_title() for ax in heat.axes} >= {"greedy", "heft"}  # a panel per variant
    legend = figs["scaling"].axes[1].get_legend()
    names = [t.get_text() for t in legend.get_texts()]
    assert any("Amdahl" in n for n in names) and any("work/span" in n for n in names)
    assert any("seed T_p" in n for n in names) and any("seed E_p" in n for n in names)
    assert "(s)" in figs["breakdown"].axes[0].get_xlabel()


def test_plot_study_writes_valid_png_and_svg(results: Path, tmp_path: Path) -> None:
    written = plot_study(results, tmp_path / "plots")
    assert len(written) == 8 and all(p.parent == tmp_path / "plots" for p in written)
    for path in written:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert ET.parse(path).getroot().tag == "{http://www.w3.org/2000/svg}svg"


def test_breakdown_shows_a_provided_pipeline_bubble(results: Path, tmp_path: Path) -> None:
    text = results.read_text().splitlines()
    header = text[0].split(",")
    col, idle, units = header.index("bubble_s"), header.index("idle_s"), header.index("units")
    rows = [r.split(",") for r in text[1:]]
    for r in rows:
        r[col] = repr(float(r[idle]) / 2)  # half of the idle time is bubble
    patched = tmp_path / "bubble.csv"
    patched.write_text("\n".join([text[0], *(",".join(r) for r in rows)]) + "\n")
    ax = figures(read_table(patched))["breakdown"].axes[0]
    bubble = [p for p in ax.patches if p.get_facecolor()[:3] == pytest.approx((1.0, 127 / 255, 14 / 255))]
    assert len(bubble) == len(rows)
    assert bubble[0].get_width() == pytest.approx(float(rows[0][idle]) / 2 / int(rows[0][units]))


def test_metrics_row_fills_energy_cost_and_no_bubble_without_a_pipeline() -> None:
    result = run(loads(BASE)[0])  # a generated workload: no pipeline, so no bubble
    assert metrics_row(result, None)["bubble_s"] == 0.0
    assert metrics_row(result, None)["energy_j"] == result.energy.total_j > 0
    assert metrics_row(result, 4.0)["cost_usd"] == pytest.approx(result.metrics.makespan_s / 900)


def test_table_knows_parameters_and_which_set_the_unit_count(results: Path) -> None:
    table = read_table(results)
    assert table.parameters == ("hardware.units[0].count", "hardware.link.bandwidth")
    assert table.unit_determining() == ["hardware.units[0].count"]
    assert table.label(0) == "greedy, count=1, bandwidth=10 GB/s"
    assert len(table.groups(["hardware.units[0].count"])) == 4


def test_pareto_front_keeps_only_undominated_points() -> None:
    time = np.array([1.0, 2.0, 3.0, 2.5, 4.0, 1.0])
    energy = np.array([9.0, 5.0, 4.0, 6.0, 4.0, 8.0])
    assert pareto_front(time, energy) == [5, 1, 2]


def test_an_empty_results_file_draws_nothing(results: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text(results.read_text().splitlines()[0] + "\n")
    assert plot_study(empty, tmp_path / "plots") == []
