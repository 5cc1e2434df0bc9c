"""Shared fixtures: real services started as subprocesses on free loopback ports.

- ``emulator`` (session): the shared gateway emulator, demo credentials and ``--seed SEED``: a
  :class:`~ali1688spider.demo.services.GatewayEmulator` (``.url``, ``.base``, ``.stats()``,
  ``.reset()``, ``.script(faults)``, ``.access_token()``…). Every test that uses it starts with
  zeroed counters and no pending scripted fault (``_fresh_emulator``), so what it counts is its own.
  What ``reset`` keeps must stay as found: a test that moves the catalogue epoch, revokes tokens
  or needs other flags takes its own emulator from ``emulator_factory``.
- ``emulator_factory`` (per test): start emulators with their own flags (``--seed SEED`` unless
  given); their stderr goes to ``tmp_path``; they are stopped when the test ends.
- ``mongo`` (session) and ``database`` (per test): a Mongo-protocol server and a fresh database.
- ``redis_url`` (per test): a ``redis-server`` of the test's own.

The ``e2e`` marker (``make test-fast`` runs ``-m "not e2e"``): a test that uses a fixture of
``SERVICE_FIXTURES``, even through another fixture, gets it here; a test that starts a server or
a subprocess itself (``gateway_emulator(...)``, ``scrapy crawl``…) carries it by hand
(``@pytest.mark.e2e``, or ``pytestmark`` for a whole module). A new fixture that starts a
service goes in ``SERVICE_FIXTURES``.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from ali1688spider.demo.services import GatewayEmulator, gateway_emulator, mongo_server, redis_server

from .crawling import SEED

#: Fixtures that start (or stand for) a real service: any test using one is end-to-end. Module
#: fixtures of the same names (test_tokens', test_scrapyd's ``emulator``, test_report's ``mongo``)
#: count too.
SERVICE_FIXTURES = frozenset({
    "emulator", "emulator_factory", "mongo", "database",  # here
    "redis_url",  # here, and test_scrapyd's own
    "scrapyd", "deployed",  # test_scrapyd
    "runs",  # test_secrets
    "webhook",  # test_monitors: an HTTP server in a thread
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``e2e`` every test that uses a service fixture."""
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


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


# -- the gateway emulator ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayEmulator]:
    """The shared emulator (demo credentials, ``--seed SEED``); see the module's docstring."""
    log_path = tmp_path_factory.mktemp("emulator") / "emulator.log"
    with gateway_emulator("--seed", str(SEED), log_path=log_path) as started:
        yield started


@pytest.fixture(autouse=True)
def _fresh_emulator(request: pytest.FixtureRequest) -> None:
    """Zero the counters and the fault script of the ``emulator`` a test uses, before it runs
    (after the wider-scoped fixtures, such as a module's access token, were set up)."""
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").reset()


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., GatewayEmulator]]:
    """``emulator_factory("--qps", "5")`` or ``emulator_factory(token_ttl=2, deny_api=["…"])``."""
    numbers = itertools.count()
    with contextlib.ExitStack() as running:
        def start(*flags: str, **options: Any) -> GatewayEmulator:
            all_flags = sandbox_flags(*flags, **options)
            if not any(flag == "--seed" or flag.startswith("--seed=") for flag in all_flags):
                all_flags += ["--seed", str(SEED)]
            log_path = tmp_path / f"emulator-{next(numbers)}.log"
            return running.enter_context(gateway_emulator(*all_flags, log_path=log_path))

        yield start


# -- Redis ---------------------------------------------------------------------------------------

@pytest.fixture
def redis_url() -> Iterator[str]:
    """A ``redis-server`` of the test's own on a free port (nothing kept on disk): its URL."""
    with redis_server() as server:
        yield server.url


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
