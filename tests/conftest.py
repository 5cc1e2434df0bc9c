"""Shared fixtures: real services started as subprocesses on free loopback ports.

- ``sandbox`` (session): the gateway emulator with the demo credentials and ``--seed 1688``.
- ``sandbox_factory`` (per test): start extra emulators with their own flags; they are stopped
  when the test ends.

Both give a :class:`SandboxProcess`: ``.url`` (the ``…/openapi`` base), ``.base``
(``http://host:port``), ``.stats()``, ``.reset()``, ``.script(faults)``, ``.revoke()``,
``.access_token()``, ``.stop()``.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from ali1688spider.demo.services import mongo_server, stop_process
from ali1688spider.sandbox.config import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_REFRESH_TOKEN

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_SEED = 1688
START_TIMEOUT = 20.0


class SandboxProcess:
    """A running ``python -m ali1688spider.sandbox`` and small urllib helpers for its controls."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path, flags: list[str]) -> None:
        self.process = process
        self.url = url
        self.base = url.rsplit("/openapi", 1)[0]
        self.flags = flags
        self.app_key = _flag_value(flags, "--app-key", DEMO_APP_KEY)
        self.app_secret = _flag_value(flags, "--app-secret", DEMO_APP_SECRET)
        self.refresh_token = _flag_value(flags, "--refresh-token", DEMO_REFRESH_TOKEN)
        self.log_path = log_path  # the emulator's stderr

    def __repr__(self) -> str:
        return f"<SandboxProcess {self.url} pid={self.process.pid}>"

    # -- controls ----------------------------------------------------------------------------

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=10) as reply:
            return json.loads(reply.read())

    def post(self, path: str, data: Any = None) -> Any:
        request = urllib.request.Request(
            self.base + path, data=json.dumps(data if data is not None else {}).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())

    def stats(self) -> dict[str, Any]:
        """``GET /_sandbox/stats``."""
        return dict(self.get("/_sandbox/stats"))

    def reset(self) -> None:
        """Zero stats, quota counters, usage and the fault script."""
        self.post("/_sandbox/reset")

    def script(self, faults: list[dict[str, Any]]) -> int:
        """Queue scripted faults, e.g. ``[{"kind": "isp", "times": 2}]``; returns how many are pending."""
        return int(self.post("/_sandbox/faults", {"script": faults})["pending"])

    def revoke(self, *, refresh_tokens: bool = True, access_tokens: bool = False) -> None:
        self.post("/_sandbox/revoke", {"refresh_tokens": refresh_tokens, "access_tokens": access_tokens})

    def access_token(self) -> str:
        """A fresh access token from a ``refresh_token`` grant with this emulator's credentials."""
        form = urllib.parse.urlencode({
            "grant_type": "refresh_token", "client_id": self.app_key, "client_secret": self.app_secret,
            "refresh_token": self.refresh_token,
        }).encode()
        url = f"{self.url}/http/1/system.oauth2/getToken/{self.app_key}"
        with urllib.request.urlopen(urllib.request.Request(url, data=form, method="POST"), timeout=10) as reply:
            return str(json.loads(reply.read())["access_token"])

    # -- life cycle --------------------------------------------------------------------------

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the emulator (SIGTERM by default) and return its exit status."""
        return stop_process(self.process, sig)


def _flag_value(flags: list[str], name: str, default: str) -> str:
    for index, flag in enumerate(flags):
        if flag == name and index + 1 < len(flags):
            return flags[index + 1]
        if flag.startswith(name + "="):
            return flag.split("=", 1)[1]
    return default


def sandbox_flags(*flags: str, **options: Any) -> list[str]:
    """``token_ttl=2, deny_api=["x", "y"], access_log=True`` → ``--token-ttl 2 --deny-api x
    --deny-api y --access-log``, after the raw ``flags``."""
    result = list(flags)
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            result.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):
            for item in value:
                result += [flag, str(item)]
        else:
            result += [flag, str(value)]
    return result


def start_sandbox(flags: list[str], log_path: Path) -> SandboxProcess:
    """Start the emulator on a free port and wait for the first stdout line (its URL)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "ali1688spider.sandbox", "--port", "0", *flags]
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log_fd)
    finally:
        os.close(log_fd)  # the child keeps its own copy
    assert process.stdout is not None
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            line += chunk
    url = next((word for word in line.decode().split() if word.startswith("http://")), "")
    if not url.endswith("/openapi"):
        sandbox = SandboxProcess(process, "", log_path, flags)
        sandbox.stop()
        raise RuntimeError(f"the emulator did not start ({line!r}); see {log_path}")
    return SandboxProcess(process, url, log_path, flags)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """The shared emulator (demo credentials, seed 1688). Call ``.reset()`` before counting."""
    log_path = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    process = start_sandbox(["--seed", str(SANDBOX_SEED)], log_path)
    yield process
    process.stop()


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Callable[..., SandboxProcess]]:
    """``sandbox_factory("--qps", "5")`` or ``sandbox_factory(token_ttl=2, deny_api=["…"])``."""
    started: list[SandboxProcess] = []

    def start(*flags: str, **options: Any) -> SandboxProcess:
        all_flags = sandbox_flags(*flags, **options)
        if "--seed" not in all_flags:
            all_flags += ["--seed", str(SANDBOX_SEED)]
        process = start_sandbox(all_flags, tmp_path / f"sandbox-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


# -- MongoDB (a Mongo-protocol server, secantusdb, in its own process) ----------------------------

@pytest.fixture(scope="session")
def mongo() -> Iterator[tuple[str, MongoClient[dict[str, Any]]]]:
    """One server for the session: ``(uri, client)``; each test takes its own database."""
    with mongo_server() as server:
        client: MongoClient[dict[str, Any]] = MongoClient(server.url, tz_aware=True)
        yield server.url, client
        client.close()


@pytest.fixture
def database(mongo: tuple[str, MongoClient[dict[str, Any]]]) -> Iterator[tuple[str, str, Any]]:
    """``(uri, name, db)`` of a fresh database, dropped after the test."""
    uri, client = mongo
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield uri, name, client[name]
    client.drop_database(name)
