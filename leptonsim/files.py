"""Files written all or nothing: a failure never leaves a partial output behind.

`check_output` refuses an output path that cannot be written before any work is done;
`atomic_write` replaces one file; `publish` replaces a set of files at once;
`json_text` is JSON that is valid (no NaN or Infinity) or a one-line refusal.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import ScenarioError

__all__ = ["atomic_write", "check_output", "current_set", "json_text", "publish"]


def check_output(path: str | os.PathLike[str], *, directory: bool,
                 option: str = "--out") -> Path:
    """`path` if a command can write there (a directory, or a file if not `directory`),
    else ScenarioError naming the option and what is in the way. Nothing is created:
    the nearest existing ancestor must be a directory this process may write into."""
    target = Path(path)
    expected = "a writable directory" if directory else "a file path"

    def refuse(found: str) -> ScenarioError:
        return ScenarioError(option, expected, f"<{found}>", file=str(target))

    if target.exists():
        if directory != target.is_dir():
            raise refuse("a directory" if target.is_dir() else "a file")
        if not directory and not target.is_file():
            raise refuse("a special file")
    nearest = target if directory else target.parent
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not nearest.is_dir():
        raise refuse(f"a path below the file {nearest}")
    if not os.access(nearest, os.W_OK | os.X_OK):
        read_only = os.statvfs(nearest).f_flag & os.ST_RDONLY
        raise refuse(f"{'a read-only filesystem' if read_only else 'no write permission'} "
                     f"at {nearest}")
    return target


def json_text(obj: object, file: str) -> str:
    """`obj` as indented JSON, or ScenarioError (exit 2) naming the key of the first
    non-finite number: JSON has no Infinity or NaN, and one there comes from inputs
    so large or small that the arithmetic overflowed."""
    try:
        return json.dumps(obj, indent=2, allow_nan=False) + "\n"
    except ValueError:
        key, value = _non_finite(obj, "") or ("", obj)
        raise ScenarioError(key, "a finite number", value, file=file,
                            hint="a number overflowed: an input too large or small?; nothing was written"
                            ) from None


def _non_finite(obj: object, key: str) -> tuple[str, float] | None:
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (key, obj)
    if isinstance(obj, dict):
        items: Any = ((f"{key}.{k}" if key else str(k), v) for k, v in obj.items())
    elif isinstance(obj, list | tuple):
        items = ((f"{key}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    return next((found for k, v in items if (found := _non_finite(v, k))), None)


def atomic_write(
    path: str | os.PathLike[str],
    writer: Callable[[IO[Any]], object],
    *,
    binary: bool = False,
) -> Path:
    """Create or replace `path` with what `writer(file)` writes, all or nothing.

    The data goes to a fresh temporary file in the same directory (so the final
    `os.replace` is an atomic rename on the same filesystem), is flushed and fsynced,
    then renamed over `path`. If `writer` raises, the temporary file is removed, the
    exception propagates and `path` is untouched. Text mode is UTF-8 with
    ``newline=""`` (what the csv module expects; no newline translation).
    Returns the final path.
    """
    target = Path(path)
    directory = target.parent
    fd, tmp = _create_temp(directory, target.name)
    try:
        if binary:
            f: IO[Any] = os.fdopen(fd, "wb")
        else:
            f = os.fdopen(fd, "w", encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    try:
        with f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as err:  # a full disk, say: name the file, for the one-line message
        _unlink_quietly(tmp)
        if err.filename is None and err.errno is not None:
            raise OSError(err.errno, err.strerror, str(target)) from err
        raise
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(directory)
    return target


def _create_temp(directory: Path, name: str) -> tuple[int, Path]:
    # os.open with mode 0o666 lets the process umask decide the final permissions,
    # as for any ordinary new file (tempfile.mkstemp would force 0o600).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {directory / name}")


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable where the platform allows opening a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- sets of output files
#
# A command's output files form a set (a run's summary.json, trace.json, ... describe
# one simulation), so they are replaced together, the way Kubernetes' AtomicWriter
# updates a volume: each set is a hidden directory `.<name>.<token>`, the symlink
# `.<name>` names the current one, and each public file `DIR/<file>` is a symlink
# `.<name>/<file>`. Publishing a new set is one rename(2) of a symlink over `.<name>`,
# which POSIX makes atomic; a reader opening `DIR/summary.json` resolves the link at
# that moment. Whatever point a writer dies at, `DIR` shows the whole old set or the
# whole new one. DIR itself stays a plain directory, so other files in it (a sweep's
# directory inside a run's, say) are untouched.
#
# A set is written in `.staging-<pid>-<token>`, whose writer holds an flock(2) on it
# until it is published; the kernel drops the lock when the writer dies, however it
# dies, so a staging directory nobody holds is a dead writer's and is removed by the
# next publish, as are sets that are no longer current (a writer died between the swap
# and removing the old set). The short steps that create, swap and collect run under
# an exclusive flock on DIR itself, so two writers never collect each other's.

STAGING = ".staging-"


def publish(out_dir: str | os.PathLike[str], name: str,
            build: Callable[[Path], object]) -> list[Path]:
    """Write a set of files with `build(staging_dir)` and make it `out_dir`'s current set
    `name` in one atomic step (see above). If `build` raises, or the process dies, the
    previous set stays as it was. Returns the public paths, sorted."""
    out = Path(out_dir)
    created = [d for d in (out, *out.parents) if not d.exists()]
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        staging = out / f"{STAGING}{os.getpid()}-{secrets.token_hex(6)}"
        staging.mkdir()  # mode 0o777 less the umask, as any new directory
        owner = os.open(staging, os.O_RDONLY)
        fcntl.flock(owner, fcntl.LOCK_EX)
    published = False
    try:
        build(staging)
        files = sorted(p.name for p in staging.iterdir())
        _fsync_dir(staging)
        with _locked(out):
            final = out / f".{name}.{secrets.token_hex(6)}"
            os.rename(staging, final)
            staging = final  # what to remove if a step below fails
            _adopt_plain_files(out, name, files)
            for f in files:  # public links first: until the swap they show the old set
                _relink(out, name, f, f".{name}/{f}")
            _relink(out, name, f".{name}", final.name)  # the swap
            published = True
            _unlink_stale(out, name, files)
            _fsync_dir(out)
            collect(out, name)
    except OSError as err:  # name the public file, not the staging one
        inside = err.filename and Path(err.filename).parent in (staging, out)
        public = out / Path(err.filename).name if inside else err.filename
        raise OSError(err.errno, f"{err.strerror}; nothing in {out} was changed", public) from err
    finally:
        os.close(owner)
        if not published:
            shutil.rmtree(staging, ignore_errors=True)
            for d in created:  # the directories made for this set, if still empty
                with contextlib.suppress(OSError):
                    d.rmdir()
    return [out / f for f in files]


def current_set(out_dir: str | os.PathLike[str], name: str) -> Path:
    """The directory holding `out_dir`'s current set `name` (resolve once, then read
    every file from it, to read one set even while a writer publishes the next)."""
    out = Path(out_dir)
    return out / os.readlink(out / f".{name}")


def collect(out_dir: Path, name: str) -> None:
    """Remove dead writers' staging directories and sets of `name` that are not current.
    Call with the directory lock held."""
    link = out_dir / f".{name}"
    current = os.readlink(link) if link.is_symlink() else None
    for entry in os.scandir(out_dir):
        if entry.name.startswith(STAGING) and entry.is_dir(follow_symlinks=False):
            if _abandoned(Path(entry.path)):
                shutil.rmtree(entry.path, ignore_errors=True)
        elif entry.name.startswith(f".{name}.") and entry.name != current:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:  # a temporary link of a writer that died under the lock
                _unlink_quietly(Path(entry.path))


def _abandoned(staging: Path) -> bool:
    """True if no live process holds the staging directory's lock."""
    try:
        fd = os.open(staging, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _adopt_plain_files(out: Path, name: str, files: list[str]) -> None:
    """Bring plain files left by versions before sets into a set of their own, each
    public path showing the same content throughout (a hard link, a copy where links
    are not supported), so the swap that follows replaces them all at once too."""
    plain = [f for f in files if (out / f).is_file() and not (out / f).is_symlink()]
    if not plain:
        return
    old = out / f".{name}.{secrets.token_hex(6)}"
    old.mkdir()
    for f in files:  # what each public path shows now, plain or through the link
        if (out / f).is_file():
            try:
                os.link(out / f, old / f)
            except OSError:
                shutil.copy2(out / f, old / f)
    _fsync_dir(old)
    _relink(out, name, f".{name}", old.name)
    for f in plain:
        _relink(out, name, f, f".{name}/{f}")


def _unlink_stale(out: Path, name: str, files: list[str]) -> None:
    """Remove the public links of files the previous set had and this one has not
    (a run at --outputs summary after one at standard): they would dangle."""
    for entry in os.scandir(out):
        if (entry.name not in files and entry.is_symlink()
                and os.readlink(entry.path) == f".{name}/{entry.name}"):
            _unlink_quietly(Path(entry.path))


def _relink(out: Path, name: str, link: str, target: str) -> None:
    """Make `out/link` a symlink to `target`, atomically: a temporary link (named as
    set `name`'s, so that `collect` removes it if the writer dies) renamed over it."""
    path = out / link
    if path.is_symlink() and os.readlink(path) == target:
        return
    tmp = out / f".{name}.{secrets.token_hex(6)}.link"
    os.symlink(target, tmp)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    fd = os.open(out, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
