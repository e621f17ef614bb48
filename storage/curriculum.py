"""The curriculum modules and each rep's progress through them."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from storage.scores import KEY_OF_COLUMN

__all__ = ["ModuleProgress", "complete_module", "list_modules"]


class ModuleProgress(msgspec.Struct, frozen=True):
    id: str
    position: int
    title: str
    summary: str
    dimension: str  # the scorecard dimension key it trains (opening, discovery, ...)
    skills: list[str]
    persona_ids: list[str]
    status: str  # not_started | in_progress | completed
    completed_at: datetime | None
    best_score: float | None


_SELECT = """
    SELECT m.id, m.position, m.title, m.summary, m.dimension, m.skills, m.persona_ids,
           coalesce(p.status, 'not_started') AS status, p.completed_at, p.best_score::float8 AS best_score
    FROM curriculum_modules m
    LEFT JOIN curriculum_progress p ON p.module_id = m.id AND p.user_id = $1 AND p.org_id = $2
"""


def _module(row: asyncpg.Record) -> ModuleProgress:
    values = dict(row)
    values["dimension"] = KEY_OF_COLUMN.get(values["dimension"], values["dimension"])
    return ModuleProgress(**values)


async def list_modules(conn: asyncpg.Connection, user_id: uuid.UUID, org_id: uuid.UUID) -> list[ModuleProgress]:
    rows = await conn.fetch(_SELECT + " ORDER BY m.position", user_id, org_id)
    return [_module(r) for r in rows]


async def complete_module(
    conn: asyncpg.Connection, user_id: uuid.UUID, org_id: uuid.UUID, module_id: str
) -> ModuleProgress | None:
    """Marks the module completed for the user (idempotent); None when there is no such module."""
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM curriculum_modules WHERE id = $1)", module_id):
        return None
    await conn.execute(
        """
        INSERT INTO curriculum_progress (org_id, user_id, module_id, status, completed_at)
        VALUES ($1, $2, $3, 'completed', now())
        ON CONFLICT (org_id, user_id, module_id)
        DO UPDATE SET status = 'completed', completed_at = coalesce(curriculum_progress.completed_at, now())
        """,
        org_id, user_id, module_id,
    )
    row = await conn.fetchrow(_SELECT + " WHERE m.id = $3", user_id, org_id, module_id)
    assert row is not None  # the module exists (checked above) and its progress row was just upserted
    return _module(row)
