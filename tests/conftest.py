"""Shared fixtures: one Postgres per run, a fresh database per test from a migrated template."""

from __future__ import annotations

import fcntl
import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from gateway.settings import Settings, load_settings
from storage.database import create_pool
from storage.migrate import migrate

REPO = Path(__file__).resolve().parent.parent
TEST_JWT_SECRET = "test-jwt-secret-" + "x" * 32


def with_database(url: str, name: str) -> str:
    """The same server URL (TCP or Unix socket) pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def pg_server_url():
    """DATABASE_URL when the environment gives one (it must have pgvector), else the embedded server."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from storage.embedded import start_embedded_postgres

    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run:  # pytest -n N: the workers of one run share one server (the last to leave stops it)
        data = Path(tempfile.gettempdir()) / f"sparring-test-pg-{run[:12]}" / "data"
    else:
        data = Path(tempfile.mkdtemp(prefix="sparring-test-pg-")) / "data"
    url, server = start_embedded_postgres(data)
    yield url
    server.cleanup()


@pytest.fixture(scope="session")
async def template_db(pg_server_url):
    name = f"sparring_tmpl_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(with_database(pg_server_url, name))
    # The migrations create cluster-wide roles, and the advisory lock they take is per database:
    # parallel workers migrating their templates on the one server take turns here instead.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "serial")
    with open(Path(tempfile.gettempdir()) / f"sparring-test-migrate-{run[:12]}.lock", "w") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        try:
            await migrate(conn)
        finally:
            await conn.close()
    yield name
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def _fresh_database(pg_server_url: str, template: str | None):
    name = f"sparring_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        await admin.close()
    return name


async def _drop_database(pg_server_url: str, name: str) -> None:
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(pg_server_url, template_db):
    """A fresh, migrated database for one test, as DATABASE_URL's (superuser) URL."""
    name = await _fresh_database(pg_server_url, template_db)
    yield with_database(pg_server_url, name)
    await _drop_database(pg_server_url, name)


@pytest.fixture
async def empty_database_url(pg_server_url):
    """A fresh database with no migrations applied."""
    name = await _fresh_database(pg_server_url, None)
    yield with_database(pg_server_url, name)
    await _drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
async def module_database_url(pg_server_url, template_db):
    """A fresh, migrated database shared by one module's server."""
    name = await _fresh_database(pg_server_url, template_db)
    yield with_database(pg_server_url, name)
    await _drop_database(pg_server_url, name)


@pytest.fixture
async def db(database_url):
    """A superuser connection to the test's database, for arranging rows and checking them."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def app_pool(database_url):
    """The app's own pool (as sparring_app) on the test's database."""
    pool = await create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


def make_settings(database_url: str, **env: str) -> Settings:
    # Every test signs its users up from 127.0.0.1: the per-address sign-up limit is raised here
    # (tests of the limit itself set it back).
    # The web app's calls stay on the live socket unless a test turns WebRTC on (tests/gateway/webrtc,
    # tests/web/test_webrtc_browser.py, with WEBRTC_HOST_ADDRESSES=127.0.0.1: ICE on loopback only).
    base = {"DATABASE_URL": database_url, "JWT_SECRET": TEST_JWT_SECRET, "LOG_LEVEL": "WARNING",
            "RATE_LIMIT_SIGNUP": "100000/minute", "WEBRTC_CALLS": "false"}
    return load_settings({**base, **{k.upper(): v for k, v in env.items()}})
