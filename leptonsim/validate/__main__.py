import sys

from .cli import main

sys.exit(main(["validate", *sys.argv[1:]]))
