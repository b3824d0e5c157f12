"""Study figures: valid PNG and SVG, titled, every axis labelled with its unit."""

from __future__ import annotations

import itertools
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from leptonsim.figure_style import time_scale
from leptonsim.result import run
from leptonsim.scenario import loads
from leptonsim.study import InlineExecutor, loads_sweep, plot_study, run_sweep
from leptonsim.study.pareto import MAX_LABELS, pareto
from leptonsim.study.plots import DECADES, _colour_scale, figures, pareto_front
from leptonsim.study.row import metrics_row
from leptonsim.study.table import Table, read_table
from tests.helpers.study import BASE, study

SWEEP = """
[variants.heft]
"schedule.scheduler" = "heft"
[variants.greedy]
"schedule.scheduler" = "greedy"
[sweep.parameters]
"hardware.units[0].count" = [1, 2, 4]
"hardware.link.bandwidth" = ["10 GB/s", "1 TB/s"]
[sweep.labels]
"hardware.link.bandwidth" = "link speed"
"""
UNIT = re.compile(r"\((s|ms|us|J|×|%|count|B/s|USD)\)")


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
    assert figs["pareto"].axes[0].get_xlabel() == "makespan per step (ms)"
    assert figs["pareto"].axes[0].get_ylabel() == "energy per step (J)"
    heat = figs["heatmap_hardware_units_0_count__hardware_link_bandwidth"]
    assert heat.axes[0].get_xlabel() == "units (count)"       # humanised
    assert heat.axes[0].get_ylabel() == "link speed (B/s)"    # [sweep.labels]
    assert [t.get_text() for t in heat.axes[0].get_yticklabels()] == ["10 GB/s", "1 TB/s"]
    assert {ax.get_title() for ax in heat.axes} >= {"greedy", "heft"}  # a panel per variant
    legend = figs["scaling"].legends[0]
    names = [t.get_text() for t in legend.get_texts()]
    assert any("Amdahl" in n for n in names) and any("work/span" in n for n in names)
    assert any("seed T_p" in n for n in names) and any("seed E_p" in n for n in names)
    assert "(ms)" in figs["breakdown"].axes[0].get_xlabel()  # makespans of milliseconds


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
    scale, _ = time_scale(max(float(r[header.index("makespan_s")]) for r in rows))
    assert bubble[0].get_width() == pytest.approx(scale * float(rows[0][idle]) / 2
                                                  / int(rows[0][units]))


def test_metrics_row_fills_energy_cost_and_no_bubble_without_a_pipeline() -> None:
    result = run(loads(BASE)[0])  # a generated workload: no pipeline, so no bubble
    assert metrics_row(result, None)["bubble_s"] == 0.0
    assert metrics_row(result, None)["energy_j"] == result.energy.total_j > 0
    assert metrics_row(result, 4.0)["cost_usd"] == pytest.approx(result.metrics.makespan_s / 900)


def test_table_knows_parameters_and_which_set_the_unit_count(results: Path) -> None:
    table = read_table(results)
    assert table.parameters == ("hardware.units[0].count", "hardware.link.bandwidth")
    assert table.unit_determining() == ["hardware.units[0].count"]
    assert table.label(0) == "greedy, units=1, link speed=10 GB/s"
    assert len(table.groups(["hardware.units[0].count"])) == 4


def test_pareto_front_keeps_only_undominated_points() -> None:
    time = np.array([1.0, 2.0, 3.0, 2.5, 4.0, 1.0])
    energy = np.array([9.0, 5.0, 4.0, 6.0, 4.0, 8.0])
    assert pareto_front(time, energy) == [5, 1, 2]


def test_an_empty_results_file_draws_nothing(results: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text(results.read_text().splitlines()[0] + "\n")
    assert plot_study(empty, tmp_path / "plots") == []


def _patched(results: Path, tmp_path: Path, **columns: list[float]) -> Table:
    """The results with some metric columns replaced, row by row, read back as a Table
    (its sweep.json copied beside it, so the labels come along)."""
    text = results.read_text().splitlines()
    header = text[0].split(",")
    rows = [r.split(",") for r in text[1:]]
    for name, values in columns.items():
        for r, v in zip(rows, itertools.cycle(values)):
            r[header.index(name)] = repr(float(v))
    patched = tmp_path / "patched.csv"
    patched.write_text("\n".join([text[0], *(",".join(r) for r in rows)]) + "\n")
    shutil.copy(results.parent / "sweep.json", tmp_path / "sweep.json")
    return read_table(patched)


def test_figures_are_chosen_from_what_was_swept(results: Path) -> None:
    t = read_table(results)
    fixed = Table(tuple(r for r in t.rows if r["hardware.units[0].count"] == "2"),
                  t.parameters, t.labels)  # the unit count not swept: no scaling figure
    assert "scaling" not in figures(fixed) and "breakdown" in figures(fixed)
    # the count set by the variants instead (heft on 1 unit, greedy on 4), as in
    # docs/tutorial/energy.toml: scaling again
    by_variant = Table(tuple(r for r in t.rows if (r["variant"], r["hardware.units[0].count"])
                             in {("heft", "1"), ("greedy", "4")}),
                       ("hardware.link.bandwidth",), t.labels)
    assert by_variant.unit_determining() == ["variant"]
    assert "scaling" in figures(by_variant)


def _ticks(ax: Axes) -> list[str]:
    ax.get_figure().draw_without_rendering()
    return [x.get_text() for x in ax.get_xticklabels()]


def test_scaling_counts_are_integers_and_legends_cover_no_data(results: Path) -> None:
    fig = figures(read_table(results))["scaling"]
    assert _ticks(fig.axes[0]) == ["1", "2", "4"]
    renderer = FigureCanvasAgg(fig).get_renderer()
    assert len(fig.legends) == 2  # the curves, and the configurations
    title = fig._suptitle
    assert title is not None
    for legend in fig.legends:
        box = legend.get_window_extent(renderer)
        for artist in (*fig.axes, title):
            assert not box.overlaps(artist.get_window_extent(renderer)), \
                legend.get_title().get_text()


@given(st.lists(st.floats(1e-9, 1e9), min_size=1, max_size=30))
def test_the_colour_scale_is_logarithmic_exactly_when_values_span_a_decade(
        values: list[float]) -> None:
    norm = _colour_scale(np.array(values))
    assert isinstance(norm, LogNorm) == (max(values) / min(values) > DECADES)
    assert norm.vmin == min(values) and norm.vmax == max(values)


def test_a_heatmap_spanning_decades_is_drawn_on_a_log_scale(results: Path,
                                                            tmp_path: Path) -> None:
    wide = _patched(results, tmp_path, makespan_s=[1e-3, 2e-2, 0.5])  # 500x: log
    heat = figures(wide)["heatmap_hardware_units_0_count__hardware_link_bandwidth"]
    image = heat.axes[0].images[0]
    assert isinstance(image.norm, LogNorm)
    bar = heat.axes[-1]
    assert bar.get_ylabel() == "makespan per step (ms) (log scale)"
    heat.draw_without_rendering()
    ticks = [x.get_text() for x in (*bar.get_yticklabels(), *bar.get_yticklabels(minor=True))]
    shown = [float(x) for x in ticks if x]  # plain numbers (no 10^k), 1-2-5 only
    assert shown and all(f"{v:e}"[0] in "125" for v in shown)
    narrow = figures(read_table(results))["heatmap_hardware_units_0_count__hardware_link_bandwidth"]
    spans = read_table(results).num("makespan_s")
    assert isinstance(narrow.axes[0].images[0].norm, LogNorm) == (spans.max() / spans.min() > 10)


def test_pareto_labels_do_not_overlap(results: Path, tmp_path: Path) -> None:
    n = len(read_table(results))
    # every point on one tight front: time up, energy down, a hair apart
    t = _patched(results, tmp_path, makespan_s=[1e-3 * (1 + k / 1000) for k in range(n)],
                 energy_j=[100.0 - k / 100 for k in range(n)])
    fig = pareto(t)
    ax = fig.axes[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [a.get_window_extent(renderer) for a in ax.texts]
    assert 1 <= len(boxes) <= MAX_LABELS
    inside = ax.get_window_extent(renderer)
    for k, box in enumerate(boxes):
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1
        assert inside.y0 <= box.y0 and box.y1 <= inside.y1
        assert not any(box.overlaps(other) for other in boxes[k + 1:])
    assert f"{len(boxes)} of the {n} points on the front labelled" in ax.get_title()


def test_breakdown_explains_link_bars_longer_than_the_step(results: Path,
                                                           tmp_path: Path) -> None:
    t = read_table(results)
    plain = figures(t)["breakdown"]
    names = [x.get_text() for x in plain.legends[0].get_texts()]
    assert "pipeline bubble" not in names  # no pipeline in the sweep: no entry for one
    assert any(n.startswith("links: busy time summed over link directions") for n in names)
    makespan, units = t.num("makespan_s"), t.num("units")
    longer = int(np.sum(t.num("communication_s") / units > makespan * (1 + 1e-9)))
    assert ("longer than the step" in plain.axes[0].get_title()) == bool(longer)
    # every link busy 3 steps' worth per unit: each bar past its step, and said so
    busy = _patched(results, tmp_path, communication_s=[
        3 * m * u for m, u in zip(makespan, units, strict=True)])
    title = figures(busy)["breakdown"].axes[0].get_title()
    assert f"{len(t)} link bar(s) longer than the step: link time is summed over links" in title
