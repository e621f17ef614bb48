"""The SQL behind VAPI-hosted calls: finding a webhook's session, the org's VAPI settings, the
webhook inbox, and the session state the webhooks change."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

__all__ = [
    "FoundSession", "LockedSession", "VapiOrgSettings", "endpoint_key", "find_session", "first_admin", "get_org_vapi",
    "keep_deliveries", "keep_delivery",
    "lock_session", "lock_sessions", "mark_webhook_created", "phone_org", "put_org_vapi", "set_call_id", "set_metadata",
    "session_has_finals", "stale_vapi_sessions",
]


class VapiOrgSettings(msgspec.Struct, kw_only=True):
    auth_mode: str | None = None
    secret: str | None = None
    default_persona_id: str | None = None
    phone_numbers: dict[str, str] = {}


class LockedSession(msgspec.Struct, frozen=True):
    id: uuid.UUID
    org_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    started_at: datetime | None
    owner_fence: int
    metadata: dict[str, Any]
    persona_id: str
    last_seq: int  # the session's highest event seq


class FoundSession(msgspec.Struct, frozen=True):
    id: uuid.UUID
    org_id: uuid.UUID
    call_id: str | None  # the VAPI call id recorded on it, if any


async def find_session(conn: asyncpg.Connection, session_id: uuid.UUID | None, call_id: str | None, *,
                       endpoint_org: uuid.UUID | None = None) -> FoundSession | None:
    """The session by its id, else by the VAPI call id, as the endpoint that verified the delivery
    may see it: `endpoint_org` (an org's own endpoint) finds only that org's sessions; None (the
    platform endpoint) finds any session by id and, by call id, only calls the platform bound."""
    row = await conn.fetchrow("SELECT session_id, org_id, vapi_call_id FROM vapi_find_session($1, $2, $3)",
                              session_id, call_id, endpoint_org)
    return FoundSession(row["session_id"], row["org_id"], row["vapi_call_id"]) if row else None


async def phone_org(conn: asyncpg.Connection, number: str) -> tuple[uuid.UUID, str] | None:
    row = await conn.fetchrow("SELECT org_id, persona_id FROM vapi_phone_org($1)", number)
    return (row["org_id"], row["persona_id"]) if row else None


async def get_org_vapi(conn: asyncpg.Connection, org_id: uuid.UUID) -> VapiOrgSettings:
    row = await conn.fetchrow(
        "SELECT vapi_auth_mode, vapi_webhook_secret, vapi_default_persona_id FROM org_settings WHERE org_id = $1",
        org_id)
    numbers = {r["phone_number"]: r["persona_id"] for r in await conn.fetch(
        "SELECT phone_number, persona_id FROM vapi_phone_numbers WHERE org_id = $1 ORDER BY phone_number", org_id)}
    if row is None:
        return VapiOrgSettings(phone_numbers=numbers)
    return VapiOrgSettings(auth_mode=row["vapi_auth_mode"], secret=row["vapi_webhook_secret"],
                           default_persona_id=row["vapi_default_persona_id"], phone_numbers=numbers)


async def put_org_vapi(conn: asyncpg.Connection, org_id: uuid.UUID, *, auth_mode: str | None, secret: str | None,
                       keep_secret: bool, default_persona_id: str | None, phone_numbers: dict[str, str]) -> None:
    """Replaces the org's VAPI settings; `keep_secret` leaves the stored secret as it is."""
    await conn.execute(
        """
        INSERT INTO org_settings (org_id, vapi_auth_mode, vapi_webhook_secret, vapi_default_persona_id)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (org_id) DO UPDATE SET vapi_auth_mode = $2,
            vapi_webhook_secret = CASE WHEN $5 THEN org_settings.vapi_webhook_secret ELSE $3 END,
            vapi_default_persona_id = $4, updated_at = now()
        """, org_id, auth_mode, secret, default_persona_id, keep_secret)
    await conn.execute("DELETE FROM vapi_phone_numbers WHERE org_id = $1", org_id)
    await conn.executemany("INSERT INTO vapi_phone_numbers (phone_number, org_id, persona_id) VALUES ($1, $2, $3)",
                           [(number, org_id, persona) for number, persona in phone_numbers.items()])


def endpoint_key(endpoint_org: uuid.UUID | None) -> str:
    """The inbox's name for the endpoint that verified a delivery: the org id, or 'platform'."""
    return str(endpoint_org) if endpoint_org is not None else "platform"


async def keep_delivery(conn: asyncpg.Connection, org_id: uuid.UUID | None, dedupe_key: str, message_type: str,
                        body: bytes, *, endpoint_org: uuid.UUID | None = None) -> bool:
    """Keeps one accepted delivery in the inbox (a re-delivery counts in `attempts` of the first).
    Deduplicated per endpoint (`endpoint_org`, None for the platform's): what one org's endpoint
    received never makes another endpoint's delivery a duplicate. False: delivered before."""
    return (await keep_deliveries(conn, org_id, [(dedupe_key, message_type, body)], endpoint_org=endpoint_org))[0]


async def keep_deliveries(conn: asyncpg.Connection, org_id: uuid.UUID | None,
                          deliveries: Sequence[tuple[str, str, bytes]], *,
                          endpoint_org: uuid.UUID | None = None) -> list[bool]:
    """`keep_delivery` for several deliveries (dedupe key, message type, body) in one statement;
    says for each whether it is fresh. Of two with the same key only the first is."""
    counts = Counter(key for key, _, _ in deliveries)
    first = {key: (kind, body) for key, kind, body in reversed(deliveries)}
    rows = await conn.fetch(
        "INSERT INTO webhook_inbox (org_id, provider, endpoint, dedupe_key, message_type, payload, processed_at,"
        " attempts) SELECT $1, 'vapi', $2, d.key, d.kind, d.payload::jsonb, now(), d.again"
        " FROM unnest($3::text[], $4::text[], $5::text[], $6::int[]) AS d(key, kind, payload, again)"
        " ON CONFLICT (provider, endpoint, dedupe_key)"
        " DO UPDATE SET attempts = webhook_inbox.attempts + excluded.attempts + 1"
        " RETURNING dedupe_key, xmax = 0 AS fresh",
        org_id, endpoint_key(endpoint_org), list(first), [kind for kind, _ in first.values()],
        [body.decode() for _, body in first.values()], [counts[key] - 1 for key in first])
    fresh = {row["dedupe_key"] for row in rows if row["fresh"]}
    kept = []
    for key, _, _ in deliveries:
        kept.append(key in fresh)
        fresh.discard(key)  # a second delivery of the same key in this batch is a re-delivery
    return kept


async def first_admin(conn: asyncpg.Connection, org_id: uuid.UUID) -> uuid.UUID | None:
    user_id: uuid.UUID | None = await conn.fetchval(
        "SELECT user_id FROM memberships WHERE org_id = $1 ORDER BY (role = 'admin') DESC, created_at LIMIT 1", org_id)
    return user_id


async def set_call_id(conn: asyncpg.Connection, session_id: uuid.UUID, call_id: str, *, platform: bool) -> None:
    """Binds the VAPI call id to the session (once); `platform`: the platform endpoint verified it."""
    await conn.execute("UPDATE roleplay_sessions SET vapi_call_id = $2, vapi_call_platform = $3"
                       " WHERE id = $1 AND vapi_call_id IS NULL", session_id, call_id, platform)


async def mark_webhook_created(conn: asyncpg.Connection, session_id: uuid.UUID) -> None:
    """Marks a session the webhook created for the org's first admin (no person started it)."""
    await conn.execute("UPDATE roleplay_sessions SET vapi_webhook_created = true WHERE id = $1", session_id)


async def stale_vapi_sessions(conn: asyncpg.Connection, started_before_s: float) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(session, org) of live VAPI calls started more than `started_before_s` ago, any org."""
    rows = await conn.fetch("SELECT session_id, org_id FROM stale_vapi_sessions(make_interval(secs => $1))",
                            started_before_s)
    return [(r["session_id"], r["org_id"]) for r in rows]


async def lock_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> LockedSession | None:
    """The session, locked until the transaction ends: one webhook at a time numbers its events.
    None when there is none or it was deleted (a deleted call takes no more events)."""
    return (await lock_sessions(conn, [session_id])).get(session_id)


async def lock_sessions(conn: asyncpg.Connection, session_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, LockedSession]:
    """`lock_session` for several sessions in one statement, locked in id order (the order every
    caller locks in, so two transactions that want the same rows never deadlock). A session that
    is not there or was deleted is missing from the result.

    The last seq comes with the lock: a read-committed statement that waited for a row's lock
    gets the row as its previous holder committed it (`last_seq` included; every append moves
    it on), where a count over the events would see the statement's older snapshot."""
    rows = await conn.fetch(
        "SELECT id, org_id, user_id, status, started_at, owner_fence, metadata::text, persona_id, last_seq"
        " FROM roleplay_sessions WHERE id = any($1::uuid[]) AND deleted_at IS NULL ORDER BY id FOR UPDATE",
        sorted(set(session_ids)))
    return {r["id"]: LockedSession(r["id"], r["org_id"], r["user_id"], r["status"], r["started_at"], r["owner_fence"],
                                   json.loads(r["metadata"]), r["persona_id"], r["last_seq"]) for r in rows}


async def set_metadata(conn: asyncpg.Connection, session_id: uuid.UUID, key: str, value: Any, *,
                       only_if_absent: bool = False) -> bool:
    """Sets `metadata[key]`; with `only_if_absent`, only the first time (False when it was there)."""
    status = await conn.execute(
        "UPDATE roleplay_sessions SET metadata = jsonb_set(metadata, ARRAY[$2::text], $3::jsonb)"
        " WHERE id = $1 AND NOT ($4 AND metadata ? $2)", session_id, key, json.dumps(value), only_if_absent)
    return status == "UPDATE 1"


async def session_has_finals(conn: asyncpg.Connection, session_id: uuid.UUID) -> bool:
    exists: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM transcript_segments WHERE session_id = $1)", session_id)
    return exists
