"""Errors a user can cause, each rendered as exactly one line, and the one "did you
mean" every refusal of an unknown name offers."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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


class TableError(ScenarioError):
    """A mistake in a file a scenario refers to (an op-time table, cost/optable.py), or
    a task outside its range: it names that file (and row and column), whichever
    scenario referred to it, so `in_file` keeps it."""

    def in_file(self, file: str) -> ScenarioError:
        return self


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


class DoesNotFit(SimulationError):
    """A step configuration whose device memory exceeds a unit's: `need` says where and by
    how much, `advice` what to change; the scenario turns both into a ScenarioError."""

    def __init__(self, need: str, advice: str, need_bytes: float, capacity_bytes: float) -> None:
        self.need, self.advice = need, advice
        self.need_bytes, self.capacity_bytes = need_bytes, capacity_bytes
        super().__init__(f"does not fit: {need}; {advice}")


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like `word` (difflib ratio >= 0.6, case ignored), the first
    in order on a tie; None when nothing is close."""
    best, best_score = None, 0.6
    for choice in choices:
        score = difflib.SequenceMatcher(None, word.lower(), choice.lower()).ratio()
        if score > best_score or (best is None and score == best_score):
            best, best_score = choice, score
    return best


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """'did you mean 'x'?' for the choice `word` is but for case, else the choices it
    begins (h100: h100_sxm or h100_pcie), else the one closest to it; '' when none is."""
    if not isinstance(word, str):
        return ""
    choices = list(choices)
    stem = word.lower()
    close = closest(word, choices)
    if any(c.lower() == stem for c in choices):  # the word itself, but for case
        return f"did you mean {close!r}?"
    longer = list(dict.fromkeys(c for c in choices if len(stem) >= 2
                                and c.lower().startswith(stem)))[:3]
    picks = longer or ([close] if close else [])
    return f"did you mean {' or '.join(map(repr, picks))}?" if picks else ""


def found(value: object) -> object:
    """What to show after 'found': scalars as themselves, containers by their TOML type."""
    if isinstance(value, bool):
        return f"<{str(value).lower()}>"
    if isinstance(value, dict):
        return "<a table>"
    if isinstance(value, list):
        return f"<an array of {len(value)} entr{'y' if len(value) == 1 else 'ies'}>"
    if isinstance(value, str | int | float):
        return value
    return f"<a {type(value).__name__} {value}>"


def _show(found: object) -> str:
    if isinstance(found, str) and found.startswith("<") and found.endswith(">"):
        return found[1:-1]
    return repr(found)
