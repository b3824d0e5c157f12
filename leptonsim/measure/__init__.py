"""Measuring this machine: the only code in leptonsim that times this machine to
build a cost model (leptonsim.precision times its dtypes for its own report).

    bench.py        microbenchmarks run through the executor: GEMMs, a copy, no-op
                    tasks, ping-pong transfers; the latency/bandwidth fit; the one
                    direct timing loop (median_seconds)
    calibrate.py    `leptonsim calibrate`: the benchmarks into a cost.calibrated.Profile,
                    the profile TOML file (write_profile, load_profile), and its GEMM
                    ladder as an op-time table (table_rows, `--table`)
    profile.py      `leptonsim profile`: ops x precisions x sizes timed on a backend into
                    an op-time table (cost/optable.py)
    backends.py     what profile times on: the Backend protocol, NumPy and PyTorch
    calibration.py  kernel calibration: real layer kernels and transfer endpoints timed
                    into a cost.kinds.KernelCalibration (for `leptonsim validate`)
    quiet.py        QuietGate: waiting for a quiet machine, and what each run saw
    machine.py      what this machine is (machine_info) and its cores (machine_cores)

Dependencies point one way: measure/ imports cost/ (the models it feeds) and
execute/ (what it times through); neither imports measure/. validate/ imports both.
"""
