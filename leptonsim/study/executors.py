"""Where points run: in-process, a local process pool, or a Dask cluster.

All three are `concurrent.futures.Executor`s; Dask's comes from
`distributed.Client(address).get_executor()` (cluster.py), so the sweep loop is the
same for each. No pool process outlives the sweep: SIGTERM and SIGHUP stop the pool as
Ctrl-C does, and each worker watches a pipe from its parent and exits when it closes.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from .store import StudyError

__all__ = ["EXECUTORS", "InlineExecutor", "Pool", "Stopped", "open_executor"]

EXECUTORS = ("process", "dask")
WAIT_WORKERS_S = 30.0  # how long a Dask cluster may take to have a worker
ORPHANED = 3           # a worker's exit code when its parent died


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


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # what batch systems and a closed terminal send


class Stopped(BaseException):  # not an Exception: a stop request, like KeyboardInterrupt
    """A termination signal arrived: raised in the main thread, as Ctrl-C raises
    KeyboardInterrupt, so the pool is taken down on the way out."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Stopped (once: the cleanup it starts is not interrupted)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can take signals
        return

    def stop(signum: int, frame: object) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _worker_start(parent: Connection) -> None:
    """In each worker: leave Ctrl-C to the parent, which stops the sweep cleanly, and exit
    as soon as the parent is gone, even by kill -9 (no handler runs then)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: Connection) -> None:
    """The parent holds the only write end of this pipe and never writes: the read ends
    only when the kernel closes that end, that is when the parent has died."""
    with suppress(EOFError, OSError):
        parent.recv_bytes()
    os._exit(ORPHANED)


def _context() -> Any:
    """forkserver where there is one: forking a process that runs threads is unsafe."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


@contextmanager
def _process_pool(workers: int) -> Iterator[Pool]:
    if workers == 1:
        yield Pool(InlineExecutor(), 1)
        return
    context = _context()
    alive, keep = context.Pipe(duplex=False)  # workers get `alive`; `keep` stays here
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_start,
                               initargs=(alive,))
    try:
        try:
            yield Pool(pool, workers)
        except BaseException:
            _stop(pool)
            raise
        pool.shutdown(wait=True)
    finally:  # the workers are gone by now: closing `keep` only matters if we are killed
        keep.close()
        alive.close()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop at once (Ctrl-C, SIGTERM, or a mistake found in a point): terminate the
    workers, as a point in progress is not worth waiting for, and let the pool fail what
    is queued. Nothing is cancelled first: Python 3.11's pool thread crashes, and exit
    then hangs, when it finds a cancelled future among those it fails."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()
    pool.shutdown(wait=True)


@contextmanager
def open_executor(kind: str = "process", workers: int | None = None,
                  scheduler: str | None = None, wait_workers_s: float = WAIT_WORKERS_S
                  ) -> Iterator[Pool]:
    """An executor for a sweep. `process`: `workers` local processes (os.cpu_count() by
    default; 1 runs in this process). `dask`: the cluster whose scheduler is at
    `scheduler` (tcp://HOST:PORT), once a worker has joined (within wait_workers_s).
    While it is open, SIGTERM and SIGHUP raise Stopped in the main thread."""
    if kind not in EXECUTORS:
        raise StudyError(f"unknown executor {kind!r}: expected one of {', '.join(EXECUTORS)}")
    if kind == "dask" and not scheduler:
        raise StudyError("--executor dask needs --scheduler tcp://HOST:PORT")
    with _stop_on_signals():
        if kind == "dask":
            from .cluster import dask_pool

            with dask_pool(str(scheduler), wait_workers_s) as (executor, slots):
                yield Pool(executor, slots)
        else:
            with _process_pool(max(1, workers or os.cpu_count() or 1)) as pool:
                yield pool
