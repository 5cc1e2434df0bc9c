"""Helpers for deployment tests: a real scrapyd in a folder of its own, and ``scrapyd-deploy``.

:func:`start_scrapyd` runs ``python -m scrapyd`` with its own ``scrapyd.conf`` (loopback, a free
port, eggs/logs/dbs in the folder) and the environment its jobs need; :func:`project_copy` lays
out what a checkout hands to ``scrapyd-deploy`` (the package, setup.py, scrapy.cfg — no
requirements.txt) with the ``[deploy:local]`` target pointed at that scrapyd.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ali1688spider.demo.services import free_port, stop_process

from .crawling import ROOT

PROJECT = "ali1688spider"
START_TIMEOUT = 20.0

SCRAPYD_CONF = """\
[scrapyd]
bind_address = 127.0.0.1
http_port = {port}
eggs_dir = {home}/eggs
logs_dir = {home}/logs
dbs_dir = {home}/dbs
items_dir =
jobs_to_keep = 20
max_proc = 4
# the default (5 s) would make every test wait that long for its job to start
poll_interval = 0.2
"""


def clean_environment(extra: dict[str, str], home: Path) -> dict[str, str]:
    """This environment less our settings and PYTHONPATH (jobs must import the egg, not the
    checkout), with HOME in ``home`` (no ``~/.scrapyd.conf``, ``~/.scrapy.cfg`` or token file
    of the user), plus ``extra``."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ALI1688_", "MONGO_", "REDIS_", "SCRAPY_", "XDG_CONFIG_"))
           and key != "PYTHONPATH"}
    env["HOME"] = str(home)
    env.update(extra)
    return env


class ScrapydProcess:
    """A running scrapyd: ``url`` (``http://127.0.0.1:PORT``, no trailing slash), ``home`` (its
    folder: ``logs/``, ``eggs/``, ``dbs/``, ``scrapyd.log``), small JSON API helpers."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, home: Path) -> None:
        self.process = process
        self.url = url
        self.home = home
        self.log_path = home / "scrapyd.log"  # scrapyd's own log (stdout and stderr)

    def __repr__(self) -> str:
        return f"<ScrapydProcess {self.url} pid={self.process.pid}>"

    # -- the JSON API ------------------------------------------------------------------------
    # scrapyd answers most errors with HTTP 200 and {"status": "error"}: check the status.

    def get(self, endpoint: str, **params: str) -> dict[str, Any]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/{endpoint}{query}", timeout=30) as reply:
            return _ok(endpoint, json.loads(reply.read()))

    def post(self, endpoint: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
        data = urllib.parse.urlencode(fields).encode()
        with urllib.request.urlopen(f"{self.url}/{endpoint}", data=data, timeout=30) as reply:
            return _ok(endpoint, json.loads(reply.read()))

    def schedule(self, spider: str, *, settings: dict[str, str] | None = None, project: str = PROJECT,
                 **args: str) -> str:
        """``POST schedule.json``, as ``curl -d project=… -d spider=… -d setting=K=V -d arg=…``."""
        fields = [("project", project), ("spider", spider)]
        fields += [("setting", f"{key}={value}") for key, value in (settings or {}).items()]
        fields += list(args.items())
        return str(self.post("schedule.json", fields)["jobid"])

    def wait_for_job(self, job: str, timeout: float = 120.0, project: str = PROJECT) -> dict[str, Any]:
        """Poll ``listjobs.json`` until ``job`` is finished; its ``finished`` entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.get("listjobs.json", project=project)["finished"]:
                if entry["id"] == job:
                    return dict(entry)
            if self.process.poll() is not None:
                raise RuntimeError(f"scrapyd exited with status {self.process.returncode}; see {self.log_path}")
            time.sleep(0.25)
        raise TimeoutError(f"job {job} not finished after {timeout:.0f} s; see {self.log_path}:\n{self.tail()}")

    def job_log(self, job: str, spider: str, project: str = PROJECT) -> str:
        return (self.home / "logs" / project / spider / f"{job}.log").read_text(encoding="utf-8")

    def job_exit(self, job: str, timeout: float = 5.0) -> str:
        """How scrapyd saw the job's process end: ``"finished"`` (exit status 0) or ``"died:
        exitstatus=N"``, from scrapyd's own log (listjobs.json does not say)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
                if f"job={job!r}" not in line:
                    continue
                if "Process finished:" in line:
                    return "finished"
                if "Process died:" in line:
                    return "died: " + line.split("Process died:", 1)[1].split()[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"scrapyd logged no end of job {job}:\n{self.tail()}")
            time.sleep(0.1)

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # -- life cycle --------------------------------------------------------------------------

    def stop(self) -> int:
        """Stop scrapyd, and any job of it still running (scrapyd leaves them orphaned)."""
        running: list[int] = []
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError, KeyError):
                running = [int(job["pid"]) for job in self.get("listjobs.json")["running"] if job.get("pid")]
        stop_process(self.process)
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return int(self.process.returncode)


def _ok(endpoint: str, reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("status") != "ok":
        raise RuntimeError(f"scrapyd {endpoint}: {reply.get('message', reply)}")
    return reply


def start_scrapyd(home: Path, env: dict[str, str], attempts: int = 3) -> ScrapydProcess:
    """``python -m scrapyd`` in ``home`` on a free loopback port, jobs getting ``env`` (added to
    :func:`clean_environment`); returns once ``daemonstatus.json`` answers."""
    home.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        port = free_port()
        (home / "scrapyd.conf").write_text(SCRAPYD_CONF.format(port=port, home=home), encoding="utf-8")
        with open(home / "scrapyd.log", "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "scrapyd"], cwd=home,
                                       env=clean_environment(env, home), stdout=log, stderr=subprocess.STDOUT)
        scrapyd = ScrapydProcess(process, f"http://127.0.0.1:{port}", home)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                scrapyd.get("daemonstatus.json")
                return scrapyd
            time.sleep(0.1)
        scrapyd.stop()
        if attempt + 1 == attempts:  # the port was taken in between, or scrapyd cannot start
            raise RuntimeError(f"scrapyd did not start; see {scrapyd.log_path}:\n{scrapyd.tail()}")
    raise AssertionError("unreachable")


def project_copy(dest: Path, scrapyd_url: str, target: str = "local") -> Path:
    """What a clean checkout gives ``scrapyd-deploy`` — the package, setup.py and scrapy.cfg, no
    requirements.txt — in ``dest``, with the ``[deploy:TARGET]`` url set to ``scrapyd_url``."""
    shutil.copytree(ROOT / PROJECT, dest / PROJECT,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    shutil.copy2(ROOT / "setup.py", dest / "setup.py")
    config = configparser.ConfigParser()
    config.read(ROOT / "scrapy.cfg", encoding="utf-8")
    config[f"deploy:{target}"]["url"] = scrapyd_url
    with open(dest / "scrapy.cfg", "w", encoding="utf-8") as handle:
        config.write(handle)
    return dest


def scrapyd_deploy(project_dir: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``scrapyd-deploy ARGS`` in ``project_dir`` (the script beside this Python, as a user runs it)."""
    script = Path(sys.executable).parent / "scrapyd-deploy"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "scrapyd_client.deploy"]
    return subprocess.run([*command, *args], cwd=project_dir, env=clean_environment({}, home),
                          capture_output=True, text=True, timeout=120)
