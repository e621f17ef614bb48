"""Coaching chat conversations: each user's own (row-level security: not even staff read them)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

__all__ = [
    "ConversationRow", "MessageRow", "add_message", "create_conversation", "delete_conversation",
    "get_conversation", "list_conversations", "list_messages",
]


class ConversationRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    title: str
    session_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class MessageRow(msgspec.Struct, frozen=True):
    id: int
    role: str
    content: str
    sources: list[dict[str, Any]]
    created_at: datetime


_CONVERSATION = "SELECT id, title, session_id, created_at, updated_at FROM chat_conversations"


def _conversation(r: asyncpg.Record) -> ConversationRow:
    return ConversationRow(r["id"], r["title"], r["session_id"], r["created_at"], r["updated_at"])


async def create_conversation(conn: asyncpg.Connection, *, org_id: uuid.UUID, user_id: uuid.UUID, title: str,
                              session_id: uuid.UUID | None) -> uuid.UUID:
    conversation_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO chat_conversations (org_id, user_id, title, session_id) VALUES ($1, $2, $3, $4) RETURNING id",
        org_id, user_id, title, session_id)
    return conversation_id


async def get_conversation(conn: asyncpg.Connection, conversation_id: uuid.UUID) -> ConversationRow | None:
    row = await conn.fetchrow(_CONVERSATION + " WHERE id = $1", conversation_id)
    return _conversation(row) if row else None


async def list_conversations(conn: asyncpg.Connection, *, limit: int = 100) -> list[ConversationRow]:
    rows = await conn.fetch(_CONVERSATION + " ORDER BY updated_at DESC, id LIMIT $1", limit)
    return [_conversation(r) for r in rows]


async def delete_conversation(conn: asyncpg.Connection, conversation_id: uuid.UUID) -> bool:
    return await conn.fetchval("DELETE FROM chat_conversations WHERE id = $1 RETURNING true",
                               conversation_id) is not None


async def add_message(conn: asyncpg.Connection, conversation_id: uuid.UUID, org_id: uuid.UUID, role: str,
                      content: str, sources: list[dict[str, Any]] | None = None) -> None:
    await conn.execute(
        "INSERT INTO chat_messages (conversation_id, org_id, role, content, sources) VALUES ($1, $2, $3, $4, $5)",
        conversation_id, org_id, role, content, msgspec.json.encode(sources or []).decode())
    await conn.execute("UPDATE chat_conversations SET updated_at = now() WHERE id = $1", conversation_id)


async def list_messages(conn: asyncpg.Connection, conversation_id: uuid.UUID) -> list[MessageRow]:
    rows = await conn.fetch("SELECT id, role, content, sources::text, created_at FROM chat_messages"
                            " WHERE conversation_id = $1 ORDER BY id", conversation_id)
    return [MessageRow(r["id"], r["role"], r["content"], msgspec.json.decode(r["sources"]), r["created_at"])
            for r in rows]
