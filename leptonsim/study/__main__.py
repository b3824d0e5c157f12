"""`python -m leptonsim.study sweep FILE ...`: the sweep command on its own, with the
same exit codes as `leptonsim` (0 ok, 2 bad input as one line, 130 interrupted)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import LeptonError, ScenarioError
from .cli import add_sweep_command

BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leptonsim.study")
    add_sweep_command(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ScenarioError as err:
        print(f"error: {err.line()}", file=sys.stderr)
        return BAD_INPUT
    except LeptonError as err:
        print(f"error: {args.file}: {err}", file=sys.stderr)
        return BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
