"""The CLI shell: every refusal is one line (exit 2) before any work, an environment
failure while writing is one line (exit 1) that changes nothing, and no output holds
a number that is not JSON."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import resource
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import leptonsim.measure.calibrate
import leptonsim.optimize.cli
import leptonsim.precision
import leptonsim.result
import leptonsim.study.runner
import leptonsim.validate.cli
import leptonsim.validate.run
from leptonsim.cli import main
from leptonsim.errors import ScenarioError
from leptonsim.files import check_output, json_text
from leptonsim.result import write_outputs
from tests.helpers.scenarios import FILES, TINY, run_result

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "scenarios" / "seed_case_study.toml"
BERT = ROOT / "scenarios" / "optimize_bert_large.toml"
SWEEP = ROOT / "docs" / "tutorial" / "scaling.toml"

# command line with {out} for the output path, the work it must not reach, the option
WRITERS = {
    "run": (["run", str(SEED), "--out", "{out}"], (leptonsim.result, "run"), "dir"),
    "sweep": (["sweep", str(SWEEP), "--out", "{out}", "--workers", "1"],
              (leptonsim.study.runner, "run_sweep"), "dir"),
    "calibrate": (["calibrate", "--quick", "--out", "{out}"], (leptonsim.measure.calibrate, "calibrate"),
                  "file"),
    "validate": (["validate", "{tiny}", "--out", "{out}"],
                 (leptonsim.validate.cli, "load_or_calibrate"), "dir"),
    "precision": (["precision", "--out", "{out}"], (leptonsim.precision, "measure"), "dir"),
    "optimize": (["optimize", str(BERT), "--out", "{out}"],
                 (leptonsim.optimize.cli, "search"), "dir"),
}


def _no_work(*args, **kwargs):  # type: ignore[no-untyped-def]
    raise AssertionError("the work began before the output path was checked")


@pytest.mark.parametrize("command", sorted(WRITERS))
@pytest.mark.parametrize("bad", ["wrong kind", "below a file"])
def test_a_bad_output_path_is_one_line_exit_2_before_any_work(command, bad, tmp_path, capsys,
                                                              monkeypatch):
    argv, (module, work), kind = WRITERS[command]
    monkeypatch.setattr(module, work, _no_work)
    monkeypatch.setattr(leptonsim.validate.run, "validate", _no_work)
    a_file = tmp_path / "results.txt"
    a_file.write_text("keep me")
    a_dir = tmp_path / "profiles"
    a_dir.mkdir()
    out = {"wrong kind": a_file if kind == "dir" else a_dir,
           "below a file": a_file / "sub" / "x"}[bad]
    (tmp_path / "tiny.toml").write_text(TINY)
    assert main([a.replace("{out}", str(out)).replace("{tiny}", str(tmp_path / "tiny.toml"))
                 for a in argv]) == 2
    err = capsys.readouterr().err
    expected = "a writable directory" if kind == "dir" else "a file path"
    found = {"wrong kind": "a file" if kind == "dir" else "a directory",
             "below a file": f"a path below the file {a_file}"}[bad]
    assert err == f"error: {out}: --out: expected {expected}, found {found}\n"
    assert a_file.read_text() == "keep me" and list(a_dir.iterdir()) == []


def test_a_read_only_directory_is_refused(tmp_path):
    """As a user without write permission (root drops to nobody in a child: root may
    write anywhere, and rightly passes the check)."""
    base = Path(tempfile.mkdtemp())
    try:
        base.chmod(0o755)
        ro = base / "ro"
        ro.mkdir(mode=0o555)
        ro.chmod(0o555)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                if os.geteuid() == 0:
                    os.setuid(65534)
                try:
                    check_output(ro / "new" / "dir", directory=True)
                    os.write(w, b"accepted")
                except ScenarioError as err:
                    os.write(w, err.line().encode())
            finally:
                os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        line = os.read(r, 1000).decode()
        assert line == (f"{ro}/new/dir: --out: expected a writable directory, found no write "
                        f"permission at {ro}")
    finally:
        ro.chmod(0o755)
        subprocess.run(["rm", "-rf", str(base)], check=True)


def test_a_special_file_is_not_a_file_path(tmp_path):
    with pytest.raises(ScenarioError, match="expected a file path, found a special file"):
        check_output("/dev/null", directory=False)


@pytest.mark.parametrize("argv", [
    [], ["run"], ["run", "x.toml", "--bogus"], ["frob"], ["sweep", "x.toml", "--workers", "abc"],
    ["precision", "--batch", "0"], ["optimize", "x.toml", "--objective", "speed"],
])
def test_argparse_refusals_are_one_line_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: leptonsim")
    if argv[:1] in (["run"], ["sweep"], ["precision"], ["optimize"]):
        assert err.startswith(f"error: leptonsim {argv[0]}: ")


def test_help_stays_full(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: leptonsim run") and "--out DIR" in out


VARIANTS = ("chain", "independent", "seed_assumptions")  # chain is written first


def _sets(out: Path) -> dict[str, bytes]:
    return {f"{v}/{f}": (out / v / f).read_bytes() for v in VARIANTS for f in FILES}


def _old_set(out: Path) -> dict[str, bytes]:
    assert main(["run", str(SEED), "--out", str(out)]) == 0
    return _sets(out)


def test_a_full_disk_while_writing_is_one_line_exit_1_and_changes_nothing(tmp_path, capsys,
                                                                           monkeypatch):
    """fsync reports ENOSPC (as it does where space is allocated late): one line naming
    the file, exit 1 (the command was right, the machine failed it), the old set kept."""
    out = tmp_path / "out"
    before = _old_set(out)
    capsys.readouterr()
    calls = [0]
    real = os.fsync

    def full(fd: int) -> None:
        calls[0] += stat.S_ISREG(os.fstat(fd).st_mode)
        if calls[0] == 2:  # the first variant's trace.json
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", full)
    assert main(["run", str(SEED), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: leptonsim run: {out / 'chain' / 'trace.json'}: No space left "
                   f"on device; nothing in {out / 'chain'} was changed\n")
    assert _sets(out) == before
    assert not list(out.glob("*/.staging-*"))


def test_a_file_size_limit_is_one_line_in_a_real_process(tmp_path):
    """A real write failure (EFBIG from RLIMIT_FSIZE; Python ignores SIGXFSZ)."""
    out = tmp_path / "out"
    before = _old_set(out)
    limit = min(len(b) for b in before.values()) + 1  # every file of the run is larger

    def small() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "leptonsim", "run", str(SEED), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, preexec_fn=small)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    line, = proc.stderr.splitlines()
    assert line.startswith("error: leptonsim run: ") and "File too large; nothing in" in line
    assert _sets(out) == before
    assert not list(out.glob("*/.staging-*"))


def test_a_non_finite_number_is_never_written_as_json(tmp_path):
    """A value that overflowed is a one-line refusal naming its key, nothing written."""
    result = run_result(6, 1)
    bad = dataclasses.replace(result, cost_usd=float("inf"))
    with pytest.raises(ScenarioError, match=r"^summary\.json: cost_usd: expected a finite "
                                            r"number, found inf \(a number overflowed"):
        write_outputs(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    doc = {"a": [1.0, {"b": 2.0}, {"c": float("nan")}]}
    with pytest.raises(ScenarioError, match=r"^x\.json: a\[2\]\.c: expected a finite number"):
        json_text(doc, "x.json")
    assert json.loads(json_text({"a": [1.5, None]}, "x.json")) == {"a": [1.5, None]}
