"""Reading the audit trail (the triggers write it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

__all__ = ["AuditEntry", "list_audit"]


class AuditEntry(msgspec.Struct, frozen=True):
    id: int
    at: datetime
    actor_id: uuid.UUID | None
    actor_role: str | None
    action: str
    table_name: str
    row_id: str | None
    old_data: dict[str, Any] | None
    new_data: dict[str, Any] | None


async def list_audit(
    conn: asyncpg.Connection, org_id: uuid.UUID, *, before_id: int | None, limit: int
) -> list[AuditEntry]:
    """The org's audit entries, newest first, `limit` of them older than `before_id`."""
    rows = await conn.fetch(
        """
        SELECT id, at, actor_id, actor_role, action, table_name, row_id, old_data::text, new_data::text
        FROM audit_log WHERE org_id = $1 AND ($2::bigint IS NULL OR id < $2)
        ORDER BY id DESC LIMIT $3
        """,
        org_id, before_id, limit,
    )
    return [
        AuditEntry(r["id"], r["at"], r["actor_id"], r["actor_role"], r["action"], r["table_name"], r["row_id"],
                   msgspec.json.decode(r["old_data"]) if r["old_data"] else None,
                   msgspec.json.decode(r["new_data"]) if r["new_data"] else None)
        for r in rows
    ]
