"""Start the local stand-ins a demo, a test or a benchmark needs: the gateway emulator, a
Mongo-protocol server (``secantusdb``, a dev/demo dependency run as its own process, never
imported here) and ``redis-server``.

Each server listens on a free loopback port and is stopped by leaving the ``with`` block.
:func:`gateway_emulator` is the one way the project starts the emulator: it gives a
:class:`GatewayEmulator`, with helpers for the emulator's ``/_sandbox/*`` controls.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..sandbox.config import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_REFRESH_TOKEN

#: The directory holding the ``ali1688spider`` package: the emulator runs the same code as its caller.
PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent
EMULATOR_START_TIMEOUT = 20.0  # seconds to wait for the emulator's first stdout line


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10) -> int:
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
    process: subprocess.Popen[Any]
    url: str

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the server (SIGTERM by default) and return its exit status."""
        return stop_process(self.process, sig)


@dataclass
class GatewayEmulator(Service):
    """A running ``python -m ali1688spider.sandbox``: ``url`` is its ``…/openapi`` base, ``base``
    its ``http://host:port``; the credentials it accepts; helpers for its ``/_sandbox/*`` controls."""

    flags: tuple[str, ...] = ()
    log_path: Path | None = None  # the emulator's stderr, when it was sent to a file
    app_key: str = field(init=False)
    app_secret: str = field(init=False)
    refresh_token: str = field(init=False)

    def __post_init__(self) -> None:
        self.app_key = _flag_value(self.flags, "--app-key", DEMO_APP_KEY)
        self.app_secret = _flag_value(self.flags, "--app-secret", DEMO_APP_SECRET)
        self.refresh_token = _flag_value(self.flags, "--refresh-token", DEMO_REFRESH_TOKEN)

    def __repr__(self) -> str:
        return f"<GatewayEmulator {self.url} pid={self.process.pid}>"

    @property
    def base(self) -> str:
        """``http://host:port``, where the ``/_sandbox/*`` controls are."""
        return self.url.rsplit("/openapi", 1)[0]

    # -- controls ----------------------------------------------------------------------------

    def get(self, path: str) -> Any:
        """``GET base + path``: its JSON reply."""
        return self._send(self.base + path)

    def post(self, path: str, data: Any = None) -> Any:
        """``POST base + path`` with ``data`` (default ``{}``) as JSON: its JSON reply (``{}`` if empty)."""
        return self._send(self.base + path, json.dumps(data if data is not None else {}).encode(), "application/json")

    def stats(self) -> dict[str, Any]:
        """``GET /_sandbox/stats``."""
        return dict(self.get("/_sandbox/stats"))

    def reset(self) -> None:
        """Zero stats, quota counters, usage and the fault script (the epoch and tokens stay)."""
        self.post("/_sandbox/reset")

    def set_quota(self, qps: int, window: str | None = None) -> dict[str, Any]:
        """Change the emulator's quota from the next call on (``POST /_sandbox/quota``)."""
        return dict(self.post("/_sandbox/quota", {"qps": qps, **({"window": window} if window else {})}))

    def quota_seconds(self) -> list[list[int]]:
        """``[second, admitted, throttled]`` per recent calendar second (``GET /_sandbox/quota``)."""
        return [list(row) for row in self.get("/_sandbox/quota")["seconds"]]

    def script(self, faults: list[dict[str, Any]]) -> int:
        """Queue scripted faults, e.g. ``[{"kind": "isp", "times": 2}]``; returns how many are pending."""
        return int(self.post("/_sandbox/faults", {"script": faults})["pending"])

    def revoke(self, *, refresh_tokens: bool = True, access_tokens: bool = False) -> None:
        """Revoke the refresh tokens issued so far (the demo one too), and the access tokens if asked."""
        self.post("/_sandbox/revoke", {"refresh_tokens": refresh_tokens, "access_tokens": access_tokens})

    def access_token(self) -> str:
        """A fresh access token from a ``refresh_token`` grant with this emulator's credentials."""
        form = urllib.parse.urlencode({
            "grant_type": "refresh_token", "client_id": self.app_key, "client_secret": self.app_secret,
            "refresh_token": self.refresh_token,
        }).encode()
        url = f"{self.url}/http/1/system.oauth2/getToken/{self.app_key}"
        return str(self._send(url, form, "application/x-www-form-urlencoded")["access_token"])

    def _send(self, url: str, data: bytes | None = None, content_type: str = "") -> Any:
        """GET (or POST ``data``) one of this emulator's own URLs; the JSON reply, ``{}`` if empty."""
        request = urllib.request.Request(  # noqa: S310 - the emulator's http:// URL
            url, data=data, headers={"Content-Type": content_type} if content_type else {},
            method="GET" if data is None else "POST")
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 - the emulator's http:// URL
            body = reply.read()
        return json.loads(body) if body else {}


def _flag_value(flags: Sequence[str], name: str, default: str) -> str:
    """The value of ``name`` among command-line ``flags`` (``--name value`` or ``--name=value``)."""
    for index, flag in enumerate(flags):
        if flag == name and index + 1 < len(flags):
            return flags[index + 1]
        if flag.startswith(name + "="):
            return flag.split("=", 1)[1]
    return default


@contextlib.contextmanager
def gateway_emulator(*flags: str, log_path: str | os.PathLike[str] | None = None) -> Iterator[GatewayEmulator]:
    """``python -m ali1688spider.sandbox --port 0 FLAGS`` for the ``with`` block, once it printed
    its URL. Its stderr goes to ``log_path`` (created or emptied) or, without one, to ours.
    ``RuntimeError`` when no URL comes within ``EMULATOR_START_TIMEOUT`` seconds."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "ali1688spider.sandbox", "--port", "0", *flags]
    log = Path(log_path) if log_path is not None else None
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if log is not None else None
    try:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log_fd)
    finally:
        if log_fd is not None:
            os.close(log_fd)  # the child keeps its own copy
    emulator = GatewayEmulator("gateway emulator", process, "", tuple(flags), log)
    try:
        line = _first_line(process, EMULATOR_START_TIMEOUT)
        url = next((word for word in line.decode(errors="replace").split() if word.startswith("http://")), "")
        if not url.endswith("/openapi"):
            status = emulator.stop()
            where = f"; see {log}" if log is not None else ""
            raise RuntimeError(f"the gateway emulator did not start (exit status {status}, "
                               f"first line {line!r}){where}")
        emulator.url = url
        yield emulator
    finally:
        emulator.stop()


@contextlib.contextmanager
def message_listener(env: dict[str, str], *flags: str, log_path: str | os.PathLike[str] | None = None,
                     ) -> Iterator[Service]:
    """``python -m ali1688spider listen --port 0 FLAGS`` with the environment ``env`` (the app
    secret, MONGO_*, REDIS_*) for the ``with`` block, once it printed its URL (``url``, ending in
    ``/``). Its stderr goes to ``log_path`` or to ours."""
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))}
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if log_path is not None else None
    try:
        process = subprocess.Popen([sys.executable, "-m", "ali1688spider", "listen", "--port", "0", *flags],
                                   env=env, stdout=subprocess.PIPE, stderr=log_fd)
    finally:
        if log_fd is not None:
            os.close(log_fd)
    service = Service("message listener", process, "")
    try:
        line = _first_line(process, EMULATOR_START_TIMEOUT).decode(errors="replace")
        url = next((word.rstrip(",") for word in line.split() if word.startswith("http://")), "")
        if not url:
            status = service.stop()
            raise RuntimeError(f"the listener did not start (exit status {status}, first line {line!r})")
        service.url = url
        yield service
    finally:
        service.stop()


def _first_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The first line the process writes to its stdout pipe, or what came of it when ``timeout``
    seconds passed or the pipe closed: never waits longer."""
    assert process.stdout is not None
    line = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(timeout=left):
                break
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            line += chunk
    return line


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
