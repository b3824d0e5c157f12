"""Where points run: in-process, a local process pool, or a Dask cluster.

All three are `concurrent.futures.Executor`s; Dask's comes from
`distributed.Client(address).get_executor()`, so the sweep loop is the same for each.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .store import StudyError

__all__ = ["EXECUTORS", "InlineExecutor", "Pool", "open_executor"]

EXECUTORS = ("process", "dask")


class InlineExecutor(Executor):
    """Runs each call when it is submitted, in this process: the reference for tests."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered through the future, as a pool would
            future.set_exception(exc)
        return future


@dataclass
class Pool:
    executor: Executor
    slots: int                    # how many calls can run at once


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops the sweep cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _context() -> Any:
    """forkserver where there is one: forking a process that runs threads is unsafe."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


@contextmanager
def _process_pool(workers: int) -> Iterator[Pool]:
    if workers == 1:
        yield Pool(InlineExecutor(), 1)
        return
    pool = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_ignore_sigint)
    try:
        yield Pool(pool, workers)
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop at once (Ctrl-C, or a mistake found in a point): terminate the workers, as a
    point in progress is not worth waiting for, and let the pool fail what is queued.
    Nothing is cancelled first: Python 3.11's pool thread crashes, and exit then hangs,
    when it finds a cancelled future among those it fails."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()
    pool.shutdown(wait=True)


@contextmanager
def _dask(scheduler: str) -> Iterator[Pool]:
    try:
        from distributed import Client
    except ImportError:
        raise StudyError("--executor dask needs Dask: pip install 'leptonsim[dask]'") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise StudyError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        slots = sum(client.nthreads().values()) or 1
        yield Pool(client.get_executor(pure=False), slots)
    finally:
        client.close()


@contextmanager
def open_executor(kind: str = "process", workers: int | None = None,
                  scheduler: str | None = None) -> Iterator[Pool]:
    """An executor for a sweep. `process`: `workers` local processes (os.cpu_count() by
    default; 1 runs in this process). `dask`: the cluster whose scheduler is at
    `scheduler` (tcp://HOST:PORT)."""
    if kind == "dask":
        if not scheduler:
            raise StudyError("--executor dask needs --scheduler tcp://HOST:PORT")
        with _dask(scheduler) as pool:
            yield pool
        return
    if kind != "process":
        raise StudyError(f"unknown executor {kind!r}: expected one of {', '.join(EXECUTORS)}")
    with _process_pool(max(1, workers or os.cpu_count() or 1)) as pool:
        yield pool
