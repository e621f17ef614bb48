"""The app as each worker process of `sparring serve --workers N` builds it.

uvicorn's supervisor binds the port once and starts the workers (spawned, so each imports this
module afresh); each calls `create()`, reading the same environment the parent checked. The parent
has already started the embedded Postgres (when DATABASE_URL is unset) and applied the migrations,
and passes the database to the workers in DATABASE_URL.
"""

from __future__ import annotations

import os

import msgspec
from litestar.types import ASGIApp

__all__ = ["create"]


def create() -> ASGIApp:
    from gateway.app import create_app, serve_app
    from gateway.heap import freeze_after_startup
    from gateway.logs import configure_logging
    from gateway.sentry import init_sentry
    from gateway.settings import load_settings

    settings = load_settings(os.environ)
    if settings.instance_id:  # one name for N workers: each gets its own (leases and presence are per instance)
        settings = msgspec.structs.replace(settings, instance_id=f"{settings.instance_id}-{os.getpid()}")
    configure_logging(settings.log_level)
    init_sentry(settings)
    app = create_app(settings)
    freeze_after_startup(app)
    url = f"http://{settings.host}:{settings.port}"
    app.on_startup.append(lambda: print(f"Sparring worker {os.getpid()} is ready at {url}", flush=True))
    return serve_app(app)
