"""Organizations' own personas (the built-ins live in files, read-only)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

__all__ = ["create_persona", "delete_persona", "get_org_persona", "list_org_personas", "update_persona"]


async def list_org_personas(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT spec::text FROM personas WHERE org_id = $1 AND deleted_at IS NULL ORDER BY created_at, id", org_id)
    return [msgspec.json.decode(r["spec"]) for r in rows]


async def get_org_persona(conn: asyncpg.Connection, persona_id: str) -> dict[str, Any] | None:
    spec = await conn.fetchval(
        "SELECT spec::text FROM personas WHERE id = $1 AND org_id IS NOT NULL AND deleted_at IS NULL", persona_id)
    return msgspec.json.decode(spec) if spec else None


async def create_persona(conn: asyncpg.Connection, *, org_id: uuid.UUID, spec: dict[str, Any],
                         created_by: uuid.UUID) -> None:
    await conn.execute(
        "INSERT INTO personas (id, org_id, name, spec, created_by) VALUES ($1, $2, $3, $4::jsonb, $5)",
        spec["id"], org_id, spec["name"], msgspec.json.encode(spec).decode(), created_by)


async def update_persona(conn: asyncpg.Connection, persona_id: str, spec: dict[str, Any]) -> bool:
    status = await conn.execute(
        "UPDATE personas SET spec = $2::jsonb, name = $3, updated_at = now()"
        " WHERE id = $1 AND org_id IS NOT NULL AND deleted_at IS NULL",
        persona_id, msgspec.json.encode(spec).decode(), spec["name"])
    return status == "UPDATE 1"


async def delete_persona(conn: asyncpg.Connection, persona_id: str) -> bool:
    status = await conn.execute(
        "UPDATE personas SET deleted_at = now() WHERE id = $1 AND org_id IS NOT NULL AND deleted_at IS NULL",
        persona_id,
    )
    return status == "UPDATE 1"
