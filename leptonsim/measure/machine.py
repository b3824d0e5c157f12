"""What this machine is: its description for a profile, and the cores this process has."""

from __future__ import annotations

import datetime
import os
import platform

import numpy as np


def machine_info() -> dict[str, str]:
    from ..execute.worker import blas_threads

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cores": str(os.cpu_count()),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "python": platform.python_version(), "numpy": np.__version__,
            "blas": ", ".join(blas_threads().get("libraries", [])) or "unknown"}


def machine_cores() -> int:
    """The cores this process may run on: the most workers a validation can measure."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
