"""Validation: the same step simulated with a calibrated cost model and executed for
real with NumPy on this machine, compared task by task and end to end.

    compare.py      simulate once, execute R times, errors
    run.py          scenario -> Setup -> Validation (validate, model_setup, run_setup)
    report.py       text, JSON, files;  figures.py  scatter and Gantt overlay
    cli.py          `leptonsim validate`

What it uses lives elsewhere: the kernels executed (execute.model_kernels.ModelKernels),
the cost model predicted with (cost.kinds.KindCost, cost.calibrated.profile_cluster),
and every measurement of this machine: its profile, the kernel calibration, the quiet
gate (leptonsim.measure). Only the light modules are imported here.
The command is leptonsim.validate.cli.add_validate_command.
"""
