"""Applies the numbered SQL files in `migrations/`, each once, in order, under an advisory lock."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import asyncpg
import msgspec

from coaching.errors import SparringError

__all__ = ["MIGRATIONS_DIR", "Migration", "MigrationError", "load_migrations", "migrate"]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant works; it only has to be the same in every process that migrates this database.
_LOCK_KEY = 0x5350_4152_5249_4E47 & 0x7FFF_FFFF_FFFF_FFFF
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

log = logging.getLogger(__name__)


class MigrationError(SparringError):
    """The migrations on disk and the ones recorded in the database disagree."""


class Migration(msgspec.Struct, frozen=True):
    version: int
    name: str
    sql: str
    checksum: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Reads `NNNN_name.sql` files in version order.

    Raises:
        MigrationError: a file is misnamed or two files share a version.
    """
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name!r} must be named NNNN_lowercase_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"migrations {found[version].name!r} and {path.name!r} share version {version}")
        sql = path.read_text(encoding="utf-8")
        found[version] = Migration(version, path.name, sql, hashlib.sha256(sql.encode()).hexdigest())
    return [found[v] for v in sorted(found)]


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Applies every pending migration; returns the names applied (empty when up to date).

    Each file runs in its own transaction together with its bookkeeping row. A session-level
    advisory lock makes a second process wait, then find nothing left to do.

    Raises:
        MigrationError: an applied file was changed or removed since it ran.
    """
    migrations = load_migrations(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        applied = {r["version"]: r for r in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")}
        on_disk = {m.version for m in migrations}
        for version, row in sorted(applied.items()):
            if version not in on_disk:
                raise MigrationError(
                    f"migration {row['name']!r} was applied to this database but is missing from {directory}"
                )
        done: list[str] = []
        for m in migrations:
            prior = applied.get(m.version)
            if prior is not None:
                if prior["checksum"] != m.checksum:
                    raise MigrationError(
                        f"migration {m.name!r} changed after it was applied; add a new migration instead of editing it"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version, m.name, m.checksum,
                )
            log.info("migration applied", extra={"migration": m.name})
            done.append(m.name)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
