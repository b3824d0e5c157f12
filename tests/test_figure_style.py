"""One figure style: colours, colour maps and the resolution are named in
leptonsim/figure_style.py only, and every figure module draws with it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import matplotlib.image
from matplotlib.figure import Figure

import leptonsim
from leptonsim import figure_style
from leptonsim.plots import save_figure as plots_save_figure

ROOT = Path(leptonsim.__file__).parent
HEX = re.compile(r"#[0-9a-fA-F]{6}")
COLORMAPS = {"tab10", "tab20", "viridis", "plasma", "magma", "cividis"}


def style_literals(path: Path) -> list[str]:
    """Hex colours, colour-map names and dpi= arguments written in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if HEX.fullmatch(node.value) or node.value in COLORMAPS:
                found.append(f"{path.name}:{node.lineno} {node.value!r}")
        elif isinstance(node, ast.keyword) and node.arg == "dpi":
            found.append(f"{path.name}:{node.value.lineno} dpi=")
    return found


def test_only_the_style_module_names_colours_colour_maps_and_the_resolution() -> None:
    assert style_literals(ROOT / "figure_style.py")  # the scan sees what it looks for
    others = [p for p in ROOT.rglob("*.py") if p.name != "figure_style.py"]
    assert [hit for p in others for hit in style_literals(p)] == []


def test_every_figure_module_draws_with_the_style() -> None:
    for module in ("plots.py", "study/plots.py", "study/pareto.py", "validate/figures.py",
                   "precision.py"):
        assert "figure_style" in (ROOT / module).read_text(), module


def test_a_saved_png_has_the_style_resolution(tmp_path: Path) -> None:
    fig = Figure(figsize=(2.0, 1.5))
    fig.subplots().plot([0, 1], [0, 1])
    path = plots_save_figure(fig, tmp_path / "f.png")  # the run figures' import path
    height, width = matplotlib.image.imread(path).shape[:2]
    assert (width, height) == (2.0 * figure_style.DPI, 1.5 * figure_style.DPI)
