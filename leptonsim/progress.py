"""Progress of a command's phases on stderr (building, simulating, writing), never on
stdout, which holds the report alone (it may be piped into a file or another tool).

`--progress auto` (the default) prints only when stderr is a terminal, as git and pip
do: logs and pipes stay clean. `always` prints wherever stderr goes (a CI log of a
long run), `never` prints nothing. A phase prints one line when it ends, with its
wall time, so the lines are also the run's phase profile.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["PROGRESS", "Progress"]

PROGRESS = ("auto", "always", "never")


class Progress:
    """`with progress.phase("simulating", label): ...` times the phase and reports it."""

    def __init__(self, mode: str = "auto", stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.on = mode == "always" or (mode == "auto" and _is_tty(self.stream))
        self.started = time.perf_counter()

    @contextmanager
    def phase(self, name: str, what: str = "") -> Iterator[None]:
        t0 = time.perf_counter()
        label = f"leptonsim: {name}{' ' + what if what else ''}"
        tty = _is_tty(self.stream)
        if self.on and tty:  # a terminal: the phase shows while it runs
            self.stream.write(f"{label} ...\r")
            self.stream.flush()
        yield
        if self.on:
            now = time.perf_counter()
            clear = "\x1b[K" if tty else ""  # the rest of the line the phase wrote
            self.stream.write(f"{label} {now - t0:.1f} s (total {now - self.started:.1f} s)"
                              f"{clear}\n")
            self.stream.flush()


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
