"""Validation: the same step simulated with a calibrated cost model and executed for
real with NumPy on this machine, compared task by task and end to end.

    kernels.py      ModelKernels: a step graph's tasks as the layers' real kernels
    calibration.py  per-kind kernel calibration on separate micro-batch sizes
    cost.py         KindCost (the profile's roofline, corrected per kind), the cluster
    compare.py      simulate once, execute R times, errors
    run.py          scenario -> Setup -> Validation (validate, model_setup, run_setup)
    report.py       text, JSON, files;  figures.py  scatter and Gantt overlay
    cli.py          `leptonsim validate`;  quiet.py  waiting for a quiet machine

Only the light modules are imported here: every worker process imports this package
to unpickle its ModelKernels. The command is leptonsim.validate.cli.add_validate_command.
"""

from .kernels import ModelKernels

__all__ = ["ModelKernels"]
