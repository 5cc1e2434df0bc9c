"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``):
no driver, no websocket library. Messages are JSON, each ended by a NUL byte, on the browser's
file descriptors 3 (it reads) and 4 (it writes)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe"]


class Browser:
    """One headless Chromium and one page in it (``open``, ``evaluate``, ``call``)."""

    def __init__(self, width: int = 1280, height: int = 900) -> None:
        assert CHROMIUM is not None
        self._profile = tempfile.mkdtemp(prefix="chromium-")
        to_browser, self._send_fd = os.pipe()
        self._read_fd, from_browser = os.pipe()
        # bash puts the pipe ends on the descriptors 3 and 4 that Chromium expects
        self._process = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}', CHROMIUM, *FLAGS,
             f"--user-data-dir={self._profile}", f"--window-size={width},{height}"],
            pass_fds=(to_browser, from_browser), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._ids = itertools.count(1)
        self._buffer = b""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def call(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer (events on the way are dropped)."""
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._send_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            while b"\0" not in self._buffer:
                chunk = os.read(self._read_fd, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed its pipe")
                self._buffer += chunk
            raw, _, self._buffer = self._buffer.partition(b"\0")
            answer = json.loads(raw)
            if answer.get("id") == number:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return dict(answer.get("result", {}))
        raise TimeoutError(method)

    def open(self, url: str) -> None:
        self.call("Page.navigate", session=True, url=url)
        for _ in range(200):
            if self.evaluate("document.readyState") == "complete":
                return
            time.sleep(0.05)
        raise TimeoutError(url)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        os.close(self._send_fd)
        os.close(self._read_fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def fonts_for(browser: Browser, selector: str) -> list[str]:
    """The fonts Chromium drew the first node matching ``selector`` with (family names)."""
    browser.call("DOM.enable", session=True)
    browser.call("CSS.enable", session=True)
    root = browser.call("DOM.getDocument", session=True)["root"]["nodeId"]
    node = browser.call("DOM.querySelector", session=True, nodeId=root, selector=selector)["nodeId"]
    text = browser.call("DOM.describeNode", session=True, nodeId=node, depth=1)["node"]
    target = next((child["nodeId"] for child in text.get("children", []) if child.get("nodeType") == 3), node)
    if target == node:
        browser.call("DOM.requestChildNodes", session=True, nodeId=node)
    fonts = browser.call("CSS.getPlatformFontsForNode", session=True, nodeId=node)["fonts"]
    return [font["familyName"] for font in fonts]


def file_url(path: Path) -> str:
    return path.resolve().as_uri()
