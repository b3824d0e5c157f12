"""Every bundled scenario's Gantt chart reads (issue 17: slivers at dp2, a clipped
legend at tp2, 1,024 rows and 40 link rows at GPT-3 scale, repeated colours).

Each scenario file's smallest variant (fewest tasks: the test stays quick) is run and
its gantt.png drawn as `leptonsim run` draws it (default rows), with Agg, and checked:
no layout warning, every axes (labels and notes too) and the legend inside the figure,
the legend beside the rows, one colour per legend entry, every row at least 0.2 in.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from leptonsim import scenario
from leptonsim.gantt_rows import grouping
from leptonsim.plots import gantt
from leptonsim.result import run
from leptonsim.scenario.serving import is_serving_file

SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.toml"))
SERVING = {p.stem for p in SCENARIOS if is_serving_file(str(p))}  # no trace: no Gantt chart


def smallest(path: Path) -> scenario.Scenario:
    built = [s for s in scenario.load_each(path) if isinstance(s, scenario.Scenario)]
    return min(built, key=lambda s: s.graph.size)


def drawn(path: Path) -> Figure:
    s = smallest(path)
    fig = gantt(run(s).trace, s.name, grouping(s))
    FigureCanvasAgg(fig)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied", ... : fail
        fig.canvas.draw()
    return fig


def test_the_serving_scenarios_are_the_ones_without_a_chart() -> None:
    assert {"serve_llama3_8b_chat"} == SERVING  # a new serving file: say why here


@pytest.mark.parametrize("path", [p for p in SCENARIOS if p.stem not in SERVING],
                         ids=lambda p: p.stem)
def test_the_gantt_chart_of_every_bundled_scenario_reads(path: Path) -> None:
    fig = drawn(path)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    page = fig.bbox.padded(1.0)  # one pixel: rounding
    for ax in fig.axes:
        box = ax.get_tightbbox(renderer)
        assert box is not None and page.contains(box.x0, box.y0) and page.contains(box.x1, box.y1)
        bottom, top = ax.get_ylim()
        inches = ax.get_position().height * fig.get_figheight()
        assert inches / (bottom - top) >= 0.2, f"{ax.get_ylabel()}: rows of {inches / (bottom - top):.2f} in"
    legend = fig.axes[0].get_legend()
    box = legend.get_window_extent(renderer)
    assert page.contains(box.x0, box.y0) and page.contains(box.x1, box.y1)
    assert box.x0 >= max(ax.get_window_extent(renderer).x1 for ax in fig.axes)  # beside
    colours = [to_hex(h.get_facecolor() if hasattr(h, "get_facecolor") else h.get_color())
               for h in legend.legend_handles]
    assert len(colours) == len(set(colours)) >= 2, colours  # a phase at least, and makespan
    assert np.all(np.isfinite([ax.get_xlim() for ax in fig.axes]))
