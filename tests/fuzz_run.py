"""Run one fuzz case through the CLI and say what, if anything, went wrong.

A case is a mutant written to work/scenario.toml, then `leptonsim check FILE` and, for
a mutant that checks and whose scenario is cheap enough, `leptonsim run FILE --out
work/out`. Each command runs `leptonsim.cli.main(argv)` in a forked child (about 10 ms):

- under RLIMIT_AS of 4 GB, so runaway memory is a MemoryError in the child, not the
  machine's (or the test process's) memory; peak RSS comes from wait4's rusage;
- with a hang guard: faulthandler dumps the child's stack after `timeout` seconds and
  exits; the parent kills it a little later in any case;
- with stdout and stderr redirected at the file-descriptor level, so the one-line
  refusal is checked on everything the command printed, warnings included.

The contract checked (issue 10): exit 0 or 2; exit 2 prints exactly one line, starting
"error: ", and writes nothing; exit 0 of `run` writes the five outputs of every variant
it does not name on stderr as skipped (issue 11: a variant that cannot be built is
skipped by name, and writes nothing), and summary.json and trace.json are strict JSON
(no Infinity or NaN).
"""

from __future__ import annotations

import faulthandler
import json
import os
import re
import resource
import select
import signal
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import leptonsim
from tests.fuzzing import SCENARIOS, Mutant

MEMORY_LIMIT = 4 * 10**9    # bytes of address space per command (the 4 GB)
TIMEOUT = 60.0              # seconds: a hang guard, far above any bundled scenario's time
OUTPUTS = ("summary.json", "trace.json", "tasks.csv", "transfers.csv", "gantt.png")
STRICT_JSON = ("summary.json", "trace.json")
PACKAGE = str(Path(leptonsim.__file__).parent) + os.sep  # frames here are leptonsim's


@dataclass
class Command:
    """What one CLI command did."""

    argv: list[str]
    code: int | None = None     # what main returned; None if it raised, hung or died
    stdout: str = ""
    stderr: str = ""
    error: str = ""             # signature of an exception that escaped main, or of a hang
    trace: str = ""             # its traceback, or the hang guard's stack dump
    hung: bool = False
    died: int = 0               # the signal that killed the child, if one did
    peak_rss: int = 0           # bytes


@dataclass
class Failure:
    kind: str                   # traceback, exit, hang, memory, crash, refusal, wrote, output
    signature: str              # one line: groups failures of one cause
    command: str                # check or run


@dataclass
class Outcome:
    mutant: Mutant
    text: str
    commands: list[Command] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def code(self) -> int | None:
        return self.commands[-1].code


def preload() -> None:
    """Import and warm (schema validator, preset catalogs, fonts) what the commands use,
    once, by running the smallest bundled scenario here: each forked child starts warm."""
    import tempfile

    from leptonsim import scenario
    from leptonsim.cli import parser
    from leptonsim.result import run, write_outputs

    parser()
    with tempfile.TemporaryDirectory() as out:
        for s in scenario.load(SCENARIOS / "edge_inference.toml"):
            write_outputs(run(s), Path(out) / s.variant)


def run_case(mutant: Mutant, case_dir: Path, *, run: bool, timeout: float = TIMEOUT,
             memory: int = MEMORY_LIMIT) -> Outcome:
    """check the mutant, then run it if `run` and it checked; classify what happened."""
    work = case_dir / "work"
    work.mkdir(parents=True)
    text = mutant.toml()
    (work / "scenario.toml").write_text(text, encoding="utf-8")
    outcome = Outcome(mutant, text)
    for argv in (["check", "scenario.toml"], ["run", "scenario.toml", "--out", "out"]):
        before = _files(work)
        cmd = _command(argv, work, case_dir, timeout, memory)
        outcome.commands.append(cmd)
        outcome.failures += _judge(cmd, _files(work) - before, work, mutant)
        if cmd.code != 0 or not run:
            break
    return outcome


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _command(argv: list[str], work: Path, case_dir: Path, timeout: float,
             memory: int) -> Command:
    name = argv[0]
    result, dump = case_dir / f"{name}.result.json", case_dir / f"{name}.hang.txt"
    out, err = case_dir / f"{name}.stdout", case_dir / f"{name}.stderr"
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:    # pragma: no cover - the child
        try:
            _child(argv, work, result, dump, out, err, timeout, memory)
        finally:
            os._exit(0)
    status, rusage = _wait(pid, timeout + 10)
    cmd = Command(argv, peak_rss=rusage.ru_maxrss * 1024,
                  stdout=out.read_text(errors="replace"), stderr=err.read_text(errors="replace"))
    if result.exists():
        got = json.loads(result.read_text())
        cmd.code, cmd.error, cmd.trace = got["code"], got["error"], got["trace"]
    elif dump.exists() and dump.stat().st_size:
        cmd.hung, cmd.trace = True, dump.read_text(errors="replace")
        cmd.error = "hang in " + _innermost(re.findall(r'File "(.+)", line \d+ in (\S+)', cmd.trace))
    elif os.WIFSIGNALED(status):
        cmd.died = os.WTERMSIG(status)
    return cmd


def _child(argv: list[str], work: Path, result: Path, dump: Path, out: Path, err: Path,
           timeout: float, memory: int) -> None:  # pragma: no cover - runs in the child
    sys.settrace(None)      # a tracer inherited from the parent (Hypothesis's explain phase,
    sys.setprofile(None)    # coverage) makes the command many times slower: a false hang
    os.chdir(work)
    for fd, path in ((1, out), (2, err)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(f, fd)
        os.close(f)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    hang = open(dump, "w")  # noqa: SIM115
    faulthandler.dump_traceback_later(timeout, exit=True, file=hang)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (memory, hard))
    from leptonsim.cli import main

    got: dict[str, Any] = {"code": None, "error": "", "trace": ""}
    try:
        got["code"] = main(argv)
    except BaseException as exc:  # noqa: BLE001 - anything escaping main is the finding
        got["error"], got["trace"] = signature(exc), traceback.format_exc()
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    faulthandler.cancel_dump_traceback_later()
    sys.stdout.flush()
    sys.stderr.flush()
    result.write_text(json.dumps(got))


def _wait(pid: int, deadline: float) -> tuple[int, Any]:
    """wait4 the child; SIGKILL it if it outlives the deadline (the hang guard's backup)."""
    fd = os.pidfd_open(pid)
    try:
        if not select.select([fd], [], [], deadline)[0]:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(fd)
    _, status, rusage = os.wait4(pid, 0)
    return status, rusage


def signature(exc: BaseException) -> str:
    """Exception type and the innermost leptonsim frame it passed through."""
    frames = [(f.filename, f.name) for f in traceback.extract_tb(exc.__traceback__)]
    return f"{type(exc).__name__} at {_innermost(frames[::-1])}"


def _innermost(frames: list[tuple[str, str]]) -> str:
    """frames innermost first -> 'leptonsim/x.py:func', the innermost leptonsim frame
    (where a library or the standard library was called from), else the innermost."""
    ours = [(f, n) for f, n in frames if f.startswith(PACKAGE)]
    return _short(*(ours or frames)[0]) if frames else "?"


def _short(file: str, name: str) -> str:
    where = "leptonsim/" + file[len(PACKAGE):] if file.startswith(PACKAGE) else Path(file).name
    return f"{where}:{name}"


def _judge(cmd: Command, new: set[str], work: Path, mutant: Mutant) -> list[Failure]:
    what = cmd.argv[0]

    def failure(kind: str, sig: str) -> list[Failure]:
        return [Failure(kind, sig, what)]

    if cmd.hung:
        return failure("hang", cmd.error)
    if cmd.error:
        memory = cmd.error.startswith("MemoryError")
        return failure("memory" if memory else "traceback", cmd.error)
    if cmd.died:
        kind = "memory" if cmd.died == signal.SIGKILL else "crash"
        return failure(kind, f"killed by {signal.Signals(cmd.died).name}")
    if cmd.peak_rss > MEMORY_LIMIT:
        return failure("memory", f"peak RSS {cmd.peak_rss / 1e9:.1f} GB")
    if cmd.code == 2:
        return _judge_refusal(cmd, new, what)
    if cmd.code != 0:
        return failure("exit", f"exit {cmd.code}: {_shape(cmd.stderr)}")
    return _judge_outputs(work, mutant, cmd.stderr) if what == "run" else []


def _judge_refusal(cmd: Command, new: set[str], what: str) -> list[Failure]:
    lines = cmd.stderr.splitlines()
    out = []
    if len(lines) != 1 or not lines[0].startswith("error: "):
        out.append(Failure("refusal", f"{len(lines)} stderr lines: {_shape(cmd.stderr)}", what))
    if new:
        out.append(Failure("wrote", "refusal wrote " + ", ".join(sorted(new)[:3]), what))
    return out


_SKIPPED = re.compile(r"^run: skipped .* \[(.*?)\]: ", re.MULTILINE)


def _judge_outputs(work: Path, mutant: Mutant, stderr: str) -> list[Failure]:
    variants = list(mutant.doc.get("variants") or {})
    skipped = set(_SKIPPED.findall(stderr))
    if variants and not set(variants) - skipped:
        return [Failure("output", "exit 0 with every variant skipped", "run")]
    for v in variants or [""]:
        d = work / "out" / v
        if v in skipped:
            if d.exists():
                return [Failure("output", "a skipped variant wrote its directory", "run")]
            continue
        missing = [f for f in OUTPUTS if not (d / f).is_file()]
        if missing:
            return [Failure("output", f"exit 0 without {', '.join(missing)}", "run")]
        for name in STRICT_JSON:
            try:
                json.loads((d / name).read_text(), parse_constant=_no_constant)
            except ValueError as exc:
                return [Failure("output", f"{name} is not strict JSON: {exc}", "run")]
    return []


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _shape(stderr: str) -> str:
    """The first stderr line with the specifics blanked, so one cause is one signature."""
    first = (stderr.strip().splitlines() or [""])[-1 if "Traceback" in stderr else 0]
    first = first.replace("scenario.toml", "FILE")
    first = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", first)
    return re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", first)[:120]
