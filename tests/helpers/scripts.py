"""The repository's scripts (benchmarks/, docs/tutorial/) as modules: they are scripts,
not a package, so they are loaded from their files, once per session."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def script(path: Path, name: str | None = None) -> ModuleType:
    """The script at `path` as module `name` (its file's stem by default)."""
    name = name or path.stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def benchmark(name: str) -> ModuleType:
    """benchmarks/NAME.py."""
    return script(ROOT / "benchmarks" / f"{name}.py")
