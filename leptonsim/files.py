"""Files written all or nothing: a failure never leaves a partial output behind."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write"]


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
