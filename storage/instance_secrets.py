"""Instance-wide secrets kept in the database, shared by every gateway instance."""

from __future__ import annotations

import secrets

import asyncpg

__all__ = ["get_or_create_secret"]


async def get_or_create_secret(conn: asyncpg.Connection, name: str, *, nbytes: int = 48) -> str:
    """Returns the secret `name`, generating it on first use. Concurrent first calls from several
    instances agree on one value (the first insert wins). Needs DATABASE_URL's own user: the app
    role has no access to `app_secrets`."""
    candidate = secrets.token_urlsafe(nbytes)
    await conn.execute(
        "INSERT INTO app_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", name, candidate
    )
    value: str = await conn.fetchval("SELECT value FROM app_secrets WHERE name = $1", name)
    return value
