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


_UVICORN = {"log_config": None, "access_log": False, "ws_per_message_deflate": False, "proxy_headers": False,
            "lifespan": "on"}


def worker_count(settings: Settings, requested: int | None) -> int:
    """`--workers`, else WORKERS, else one per core when Redis is the bus (and one without it).

    Raises:
        SettingsError: more than one worker without REDIS_URL: each process's in-process bus and
            limits are its own, so a coach on one worker could not watch a call on another.
    """
    count = requested if requested is not None else settings.workers
    if count < 0:
        raise SettingsError("--workers", f"expected 0 (one per core) or more, got {count}")
    if count == 0:
        count = (os.cpu_count() or 1) if settings.redis_url else 1
    if count > 1 and not settings.redis_url:
        raise SettingsError("REDIS_URL", f"{count} workers need a shared bus: set REDIS_URL (workers share calls,"
                                         " watchers, leases and rate limits through Redis), or serve one worker")
    return count


def _serve(settings: Settings, workers: int) -> None:
    import uvicorn

    if workers > 1:
        _serve_workers(settings, workers)
        return
    from gateway.app import create_app, serve_app
    from gateway.heap import freeze_after_startup
    from gateway.logs import configure_logging
    from gateway.sentry import init_sentry

    configure_logging(settings.log_level)
    init_sentry(settings)
    app = create_app(settings)
    freeze_after_startup(app)
    url = f"http://{settings.host}:{settings.port}"
    app.on_startup.append(lambda: print(f"Sparring is ready at {url}  (health: {url}/api/health)", flush=True))
    uvicorn.run(serve_app(app), host=settings.host, port=settings.port, **_UVICORN)  # type: ignore[arg-type]


def _serve_workers(settings: Settings, workers: int) -> None:
    """N processes on one port (uvicorn's supervisor, which also replaces a worker that dies). The
    database is resolved and migrated once here, so the workers neither race to start an embedded
    server nor to migrate."""
    import uvicorn

    from gateway.logs import configure_logging
    from gateway.resources import prepare_database

    configure_logging(settings.log_level)
    dsn, server = asyncio.run(prepare_database(settings))
    os.environ["DATABASE_URL"] = dsn
    url = f"http://{settings.host}:{settings.port}"
    print(f"Sparring: {workers} workers on {url}  (health: {url}/api/health)", flush=True)
    try:
        uvicorn.run("gateway.asgi:create", factory=True, workers=workers, host=settings.host, port=settings.port,
                    **_UVICORN)  # type: ignore[arg-type]
    finally:
        if server is not None:
            server.cleanup()


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
    serve = sub.add_parser("serve", help="apply migrations and serve HTTP/WebSocket on HOST:PORT")
    serve.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes on the one port (default: WORKERS, else one per core with REDIS_URL)")
    sub.add_parser("migrate", help="apply pending database migrations and exit")
    args = parser.parse_args(argv)
    settings = _settings_or_exit()
    try:
        if args.command == "serve":
            try:
                workers = worker_count(settings, args.workers)
            except SettingsError as exc:
                print(f"sparring: configuration error: {exc}", file=sys.stderr)
                raise SystemExit(2) from None
            _serve(settings, workers)
        else:
            _migrate(settings)
    except SparringError as exc:
        print(f"sparring: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
