"""Faults during a sweep: SIGTERM and kill -9 of the sweep alone (its pool must go with
it), and every way a Dask cluster can fail, each one line with finished rows kept."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from leptonsim.cli import main
from tests.helpers.study import GRID, ROOT, SLOW, one_line_refusal, rows_of, spawn_sweep, study, wait_for_rows

LIVENESS_S = 60  # how long dead processes may take to be gone (a liveness bound only)


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    def running(p: psutil.Process) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    return [p for p in procs if running(p)]


def wait_gone(procs: list[psutil.Process]) -> list[psutil.Process]:
    deadline = time.monotonic() + LIVENESS_S
    while alive(procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(procs)


def resume_completes_each_point_once(file: Path, out: Path) -> None:
    before = (out / "results.csv").read_bytes()
    done = before[:before.rfind(b"\n") + 1]
    finished = done.count(b"\n") - 1
    rerun = subprocess.run([sys.executable, "-m", "leptonsim", "sweep", str(file), "--out",
                            str(out), "--workers", "2"], cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"40 points ({finished} already done, {40 - finished} run)" in rerun.stdout
    assert (out / "results.csv").read_bytes().startswith(done)
    ids = [r["point_id"] for r in rows_of(out / "results.csv")]
    assert len(ids) == 40 == len(set(ids))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_signalled_sweep_takes_its_pool_down_and_resumes_exactly(
        tmp_path: Path, sig: signal.Signals) -> None:
    file, out = tmp_path / "slow.toml", tmp_path / "out"
    file.write_text(SLOW)
    proc = spawn_sweep(file, out, "--workers", "2")
    wait_for_rows(out / "results.csv", proc, 3)
    pool = psutil.Process(proc.pid).children(recursive=True)
    assert len(pool) >= 2  # the workers (and forkserver, resource tracker)
    os.kill(proc.pid, sig)  # the sweep alone, not its process group
    _, err = proc.communicate(timeout=LIVENESS_S)
    assert proc.returncode == (128 + sig if sig == signal.SIGTERM else -sig), err
    if sig == signal.SIGTERM:
        assert err.splitlines() == [f"stopped by SIGTERM: finished points are in "
                                    f"{out / 'results.csv'}; run the same command again "
                                    "to resume"]
    assert wait_gone(pool) == []
    resume_completes_each_point_once(file, out)


# -- Dask ---------------------------------------------------------------------------------

def sweep_file(tmp_path: Path) -> Path:
    file = tmp_path / "study.toml"
    file.write_text(study("[sweep]\n" + GRID))
    return file


def dask_cli(file: Path, out: Path, address: str, *extra: str) -> list[str]:
    return ["sweep", str(file), "--out", str(out), "--executor", "dask", "--scheduler", address,
            *extra]


@pytest.mark.parametrize("address, found", [
    ("not a url", "expected a Dask scheduler address tcp://HOST:PORT"),
    ("http://127.0.0.1:8786", "http:// is its dashboard"),
    ("tcp://127.0.0.1:99999", "port 1-65535"),
    ("tcp://127.0.0.1:http", "port 1-65535"),
    ("tcp://127.0.0.1", "found 'tcp://127.0.0.1'"),
])
def test_a_malformed_scheduler_address_is_refused_without_connecting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        address: str, found: str) -> None:
    def no_connection(*args: object, **kwargs: object) -> None:
        raise AssertionError("a malformed address was dialled")
    monkeypatch.setattr(socket, "create_connection", no_connection)
    monkeypatch.setattr(socket.socket, "connect", no_connection)
    err = one_line_refusal(dask_cli(sweep_file(tmp_path), tmp_path / "o", address), capsys)
    assert found in err and "--scheduler" in err
    assert sorted(os.listdir(tmp_path / "o")) == ["sweep.lock"]  # no manifest, no rows


def test_a_sweep_refused_at_its_start_does_not_bind_the_next(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file, out = sweep_file(tmp_path), tmp_path / "o"
    one_line_refusal(dask_cli(file, out, "not a url"), capsys)
    assert main(["sweep", str(file), "--out", str(out), "--workers", "1", "--price", "2"]) == 0
    assert "6 points (0 already done, 6 run)" in capsys.readouterr().out


@pytest.fixture
def impostor() -> Iterator[tuple[str, list[bytes]]]:
    """A TCP server that is not Dask: it answers every connection with the next reply,
    as an HTTP server or a stray service would."""
    replies: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(replies.pop(0) if replies else b"")
                with contextlib.suppress(OSError):
                    conn.recv(1 << 16)

    threading.Thread(target=serve, daemon=True).start()
    yield f"tcp://127.0.0.1:{port}", replies
    server.close()


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",  # 3.4 EiB as a frame length
    (1 << 30).to_bytes(8, "little") + b"garbage",                 # 1 GiB announced
    (40).to_bytes(8, "little") + os.urandom(40),                  # small but not msgpack
])
def test_a_port_that_answers_but_is_not_dask_is_one_line_and_allocates_nothing_large(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        impostor: tuple[str, list[bytes]], reply: bytes) -> None:
    address, replies = impostor
    replies.append(reply)
    tracemalloc.start()
    try:
        err = one_line_refusal(dask_cli(sweep_file(tmp_path), tmp_path / "o", address), capsys)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"{address} answers but is not a Dask scheduler" in err
    assert peak < 64 << 20  # numpy's buffers are traced too: a 1 GiB frame would show


def test_a_closed_port_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    err = one_line_refusal(dask_cli(sweep_file(tmp_path), tmp_path / "o",
                                    f"tcp://127.0.0.1:{port}"), capsys)
    assert "cannot reach the Dask scheduler" in err and "refused" in err


def test_a_cluster_without_workers_is_refused_after_the_wait(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        err = one_line_refusal(dask_cli(sweep_file(tmp_path), tmp_path / "o",
                                        cluster.scheduler_address, "--wait-workers", "0.5"),
                               capsys)
    assert f"{cluster.scheduler_address} has no workers after 0.5 s" in err
    assert not (tmp_path / "o" / "results.sorted.csv").exists()


SCHEDULER = """
import sys, time
from distributed import LocalCluster
cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                       host="127.0.0.1", dashboard_address=None)
print(cluster.scheduler_address, flush=True)
time.sleep(600)
"""


def test_a_scheduler_killed_mid_sweep_is_one_line_and_keeps_finished_rows(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    file, out = tmp_path / "slow.toml", tmp_path / "out"
    file.write_text(SLOW)
    scheduler = subprocess.Popen([sys.executable, "-c", SCHEDULER], cwd=ROOT, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        address = (scheduler.stdout.readline() if scheduler.stdout else "").strip()
        proc = spawn_sweep(file, out, "--executor", "dask", "--scheduler", address)
        wait_for_rows(out / "results.csv", proc, 3)
    finally:
        scheduler.kill()
        scheduler.wait()
    _, err = proc.communicate(timeout=LIVENESS_S)
    assert proc.returncode == 1, err
    assert err.splitlines() == [f"error: lost the Dask scheduler at {address}: the points "
                                "finished are kept; run the same command again to resume"]
    resume_completes_each_point_once(file, out)


def test_wait_workers_must_be_seconds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(sweep_file(tmp_path)), "--wait-workers", "inf"])
    assert exit_info.value.code == 2
    assert "expected seconds from 0 to 86400, found 'inf'" in capsys.readouterr().err
