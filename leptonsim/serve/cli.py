"""`leptonsim run` and `leptonsim check` of a serving scenario ([workload.serving])."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..files import check_output
from ..scenario.command_line import CommandLine
from ..scenario.serving import load_services
from .run import render, run, write


def run_command(args: argparse.Namespace) -> int:
    """Simulate every variant, print each report, write its files."""
    services = load_services(args.file, CommandLine.parse(args.set, args.variant, args.file))
    base = Path(args.out) if args.out else Path("out") / Path(args.file).stem
    check_output(base, directory=True)
    results = [(variant, run(service, variant)) for variant, service in services]
    for variant, result in results:
        out = base / variant if variant else base
        print(render(result))
        sys.stdout.flush()
        written = write(result, out)
        print(f"wrote {', '.join(str(p) for p in written)}\n")
    return 0


def check_command(args: argparse.Namespace) -> int:
    for variant, s in load_services(args.file, CommandLine.parse(args.set, args.variant, args.file)):
        label = f"{s.name} [{variant}]" if variant else s.name
        print(f"ok: {label}: {s.spec.name} x {s.replicas} replicas (tp {s.table['tp']}), "
              f"scheduler {s.table['scheduler']}, {len(s.requests)} requests, "
              f"{s.memory.blocks} KV blocks of {s.table['block_size']} tokens per replica")
    return 0
