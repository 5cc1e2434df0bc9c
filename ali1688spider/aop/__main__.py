"""Token housekeeping from the shell: ``python -m ali1688spider.aop COMMAND``.

    auth-url  --redirect-uri URL     print the page where the seller authorises the app
    exchange  --code CODE --redirect-uri URL   trade a one-time code for tokens, save them
    refresh                          get a new access token with the saved refresh token
    postpone                         extend a refresh token that is close to its expiry
    show                             show who the tokens belong to and when they expire

Credentials come from ALI1688_APP_KEY / ALI1688_APP_SECRET, the gateway from
ALI1688_GATEWAY_URL, the token file from ALI1688_TOKEN_FILE (or --token-file), encrypted with
ALI1688_SECRET_KEY when that is set: environment variables, read through the project's settings
registry (``ali1688spider.config``, which imports no Scrapy). A whole token is never printed.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from .. import config
from .errors import TokenError
from .tokens import FileTokenStore, Token, TokenCipher, TokenClient

#: Where these commands keep tokens when ALI1688_TOKEN_FILE is not set (a crawl then keeps them in memory).
DEFAULT_TOKEN_FILE = "~/.config/ali1688spider/token.json"


def _client() -> TokenClient:
    return TokenClient(config.GATEWAY_URL.get(), config.APP_KEY.get(), config.APP_SECRET.get())


def _saved(store: FileTokenStore) -> Token:
    token = store.load()
    if token is None:
        raise TokenError("no_token", f"no token saved in {store.path}: run 'exchange' first", permanent=True)
    return token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ali1688spider.aop", description=__doc__.split("\n")[0])
    parser.add_argument("--token-file", default=config.TOKEN_FILE.get() or DEFAULT_TOKEN_FILE)
    commands = parser.add_subparsers(dest="command", required=True)
    auth = commands.add_parser("auth-url", help="print the authorisation page URL")
    auth.add_argument("--redirect-uri", required=True)
    auth.add_argument("--state", default=None)
    exchange = commands.add_parser("exchange", help="trade an authorisation code for tokens")
    exchange.add_argument("--code", required=True)
    exchange.add_argument("--redirect-uri", required=True)
    commands.add_parser("refresh", help="new access token from the saved refresh token")
    commands.add_parser("postpone", help="extend the saved refresh token")
    commands.add_parser("show", help="show the saved token's owner and expiry")
    args = parser.parse_args(argv)
    try:
        store = FileTokenStore(args.token_file, TokenCipher(config.SECRET_KEY.get() or None))
        if args.command == "auth-url":
            print(_client().authorize_url(args.redirect_uri, args.state or secrets.token_urlsafe(12)))
            return 0
        if args.command == "exchange":
            token = _client().exchange_code(args.code, args.redirect_uri)
        elif args.command == "refresh":
            saved = _saved(store)
            token = _client().refresh(saved.refresh_token or "", previous=saved)
        elif args.command == "postpone":
            token = _client().postpone(_saved(store))
        else:
            print(_saved(store).describe())
            return 0
        store.save(token)
        print(f"saved to {store.path}\n{token.describe()}")
        return 0
    except (TokenError, config.SettingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
