"""leptonsim: simulate, cost and validate deep-learning workloads.

    import leptonsim as ls
    cluster = ls.cluster("a100_80gb", 8, link="nvlink3")
    step = ls.step("bert_large", cluster, batch=64, pp=2, tp=2)
    result = ls.run(step)
    print(result.report())

The names of `__all__` (docs/api.md) are loaded on first use (PEP 562), so that
`import leptonsim` and `leptonsim --help` import nothing else. `ls.run` and `ls.zoo`
are the API's functions, although modules of the same name exist: import those by
their full name (`from leptonsim.result import write_outputs`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Each public name: the module that defines it, and its name there (None: the module).
_HOME: dict[str, tuple[str, str | None]] = {
    "cluster": ("api", "cluster"), "step": ("api", "step"), "run": ("api", "run"),
    "memory": ("api", "memory"),
    "model_names": ("api", "model_names"), "Hardware": ("api", "Hardware"),
    "load": ("scenario", "load"), "loads": ("scenario", "loads"),
    "Scenario": ("scenario", "Scenario"), "ScenarioError": ("errors", "ScenarioError"),
    "model": ("zoo", "get_model"), "Model": ("models", "Model"),
    "devices": ("presets", "device_presets"), "links": ("presets", "link_presets"),
    "Cluster": ("hardware", "Cluster"), "simulate": ("sim", "simulate"),
    "Trace": ("trace", "Trace"), "RunResult": ("result", "RunResult"),
    "write_outputs": ("result", "write_outputs"), "gantt": ("plots", "gantt"),
    "formulas": ("formulas", None),
}
__all__ = ["Cluster", "Hardware", "Model", "RunResult", "Scenario", "ScenarioError", "Trace",
           "cluster", "devices", "formulas", "gantt", "links", "load", "loads", "memory", "model",
           "model_names", "run", "simulate", "step", "write_outputs"]  # the keys of _HOME

if TYPE_CHECKING:  # what __getattr__ returns, for mypy and editors
    from . import formulas
    from .api import Hardware, cluster, memory, model_names, run, step
    from .errors import ScenarioError
    from .hardware import Cluster
    from .models import Model
    from .plots import gantt
    from .presets import device_presets as devices
    from .presets import link_presets as links
    from .result import RunResult, write_outputs
    from .scenario import Scenario, load, loads
    from .sim import simulate
    from .trace import Trace
    from .zoo import get_model as model


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _HOME[name]
    home = importlib.import_module(f"{__name__}.{module}")
    value = home if attr is None else getattr(home, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
