"""Which of a run's files are written (`leptonsim run --outputs summary|standard|all`),
and the report's line saying so. Issue 14: a large run's files took longer to write
than the run to simulate; above 10^5 tasks only the summary is written unless asked.

| level      | files                                                        |
|------------|--------------------------------------------------------------|
| `summary`  | summary.json (and the report on stdout)                      |
| `standard` | + trace.json (or trace.json.gz), tasks.csv, transfers.csv, gantt.png |
| `all`      | + gantt_units.png: one row per unit, when gantt.png groups them |
"""

from __future__ import annotations

__all__ = ["AUTO", "LEVELS", "SUMMARY_ABOVE", "choose", "files", "outputs_line"]

LEVELS = ("summary", "standard", "all")
AUTO = "auto"
SUMMARY_ABOVE = 100_000  # tasks: above this, `auto` writes the summary only (issue 14)


def choose(level: str, tasks: int) -> str:
    """The level `auto` means for a run of `tasks` tasks; any other level as it is."""
    if level != AUTO:
        return level
    return "summary" if tasks > SUMMARY_ABOVE else "standard"


def files(level: str, trace_name: str = "trace.json", grouped: bool = False) -> list[str]:
    """The files `level` writes, in the order they are written. `grouped`: gantt.png
    draws groups of units, so `all` adds the chart with one row per unit."""
    out = ["summary.json"]
    if level in ("standard", "all"):
        out += [trace_name, "tasks.csv", "transfers.csv", "gantt.png"]
    if level == "all" and grouped:
        out.append("gantt_units.png")
    return out


def outputs_line(asked: str, tasks: int, grouped: bool = False) -> str | None:
    """The report's line when a level holds files back: which level ran, why, and how to
    get the rest (None when it wrote everything there is: `all`, or `standard` with a
    chart of one row per unit, whose written files the next line lists anyway)."""
    level = choose(asked, tasks)
    if level == "all" or (level == "standard" and not grouped):
        return None
    why = (f"the default above {SUMMARY_ABOVE:,} tasks" if tasks > SUMMARY_ABOVE
           else f"the default up to {SUMMARY_ABOVE:,} tasks") if asked == AUTO else "asked"
    more = ("--outputs standard adds the trace, tasks.csv, transfers.csv and gantt.png"
            if level == "summary" else "--outputs all adds gantt_units.png, one row per unit")
    return f"outputs {level} ({tasks:,} tasks, {why}); {more}"
