"""Token flows against the emulator: refresh, invalid_grant, 5xx on the token endpoint, expiry,
authorisation code, postponeToken, the stores, the single-flight manager and the CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_twisted
from scrapy.utils.defer import deferred_from_coro

from ali1688spider.aop import (
    PRODUCT_GET,
    FileTokenStore,
    MemoryTokenStore,
    Outcome,
    Token,
    TokenClient,
    TokenError,
    classify_response,
    encode_params,
    sign,
)
from ali1688spider.demo.services import GatewayEmulator, gateway_emulator
from ali1688spider.gateway.tokens import TokenManager
from ali1688spider.sandbox.config import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_REFRESH_TOKEN

from .crawling import CATALOGUE, ROOT, SEED


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayEmulator]:
    """This module's own emulator, in place of the shared one: access tokens live 2 seconds."""
    log_path = tmp_path_factory.mktemp("emulator") / "emulator.log"
    with gateway_emulator("--seed", str(SEED), "--token-ttl", "2", log_path=log_path) as started:
        yield started


@pytest.fixture
def client(emulator):
    return TokenClient(emulator.url, DEMO_APP_KEY, DEMO_APP_SECRET, backoff=0.01)


def call_product_get(gateway: str, access_token: str) -> tuple[int, bytes]:
    params = {**PRODUCT_GET.params_for(str(CATALOGUE.offer_ids(1)[0])), "access_token": access_token,
              "_aop_timestamp": int(time.time() * 1000)}
    encoded = encode_params(params)
    encoded["_aop_signature"] = sign(PRODUCT_GET.url_path(DEMO_APP_KEY), encoded, DEMO_APP_SECRET)
    request = urllib.request.Request(PRODUCT_GET.url(gateway, DEMO_APP_KEY),
                                     data=urllib.parse.urlencode(encoded).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_refresh_ok_keeps_the_refresh_token(client):
    before = time.time()
    token = client.refresh(DEMO_REFRESH_TOKEN)
    assert token.access_token and token.refresh_token == DEMO_REFRESH_TOKEN
    assert before + 1 <= token.expires_at <= time.time() + 2.5
    assert token.member_id and token.ali_id
    assert token.access_token not in repr(token) and DEMO_REFRESH_TOKEN not in repr(token)


def test_invalid_grant_is_permanent(client):
    with pytest.raises(TokenError) as caught:
        client.refresh("not-a-refresh-token")
    assert caught.value.permanent and caught.value.code == "invalid_grant"


def test_wrong_secret_is_permanent(emulator):
    with pytest.raises(TokenError) as caught:
        TokenClient(emulator.url, DEMO_APP_KEY, "wrong", backoff=0.01).refresh(DEMO_REFRESH_TOKEN)
    assert caught.value.permanent and caught.value.code == "invalid_client"


def test_a_5xx_on_the_token_endpoint_is_retried(client, emulator):
    emulator.script([{"kind": "5xx", "api": "getToken", "times": 2}])
    token = client.refresh(DEMO_REFRESH_TOKEN)
    assert token.access_token
    assert emulator.stats()["by_outcome"]["http_5xx"] == 2


def test_a_token_endpoint_that_keeps_failing_is_a_transient_error(client, emulator):
    emulator.script([{"kind": "5xx", "api": "getToken", "times": 3}])
    with pytest.raises(TokenError) as caught:
        client.refresh(DEMO_REFRESH_TOKEN)
    assert not caught.value.permanent


def test_a_token_expires(client, emulator):
    token = client.refresh(DEMO_REFRESH_TOKEN)
    status, body = call_product_get(emulator.url, token.access_token)
    assert classify_response(status, body, PRODUCT_GET).outcome is Outcome.OK
    time.sleep(max(0.0, token.expires_at - time.time()) + 0.3)
    status, body = call_product_get(emulator.url, token.access_token)
    assert status == 401
    assert classify_response(status, body, PRODUCT_GET).outcome is Outcome.TOKEN


def test_authorization_code_flow_and_postpone(client, emulator):
    redirect = "http://127.0.0.1:9/callback"
    authorize = client.authorize_url(redirect, "xyz")
    assert authorize.startswith("https://auth.1688.com/oauth/authorize?client_id=1000000&site=1688")
    query = urllib.parse.urlencode({"client_id": DEMO_APP_KEY, "redirect_uri": redirect, "state": "xyz"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirected:
        opener.open(f"{emulator.base}/_sandbox/authorize?{query}", timeout=5)
    location = redirected.value.headers["Location"]
    redirected.value.close()
    code = parse_qs(urlsplit(location).query)["code"][0]
    token = client.exchange_code(code, redirect)
    assert token.refresh_token and token.refresh_token_expires_at
    with pytest.raises(TokenError) as reused:
        client.exchange_code(code, redirect)  # single use
    assert reused.value.permanent
    longer = client.postpone(token)
    assert longer.refresh_token and longer.refresh_token_expires_at >= token.refresh_token_expires_at
    assert client.refresh(longer.refresh_token).access_token


def test_file_store_is_private_and_round_trips(tmp_path):
    store = FileTokenStore(tmp_path / "sub" / "token.json")
    assert store.load() is None
    token = Token("access-123456789", 1_900_000_000.0, refresh_token="refresh-123456789", member_id="m")
    store.save(token)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert store.load() == token
    store.path.write_text("{broken", encoding="utf-8")
    with pytest.raises(TokenError):
        store.load()


@pytest_twisted.ensureDeferred
async def test_concurrent_callers_share_one_refresh(client, emulator):
    import asyncio

    manager = TokenManager(client, MemoryTokenStore(), refresh_token=DEMO_REFRESH_TOKEN)

    async def many() -> list[Token]:
        return list(await asyncio.gather(*(manager.get() for _ in range(50))))

    tokens = await deferred_from_coro(many())
    assert len({token.access_token for token in tokens}) == 1
    assert emulator.stats()["token_grants"] == 1
    # an early refresh: 2-second tokens are refreshed in their last fifth, not on every call
    assert manager.margin() == pytest.approx(0.4, abs=0.1)
    assert not manager.needs_refresh()


@pytest.mark.e2e  # runs the token CLI
def test_cli_shows_expiry_without_the_token(client, tmp_path):
    path = tmp_path / "token.json"
    token = client.refresh(DEMO_REFRESH_TOKEN)
    FileTokenStore(path).save(token)
    done = subprocess.run([sys.executable, "-m", "ali1688spider.aop", "--token-file", str(path), "show"],
                          capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "access token" in done.stdout and "expires at" in done.stdout
    assert token.access_token not in done.stdout and DEMO_REFRESH_TOKEN not in done.stdout
    missing = subprocess.run([sys.executable, "-m", "ali1688spider.aop", "--token-file", str(tmp_path / "no"),
                              "show"], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert missing.returncode == 2 and "run 'exchange' first" in missing.stderr
    json.loads(path.read_text())  # still a readable store


@pytest.mark.e2e  # starts Python subprocesses
def test_the_token_file_lock_holds_across_processes(tmp_path):
    """Crawls in several processes share a token file: while one refreshes under the lock, another
    process cannot take it (issue 12, small holes)."""
    store = FileTokenStore(tmp_path / "token.json")
    probe = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
             "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)")
    command = [sys.executable, "-c", probe, str(tmp_path / "token.json.lock")]
    with store.lock():
        held = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert held.returncode != 0 and "BlockingIOError" in held.stderr
    assert subprocess.run(command, capture_output=True, text=True, timeout=30).returncode == 0
    store.save(Token("access", 2_000_000_000.0, refresh_token="refresh"))
    assert store.load() == Token("access", 2_000_000_000.0, refresh_token="refresh")
