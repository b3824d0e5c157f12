"""Real execution of a placed TaskGraph on worker processes (issue: real NumPy
execution, calibration and validation). `execute` returns the simulator's Trace type,
so every metric, plot and export works on measured runs too."""

from .coordinator import Execution, ExecutionError, check_clock, execute, run_workers
from .kernels import Kernel, KernelSource, SyntheticKernels, pattern
from .layout import Layout, plan_layout

__all__ = ["Execution", "ExecutionError", "Kernel", "KernelSource", "Layout", "SyntheticKernels",
           "check_clock", "execute", "pattern", "plan_layout", "run_workers"]
