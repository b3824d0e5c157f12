"""Failures and checkpoints over a training run (`leptonsim failures FILE`).

    model.py     FailureModel (MTBFs, checkpoint, restart), Young's and Daly's intervals,
                 Daly's expected wall time
    simulate.py  the run as a seeded renewal process over interval candidates; the best
                 interval by simulation
    cli.py       the command: [failures] in, the report and failures.json out
"""

from .model import FailureModel, daly_interval, expected_wall_s, young_interval
from .simulate import Best, Outcome, best_interval, simulate

__all__ = ["Best", "FailureModel", "Outcome", "best_interval", "daly_interval",
           "expected_wall_s", "simulate", "young_interval"]
