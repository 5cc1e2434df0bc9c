"""The token endpoint (PROTOCOL.md §3): ``system.oauth2:getToken`` and ``postponeToken``.

No signature is needed. The client is checked first (``client_id`` must be the app key of the
URL, ``client_secret`` the app secret: otherwise 401 ``invalid_client``), then the grant.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from .config import DEMO_ALI_ID, DEMO_MEMBER_ID, DEMO_RESOURCE_OWNER, SandboxConfig
from .replies import Reply, oauth_error, unauthorized
from .tokens import Grant, TokenRegistry
from .views import dumps

GET_TOKEN = "getToken"
POSTPONE_TOKEN = "postponeToken"
TOKEN_NAMESPACE = "system.oauth2"


def _owner() -> dict[str, str]:
    return {"aliId": DEMO_ALI_ID, "resource_owner": DEMO_RESOURCE_OWNER, "memberId": DEMO_MEMBER_ID}


def _grant_reply(grant: Grant) -> Reply:
    body = _owner()
    if grant.access_token is not None and grant.expires_in is not None:
        body["expires_in"] = grant.expires_in
        body["access_token"] = grant.access_token
    if grant.refresh_token is not None:
        body["refresh_token"] = grant.refresh_token
    body["refresh_token_timeout"] = grant.refresh_token_timeout
    return Reply(200, dumps(body), "ok")


def _client_problem(params: Mapping[str, str], config: SandboxConfig) -> Reply | None:
    client_id, secret = params.get("client_id"), params.get("client_secret")
    if not client_id or not secret:
        return oauth_error(400, "invalid_request", "client_id and client_secret are required")
    if client_id != config.app_key or not hmac.compare_digest(secret.encode(), config.app_secret.encode()):
        return oauth_error(401, "invalid_client", "client authentication failed")
    return None


def _missing(params: Mapping[str, str], *names: str) -> Reply | None:
    absent = [name for name in names if not params.get(name)]
    if absent:
        return oauth_error(400, "invalid_request", f"missing parameter: {', '.join(absent)}")
    return None


def get_token(params: Mapping[str, str], config: SandboxConfig, tokens: TokenRegistry) -> Reply:
    """``getToken`` with ``grant_type`` ``refresh_token`` or ``authorization_code``."""
    problem = _missing(params, "grant_type") or _client_problem(params, config)
    if problem is not None:
        return problem
    grant_type = params["grant_type"]
    if grant_type == "refresh_token":
        problem = _missing(params, "refresh_token")
        if problem is not None:
            return problem
        grant = tokens.grant_refresh(params["refresh_token"])
        if grant is None:
            return oauth_error(400, "invalid_grant", "refresh token is invalid or expired")
        return _grant_reply(grant)
    if grant_type == "authorization_code":
        problem = _missing(params, "code")
        if problem is not None:
            return problem
        grant = tokens.grant_code(
            params["code"], params.get("redirect_uri"),
            with_refresh=params.get("need_refresh_token", "true").lower() != "false",
        )
        if grant is None:
            return oauth_error(400, "invalid_grant", "authorization code is invalid, expired or already used")
        return _grant_reply(grant)
    return oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")


def postpone_token(
    params: Mapping[str, str], config: SandboxConfig, tokens: TokenRegistry, request_id: str,
) -> Reply:
    """``postponeToken``: a new refresh token (the old one stays valid). Always extends, even when
    the refresh token is further than 30 days from its expiry."""
    problem = _client_problem(params, config) or _missing(params, "refresh_token", "access_token")
    if problem is not None:
        return problem
    if tokens.access_problem(params["access_token"]) is not None:
        return unauthorized(request_id)
    grant = tokens.postpone(params["refresh_token"])
    if grant is None:
        return oauth_error(400, "invalid_grant", "refresh token is invalid or expired")
    return _grant_reply(grant)
