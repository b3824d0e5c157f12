"""A Dask cluster as a sweep executor, with every way of failing made one line.

Before a `distributed.Client` is made, the address is checked (tcp://HOST:PORT, a port
in 1-65535) and the scheduler is probed: a Dask scheduler sends its handshake as soon as
a connection is accepted, an 8-byte frame length and then a small msgpack message
(distributed.comm.tcp). distributed itself trusts that length and allocates it: any
other server answering on the port (an HTTP server, garbage) makes it allocate up to
2^64 bytes. The probe reads the length itself, refuses one above HANDSHAKE_MAX, and
decodes the message, so only a Dask scheduler ever reaches distributed's reader.
"""

from __future__ import annotations

import logging
import socket
import struct
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager
from typing import Any

from .store import StudyError

__all__ = ["HANDSHAKE_MAX", "SchedulerLost", "dask_pool", "scheduler_address"]

HANDSHAKE_MAX = 64 * 1024   # a Dask handshake is ~60 bytes; this leaves room for growth
CONNECT_S = 10.0            # as long as distributed's default connect timeout
ADDRESS = "a Dask scheduler address tcp://HOST:PORT (port 1-65535)"


class SchedulerLost(StudyError):
    """The scheduler went away while the sweep ran (not a mistake in the input)."""


def scheduler_address(text: str) -> tuple[str, int]:
    """(host, port) of `tcp://HOST:PORT`, or a StudyError saying what is wrong."""
    parts = urllib.parse.urlsplit(text.strip())
    try:
        port = parts.port
    except ValueError:  # not a number, or out of 0-65535
        port = None
    hint = " (Dask speaks tcp://; http:// is its dashboard)" if parts.scheme.startswith("http") \
        else ""
    if parts.scheme != "tcp" or not parts.hostname or not port or parts.path not in ("", "/") \
            or parts.query or parts.fragment:
        raise StudyError(f"--scheduler: expected {ADDRESS}, found {text!r}{hint}")
    return parts.hostname, port


def _recv(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionResetError("the connection was closed")
        data += chunk
    return data


def _probe(address: str, host: str, port: int) -> None:
    """Refuse, in one line, an address where no Dask scheduler answers."""
    from distributed.protocol import loads
    from distributed.protocol.utils import unpack_frames

    try:
        with socket.create_connection((host, port), timeout=CONNECT_S) as sock:
            (length,) = struct.unpack("Q", _recv(sock, 8))  # distributed's own framing
            if length > HANDSHAKE_MAX:
                raise ValueError(f"a first message of {length} bytes")
            message = loads(unpack_frames(_recv(sock, length)))
    except (OSError, TimeoutError) as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) \
            else (exc.strerror or str(exc)).lower()
        raise StudyError(f"cannot reach the Dask scheduler at {address}: {reason}") from None
    except Exception as exc:  # whatever garbage made the decoder fail
        raise StudyError(f"{address} answers but is not a Dask scheduler ({exc})") from None
    if not isinstance(message, dict) or "pickle-protocol" not in message:
        raise StudyError(f"{address} answers but is not a Dask scheduler (no Dask handshake)")


@contextmanager
def _quiet(prefixes: tuple[str, ...] = ("distributed", "tornado", "asyncio")) -> Iterator[None]:
    """Silence the logging of distributed and its event loop (a lost scheduler logs
    tracebacks from its reconnect task and its callbacks) while the sweep speaks for
    itself in one line."""
    names = [n for n in (*prefixes, *logging.root.manager.loggerDict)
             if n.split(".", 1)[0] in prefixes]
    loggers = [logging.getLogger(n) for n in dict.fromkeys(names)]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextmanager
def dask_pool(address: str, wait_workers_s: float) -> Iterator[tuple[Any, int]]:
    """(executor, slots) on the cluster at `address`, after at least one worker joined
    (waiting at most wait_workers_s). A scheduler lost mid-sweep is a SchedulerLost."""
    try:
        from distributed import Client
    except ImportError:
        raise StudyError("--executor dask needs Dask: pip install 'leptonsim[dask]'") from None
    host, port = scheduler_address(address)
    _probe(address, host, port)
    with _quiet():
        try:
            client = Client(address, timeout=f"{CONNECT_S}s")
        except (OSError, TimeoutError) as exc:
            raise StudyError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        try:
            try:
                client.wait_for_workers(1, timeout=wait_workers_s)
            except TimeoutError:
                raise StudyError(f"the Dask scheduler at {address} has no workers after "
                                 f"{wait_workers_s:g} s (start some: dask worker {address}; "
                                 "or wait longer: --wait-workers SECONDS)") from None
            slots = sum(client.nthreads().values()) or 1
            try:
                yield client.get_executor(pure=False), slots
            except CancelledError:
                raise SchedulerLost(f"lost the Dask scheduler at {address}: the points "
                                    "finished are kept; run the same command again to "
                                    "resume") from None
        finally:
            client.close()
