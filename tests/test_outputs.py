"""A run's outputs are replaced as one set: whenever the writer dies, a reader sees the
whole old set or the whole new one; dead writers' leftovers are collected."""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from leptonsim.files import atomic_write, current_set, publish
from leptonsim.result import RunResult, write_outputs
from tests.helpers.scenarios import FILES, run_result

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two() -> tuple[RunResult, RunResult]:
    return run_result(6, 1), run_result(17, 2)


def read_set(d: Path) -> tuple[int, int]:
    """(seed, tasks) of the set in `d`, after checking its five files agree on them."""
    doc = json.loads((d / "summary.json").read_text())
    with open(d / "tasks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    trace = json.loads((d / "trace.json").read_text())
    events = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["pid"] == 1]
    assert len(rows) == len(events) == doc["tasks"], (len(rows), len(events), doc["tasks"])
    assert max(float(r["end_s"]) for r in rows) <= doc["makespan_s"]
    assert (d / "transfers.csv").read_text().startswith("src_task,")
    assert (d / "gantt.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return doc["seed"], doc["tasks"]


def only_one_set(out: Path) -> None:
    """Nothing but the current set and its public links is left in `out`."""
    names = sorted(os.listdir(out))
    hidden = [n for n in names if n.startswith(".")]
    assert [n for n in names if not n.startswith(".")] == FILES
    assert hidden == [".run", os.readlink(out / ".run")], hidden


def _die_at(step: int) -> None:
    """Make the `step`-th file-system change of this process SIGKILL it just before."""
    count = [0]

    def trap(fn, changes=lambda *a: True):  # type: ignore[no-untyped-def]
        def wrapped(*a, **k):  # type: ignore[no-untyped-def]
            if changes(*a):
                count[0] += 1
                if count[0] == step:
                    os.kill(os.getpid(), signal.SIGKILL)
            return fn(*a, **k)
        return wrapped

    for name in ("rename", "replace", "symlink", "link", "mkdir", "rmdir", "unlink", "fsync"):
        setattr(os, name, trap(getattr(os, name)))
    os.open = trap(os.open, lambda path, flags, *a: bool(flags & os.O_CREAT))
    shutil.rmtree = trap(shutil.rmtree)


def _build(token: str):  # type: ignore[no-untyped-def]
    def build(d: Path) -> None:
        for f in FILES:
            atomic_write(d / f, lambda out: out.write(token))
    return build


def _shown(out: Path) -> set[str]:
    return {(out / f).read_text() for f in FILES}


@pytest.mark.parametrize("before", ["a set", "plain files"])
def test_a_writer_killed_at_every_step_leaves_the_old_set_or_the_new(before, tmp_path) -> None:
    """Fork a writer that SIGKILLs itself before its k-th file-system change, for every
    k until one finishes: after each death the public files are one whole set, old or
    new, and the next publish leaves nothing but its own set. From a set, and from the
    plain files of versions before sets (with a stale unlocked staging directory)."""
    pristine = tmp_path / "pristine"
    if before == "a set":
        publish(pristine, "run", _build("old"))
    else:
        pristine.mkdir()
        for f in FILES:
            (pristine / f).write_text("old")
        (pristine / ".staging-x1y2z3").mkdir()
    out, step = tmp_path / "out", 0
    while True:
        step += 1
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(pristine, out, symlinks=True)
        pid = os.fork()
        if pid == 0:
            try:
                _die_at(step)
                publish(out, "run", _build("new"))
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        shown = _shown(out)  # through the public paths, as a user reads them
        assert shown in ({"old"}, {"new"}), (step, shown)
        publish(out, "run", _build("next"))
        assert _shown(out) == {"next"}
        only_one_set(out)
        if os.WIFEXITED(status):
            assert shown == {"new"}
            break
        assert os.WTERMSIG(status) == signal.SIGKILL
    assert step > 20  # every step of staging, adopting, linking and collecting was hit


def test_sigkill_at_random_moments_with_a_reader_running(two, tmp_path) -> None:
    """A writer process rewriting the set in a loop is killed at random moments, 12
    times, while a reader keeps reading whole sets: neither ever sees a mix."""
    old, new = two
    out = tmp_path / "out"
    write_outputs(old, out)
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            with contextlib.suppress(FileNotFoundError):  # superseded, collected meanwhile
                seen.append(read_set(current_set(out, "run")))
            time.sleep(0.002)  # leave the CPU to the writer

    t = threading.Thread(target=reader)
    t.start()
    rng = random.Random(7)
    try:
        write_outputs(new, out)  # one swap the reader surely sees, then the kills
        shown = read_set(out)
        for _ in range(12):
            pid = os.fork()
            if pid == 0:  # the writer: the other set first, then alternate
                try:
                    first = 1 if shown == (1, 6) else 0
                    for i in range(first, 10**6):
                        write_outputs((old, new)[i % 2], out)
                finally:
                    os._exit(0)
            time.sleep(rng.uniform(0.0, 1.5))
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            shown = read_set(out)
            assert shown in {(1, 6), (2, 17)}
    finally:
        stop.set()
        t.join()
    assert set(seen) == {(1, 6), (2, 17)}  # the reader saw both sets, each whole
    write_outputs(new, out)
    only_one_set(out)


def test_staging_of_a_killed_process_is_removed_and_of_a_live_one_kept(tmp_path) -> None:
    """Item 19: a real process killed while staging leaves its directory; the next
    publish removes it, but not the staging directory of a writer still alive."""
    out = tmp_path / "out"
    code = ("import sys, time\nfrom pathlib import Path\nfrom leptonsim.files import publish\n"
            "def build(d):\n    (d / 'big').write_bytes(bytes(10**6))\n"
            "    print('staged', flush=True)\n    time.sleep(60)\n"
            "publish(Path(sys.argv[1]), 'run', build)\n")
    children = [subprocess.Popen([sys.executable, "-c", code, str(out)], cwd=ROOT,
                                 stdout=subprocess.PIPE, text=True) for _ in range(2)]
    dead, alive = children
    try:
        for c in children:
            assert c.stdout is not None and c.stdout.readline() == "staged\n"
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        staging = {p.name for p in out.glob(".staging-*")}
        assert {f".staging-{c.pid}" for c in children} == {s.rsplit("-", 1)[0] for s in staging}
        publish(out, "run", lambda d: (d / "f.txt").write_text("x"))
        left = [p.name for p in out.glob(".staging-*")]
        assert len(left) == 1 and left[0].startswith(f".staging-{alive.pid}-")
    finally:
        alive.kill()
        alive.wait()
    publish(out, "run", lambda d: (d / "f.txt").write_text("y"))
    assert not list(out.glob(".staging-*")) and (out / "f.txt").read_text() == "y"


def test_plain_files_of_older_versions_are_replaced_as_a_set(two, tmp_path) -> None:
    """Before sets, the five files were plain, next to leftover `.staging-*` directories
    (no lock held): they are adopted, replaced at once, and the leftovers removed."""
    out = tmp_path / "out"
    out.mkdir()
    for f in FILES:
        (out / f).write_text("old")
    (out / ".staging-k2j3h4").mkdir()
    (out / ".staging-k2j3h4" / "trace.json").write_bytes(bytes(1000))
    (out / "sweep").mkdir()  # a sweep's directory inside the run's: left alone
    write_outputs(two[0], out)
    assert read_set(out) == (1, 6)
    assert sorted(os.listdir(out)) == sorted([".run", os.readlink(out / ".run"), *FILES, "sweep"])


def test_a_failed_build_changes_nothing_and_leaves_nothing(tmp_path) -> None:
    out = tmp_path / "a" / "b"
    publish(tmp_path, "x", lambda d: (d / "f").write_text("1"))

    def full(d: Path) -> None:
        (d / "f").write_text("2")
        raise OSError(errno.ENOSPC, "No space left on device", str(d / "g"))

    with pytest.raises(OSError, match=r"No space left on device; nothing in .* was changed") as e:
        publish(tmp_path, "x", full)
    assert e.value.filename == tmp_path / "g"  # the public name, not the staging one
    assert (tmp_path / "f").read_text() == "1" and not list(tmp_path.glob(".staging-*"))
    with pytest.raises(OSError):
        publish(out, "x", full)
    assert not (tmp_path / "a").exists()  # the directories made for it are gone too
