"""The durable job queue (`jobs`): background work such as scoring a call, queued once."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

__all__ = ["enqueue_job"]


async def enqueue_job(conn: asyncpg.Connection, org_id: uuid.UUID, kind: str, payload: dict[str, Any], *,
                      dedupe_key: str | None = None) -> None:
    """Queues a job; with `dedupe_key`, at most one job of that kind and key ever exists."""
    await conn.execute(
        "INSERT INTO jobs (org_id, kind, payload, dedupe_key) VALUES ($1, $2, $3::jsonb, $4)"
        " ON CONFLICT (kind, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING",
        org_id, kind, msgspec.json.encode(payload).decode(), dedupe_key)
