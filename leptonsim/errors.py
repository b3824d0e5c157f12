"""Errors a user can cause, each rendered as exactly one line."""

from __future__ import annotations


class LeptonError(Exception):
    """Base of every error leptonsim raises on purpose."""


class QuantityError(LeptonError, ValueError):
    """A value that is not a quantity of the expected kind, e.g. "25 GB" for a bandwidth."""

    def __init__(self, expected: str, found: object) -> None:
        self.expected = expected
        self.found = found
        super().__init__(f"expected {expected}, found {found!r}")


class ScenarioError(LeptonError):
    """A mistake in a scenario: file, key path, what was expected, what was found."""

    def __init__(
        self,
        path: str,
        expected: str,
        found: object,
        *,
        file: str = "<scenario>",
        hint: str = "",
    ) -> None:
        self.file = file
        self.path = path
        self.expected = expected
        self.found = found
        self.hint = hint
        super().__init__(self.line())

    def line(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        text = f"{where}: expected {self.expected}, found {_show(self.found)}"
        return f"{text} ({self.hint})" if self.hint else text

    def in_file(self, file: str) -> ScenarioError:
        """The same error, naming the file it came from."""
        return ScenarioError(self.path, self.expected, self.found, file=file, hint=self.hint)


class GraphError(LeptonError, ValueError):
    """A task graph that cannot be simulated: a cycle, an unknown task, a negative size."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        super().__init__(message)


class SizeError(LeptonError):
    """More of something (a key of limits.SIZES) than its bound, found while building:
    the code that knows the key path turns it into a ScenarioError."""

    def __init__(self, name: str, count: int, maximum: int, noun: str) -> None:
        self.name, self.count = name, count
        super().__init__(f"more than {maximum:,} {noun}")


class SimulationError(LeptonError):
    """The model is valid but cannot run: e.g. no route between two units."""


def _show(found: object) -> str:
    if isinstance(found, str) and found.startswith("<") and found.endswith(">"):
        return found[1:-1]
    return repr(found)
