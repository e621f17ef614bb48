"""The `sparring` command: `sparring serve` and `sparring migrate`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from coaching.errors import SparringError
from gateway.settings import Settings, SettingsError, load_settings

__all__ = ["main"]


def _settings_or_exit() -> Settings:
    try:
        return load_settings(os.environ)
    except SettingsError as exc:
        print(f"sparring: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _serve(settings: Settings) -> None:
    import uvicorn

    from gateway.app import create_app, serve_app
    from gateway.logs import configure_logging
    from gateway.sentry import init_sentry

    configure_logging(settings.log_level)
    init_sentry(settings)
    app = create_app(settings)
    url = f"http://{settings.host}:{settings.port}"
    app.on_startup.append(lambda: print(f"Sparring is ready at {url}  (health: {url}/api/health)", flush=True))
    uvicorn.run(
        serve_app(app), host=settings.host, port=settings.port, log_config=None, access_log=False,
        ws_per_message_deflate=False, proxy_headers=False, lifespan="on",
    )


def _migrate(settings: Settings) -> None:
    from gateway.logs import configure_logging
    from gateway.resources import prepare_database

    configure_logging(settings.log_level)
    _, server = asyncio.run(prepare_database(settings))
    if server is not None:
        server.cleanup()
    print("sparring: database is up to date")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sparring", description="Sparring voice practice gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="apply migrations and serve HTTP/WebSocket on HOST:PORT")
    sub.add_parser("migrate", help="apply pending database migrations and exit")
    args = parser.parse_args(argv)
    settings = _settings_or_exit()
    try:
        _serve(settings) if args.command == "serve" else _migrate(settings)
    except SparringError as exc:
        print(f"sparring: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
