"""`python -m leptonsim.validate ARGS`: the same command, refusals and exit codes as
`leptonsim validate ARGS`. Nothing imports this entry point, so importing the top
CLI here is no cycle."""

import sys

from ..cli import main

sys.exit(main(["validate", *sys.argv[1:]]))
