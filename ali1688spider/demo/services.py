"""Start the local stand-ins a demo or a test needs: the gateway emulator and a Mongo-protocol
server (``secantusdb``, a dev/demo dependency run as its own process, never imported here).

Each server listens on a free loopback port and is stopped by leaving the ``with`` block.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 10) -> int:
    """Send ``sig``, wait up to ``timeout`` seconds, then kill; close its pipe; return its status."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
    return int(process.returncode)


@dataclass
class Service:
    name: str
    process: subprocess.Popen[str]
    url: str

    def stop(self) -> None:
        stop_process(self.process)


@contextlib.contextmanager
def gateway_emulator(*flags: str) -> Iterator[Service]:
    """``python -m ali1688spider.sandbox --port 0 FLAGS``; ``url`` is its ``…/openapi`` base."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ali1688spider.sandbox", "--port", "0", *flags],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = next((word for word in line.split() if word.startswith("http://")), "")
        if not url:
            raise RuntimeError(f"the gateway emulator did not start: {line!r}")
        service = Service("gateway emulator", process, url.rstrip("/"))
        yield service
    finally:
        Service("gateway emulator", process, "").stop()


@contextlib.contextmanager
def mongo_server(storage: str | os.PathLike[str] | None = None, timeout: float = 20.0) -> Iterator[Service]:
    """A Mongo-protocol server on a free port; ``url`` is its ``mongodb://`` URI."""
    folder = Path(storage) if storage else Path(tempfile.mkdtemp(prefix="ali1688-mongo-"))
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command: Sequence[str] = [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
                              "--storage-path", str(folder)]
    log_path = folder.parent / f"{folder.name}.log"
    log = log_path.open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
    service = Service("Mongo-protocol server", process, f"mongodb://127.0.0.1:{port}")
    try:
        _wait_for_port(port, process, timeout)
        yield service
    finally:
        service.stop()
        log.close()
        if storage is None:
            shutil.rmtree(folder, ignore_errors=True)
            log_path.unlink(missing_ok=True)


def _wait_for_port(port: int, process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


@contextlib.contextmanager
def redis_server(folder: str | os.PathLike[str] | None = None, *, persist: bool = False,
                 port: int | None = None) -> Iterator[Service]:
    """``redis-server`` on a free loopback port; ``persist`` keeps an append-only file in
    ``folder`` (fsync on every write) so the server can be restarted without losing data."""
    directory = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="ali1688-redis-"))
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    durability = ["--appendonly", "yes", "--appendfsync", "always"] if persist else ["--appendonly", "no"]
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", *durability,
               "--dir", str(directory), "--logfile", str(directory / "redis.log")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    service = Service("redis-server", process, f"redis://127.0.0.1:{port}/0")
    try:
        _wait_for_port(port, process, 10)
        yield service
    finally:
        service.stop()
        if folder is None:
            shutil.rmtree(directory, ignore_errors=True)
