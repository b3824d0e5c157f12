"""RunResult: what one simulated scenario gives, read by the report, the study and
the files. It imports no module that produces or renders it (run.py, report.py), so
they all import it and none imports the other back."""

from __future__ import annotations

from dataclasses import dataclass

from .energy import EnergyReport
from .evaluate import FormulaRow
from .metrics import Metrics
from .scenario import Scenario
from .trace import Trace


@dataclass(frozen=True)
class RunResult:
    scenario: Scenario
    trace: Trace
    metrics: Metrics
    formulas: list[FormulaRow]
    energy: EnergyReport
    cost_usd: float             # the step at the units' price per hour (0 without prices)
