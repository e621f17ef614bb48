"""Practice sessions and their durable event log: the SQL behind the live call and its history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import asyncpg
import msgspec

from coaching.session_log import LogEntry, Segment
from storage.jobs import enqueue_job

__all__ = [
    "EventRow", "SegmentRow", "SessionRow", "append_events", "claim_session", "stale_live_sessions",
    "count_live_sessions", "create_session", "end_session", "enqueue_score", "get_session", "list_events",
    "list_sessions",
    "list_transcript", "max_seq", "set_recording", "set_transport", "soft_delete_session", "start_session",
    "recording_enabled",
]

Status = Literal["created", "live", "ended"]


class SessionRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    org_id: uuid.UUID
    user_id: uuid.UUID
    persona_id: str
    persona_snapshot: dict[str, Any]
    transport: str
    status: Status
    end_reason: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    last_activity_at: datetime | None
    recording_blob_id: uuid.UUID | None
    rep_name: str | None = None
    # In lists: how long it ran, and its latest score.
    duration_ms: int | None = None
    score: float | None = None
    passed: bool | None = None


class EventRow(msgspec.Struct, frozen=True):
    seq: int
    type: str
    payload: bytes  # the event's JSON exactly as sent


SegmentRow = Segment  # a transcript segment as stored


_COLUMNS = """s.id, s.org_id, s.user_id, s.persona_id, s.persona_snapshot::text, s.transport, s.status, s.end_reason,
              s.created_at, s.started_at, s.ended_at, s.last_activity_at, s.recording_blob_id, u.name AS rep_name"""


def _session(row: asyncpg.Record) -> SessionRow:
    values = dict(row)
    values["persona_snapshot"] = msgspec.json.decode(values["persona_snapshot"])
    return SessionRow(**values)


async def create_session(conn: asyncpg.Connection, *, org_id: uuid.UUID, user_id: uuid.UUID, persona_id: str,
                         persona_snapshot: dict[str, Any], transport: str = "websocket") -> SessionRow:
    """Raises:
        RuntimeError: the session just inserted is not visible to this tenant.
    """
    session_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO roleplay_sessions (org_id, user_id, persona_id, persona_snapshot, transport)"
        " VALUES ($1, $2, $3, $4::jsonb, $5) RETURNING id",
        org_id, user_id, persona_id, msgspec.json.encode(persona_snapshot).decode(), transport,
    )
    session = await get_session(conn, session_id)
    if session is None:
        raise RuntimeError(f"session {session_id} was inserted but cannot be read back (not visible to this tenant?)")
    return session


async def get_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> SessionRow | None:
    """The session if the tenant may see it and it is not deleted."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM roleplay_sessions s LEFT JOIN users u ON u.id = s.user_id"
        " WHERE s.id = $1 AND s.deleted_at IS NULL", session_id)
    return _session(row) if row else None


async def list_sessions(conn: asyncpg.Connection, *, status: Status | None, user_id: uuid.UUID | None,
                        persona_id: str | None, limit: int, before: datetime | None,
                        min_score: float | None = None, max_score: float | None = None,
                        unstarted_for_s: float | None = None) -> list[SessionRow]:
    """Newest first; with a score bound, only scored calls within it; with `unstarted_for_s`, without
    the never-started (`created`) sessions older than that many seconds."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS},
               (extract(epoch FROM s.ended_at - s.started_at) * 1000)::bigint AS duration_ms,
               sc.overall::float8 AS score, sc.passed
        FROM roleplay_sessions s LEFT JOIN users u ON u.id = s.user_id
        LEFT JOIN LATERAL (SELECT overall, passed FROM session_scores WHERE session_id = s.id
                           ORDER BY created_at DESC, id LIMIT 1) sc ON true
        WHERE s.deleted_at IS NULL AND ($1::text IS NULL OR s.status = $1) AND ($2::uuid IS NULL OR s.user_id = $2)
          AND ($3::text IS NULL OR s.persona_id = $3) AND ($4::timestamptz IS NULL OR s.created_at < $4)
          AND ($6::float8 IS NULL OR sc.overall >= $6) AND ($7::float8 IS NULL OR sc.overall <= $7)
          AND ($8::float8 IS NULL OR s.status <> 'created' OR s.created_at > now() - make_interval(secs => $8))
        ORDER BY s.created_at DESC LIMIT $5
        """,
        status, user_id, persona_id, before, limit, min_score, max_score, unstarted_for_s,
    )
    return [_session(r) for r in rows]


async def soft_delete_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> bool:
    status = await conn.execute(
        "UPDATE roleplay_sessions SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL", session_id)
    return status == "UPDATE 1"


async def count_live_sessions(conn: asyncpg.Connection, user_id: uuid.UUID, *,
                              excluding: uuid.UUID | None = None) -> int:
    """The person's live calls, but for `excluding` and VAPI calls the webhook created for the
    org's first admin (nobody started those, so they never hold anyone's limit)."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM roleplay_sessions WHERE user_id = $1 AND status = 'live' AND id IS DISTINCT FROM $2"
        " AND deleted_at IS NULL AND NOT vapi_webhook_created", user_id, excluding)
    return count


async def start_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> datetime | None:
    """created -> live: when it started; None when it was not `created` any more (another socket won)."""
    started: datetime | None = await conn.fetchval(
        "UPDATE roleplay_sessions SET status = 'live', started_at = now(), last_activity_at = now()"
        " WHERE id = $1 AND status = 'created' RETURNING started_at", session_id)
    return started


async def set_transport(conn: asyncpg.Connection, session_id: uuid.UUID, transport: str, *, fence: int) -> bool:
    """Records what carries a browser call now (`websocket` or `webrtc`), while `fence` owns it;
    a VAPI call's never changes. True when the row changed."""
    status = await conn.execute(
        "UPDATE roleplay_sessions SET transport = $2 WHERE id = $1 AND transport <> 'vapi' AND transport <> $2"
        " AND status = 'live' AND owner_fence = $3", session_id, transport, fence)
    return status == "UPDATE 1"


async def end_session(conn: asyncpg.Connection, session_id: uuid.UUID, reason: str, *,
                      fence: int | None = None) -> None:
    """Ends the session once; with `fence`, only while that fencing token still owns the call (an
    instance that lost the call to another must not end it under the new owner)."""
    row = await conn.fetchrow(
        "UPDATE roleplay_sessions SET status = 'ended', end_reason = $2, ended_at = now()"
        " WHERE id = $1 AND status <> 'ended' AND ($3::bigint IS NULL OR owner_fence = $3)"
        " RETURNING org_id, transport, started_at IS NOT NULL AS started", session_id, reason, fence)
    # A call that ran is scored once (VAPI calls when their end-of-call report arrives, which
    # carries the transcript; one that never reports is scored when it times out).
    if row is not None and row["started"] and (row["transport"] != "vapi" or reason == "vapi_timeout"):
        await enqueue_score(conn, row["org_id"], session_id)


async def enqueue_score(conn: asyncpg.Connection, org_id: uuid.UUID, session_id: uuid.UUID, *,
                        rescore: bool = False) -> uuid.UUID | None:
    """Queues scoring of a finished call: once per call automatically (deduplicated), or again on
    request (`rescore`). Returns the job id (None: the automatic one was queued before)."""
    return await enqueue_job(conn, org_id, "score_session", {"session_id": str(session_id)},
                             dedupe_key=None if rescore else str(session_id), session_id=session_id)


async def set_recording(conn: asyncpg.Connection, session_id: uuid.UUID, blob_id: uuid.UUID) -> None:
    await conn.execute("UPDATE roleplay_sessions SET recording_blob_id = $2 WHERE id = $1", session_id, blob_id)


async def recording_enabled(conn: asyncpg.Connection, org_id: uuid.UUID) -> bool:
    value: str | None = await conn.fetchval(
        "SELECT settings ->> 'recording' FROM org_settings WHERE org_id = $1", org_id)
    return value != "false"


async def claim_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> int:
    """Takes ownership of a call for this instance: returns the new fencing token. Waits for any
    append of the previous owner in flight (its share lock), so nothing it wrote is missed."""
    fence: int = await conn.fetchval(
        "UPDATE roleplay_sessions SET owner_fence = owner_fence + 1 WHERE id = $1 RETURNING owner_fence", session_id)
    return fence


# The fence check, the events, their transcript segments and the sessions' activity and last seq,
# in one statement: under load each statement waits a turn of the event loop for its answer, and
# the events' clients wait for the commit. A row whose session is not there is kept (its insert
# fails on the foreign key, as a separate insert would).
_APPEND = """
WITH r AS (
    SELECT * FROM unnest($2::uuid[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::text[], $10::int[], $11::int[], $12::bigint[])
        AS r(session_id, seq, fence, type, payload, segment_id, speaker, text, start_ms, end_ms, segment_seq)
), held AS (
    -- Rows this statement updates anyway, locked in id order (the order every caller locks in).
    SELECT id, owner_fence FROM roleplay_sessions WHERE id IN (SELECT session_id FROM r)
    ORDER BY id FOR NO KEY UPDATE
), kept AS (
    SELECT r.* FROM r LEFT JOIN held ON held.id = r.session_id
    WHERE $13::boolean OR held.owner_fence IS NULL OR held.owner_fence <= r.fence
), events AS (
    INSERT INTO session_events (session_id, seq, org_id, type, payload)
    SELECT session_id, seq, $1, type, payload::jsonb FROM kept
    ON CONFLICT (session_id, seq) DO NOTHING
), segments AS (
    INSERT INTO transcript_segments (org_id, session_id, segment_id, speaker, text, start_ms, end_ms, seq)
    SELECT $1, session_id, segment_id, speaker, text, start_ms, end_ms, segment_seq FROM kept
    WHERE segment_id IS NOT NULL
    ON CONFLICT (session_id, segment_id) WHERE session_id IS NOT NULL DO NOTHING
), touched AS (
    UPDATE roleplay_sessions s SET last_activity_at = now(), last_seq = greatest(s.last_seq, k.seq)
    FROM (SELECT session_id, max(seq) AS seq FROM kept GROUP BY session_id) k WHERE s.id = k.session_id
)
SELECT id, owner_fence FROM held
"""
_NO_SEGMENT = (None,) * 6


async def append_events(conn: asyncpg.Connection, org_id: uuid.UUID,
                        entries: Sequence[tuple[uuid.UUID, int, LogEntry]], *,
                        locked: bool = False) -> set[uuid.UUID]:
    """Appends numbered events (and the transcript segments of finals) of one org's calls in one
    statement, marks those calls active and moves their `last_seq` on; rows already written are
    ignored, so a retried batch is harmless.

    Each row carries the fencing token of the instance that numbered it: rows of an owner that has
    since lost the call are dropped. Returns the sessions whose rows were dropped that way. `locked`: the
    caller holds the sessions' rows locked and numbered the events itself (no fence to check).
    """
    if not entries:
        return set()
    # A final's segment in six columns (segment_id, speaker, text, start_ms, end_ms, seq); NULLs for other events.
    segment_columns = [(g.segment_id, g.speaker, g.text, g.start_ms, g.end_ms, g.seq) if (g := e.segment)
                       else _NO_SEGMENT for _, _, e in entries]
    rows = await conn.fetch(
        _APPEND, org_id, [s for s, _, _ in entries], [e.seq for _, _, e in entries], [f for _, f, _ in entries],
        [e.type for _, _, e in entries], [e.frame.decode() for _, _, e in entries],
        *map(list, zip(*segment_columns, strict=True)), locked)
    current: dict[uuid.UUID, int] = {} if locked else {r["id"]: r["owner_fence"] for r in rows}
    # The call's end commits with its `session.ended`: a client that has the event finds the
    # session ended (and its scoring queued), never still live.
    for session_id, fence, e in entries:
        if e.type == "session.ended" and current.get(session_id, fence) <= fence:
            reason = msgspec.json.decode(e.frame, type=_EndedFrame).reason
            await end_session(conn, session_id, reason, fence=None if locked else fence)
    return {s for s, fence, _ in entries if current.get(s, fence) > fence}


class _EndedFrame(msgspec.Struct):
    reason: str


async def stale_live_sessions(conn: asyncpg.Connection, silent_for_s: float) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(session, org) of live browser calls silent for longer than `silent_for_s`, any org."""
    rows = await conn.fetch("SELECT session_id, org_id FROM stale_live_sessions(make_interval(secs => $1))",
                            silent_for_s)
    return [(r["session_id"], r["org_id"]) for r in rows]


async def list_events(conn: asyncpg.Connection, session_id: uuid.UUID, *, after_seq: int, limit: int) -> list[EventRow]:
    rows = await conn.fetch(
        "SELECT seq, type, payload::text AS payload FROM session_events WHERE session_id = $1 AND seq > $2"
        " ORDER BY seq LIMIT $3", session_id, after_seq, limit)
    return [EventRow(r["seq"], r["type"], r["payload"].encode()) for r in rows]


async def max_seq(conn: asyncpg.Connection, session_id: uuid.UUID) -> int:
    seq: int = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM session_events WHERE session_id = $1", session_id)
    return seq


async def list_transcript(conn: asyncpg.Connection, session_id: uuid.UUID) -> list[SegmentRow]:
    rows = await conn.fetch(
        "SELECT segment_id, speaker, text, start_ms, end_ms, seq FROM transcript_segments WHERE session_id = $1"
        " ORDER BY coalesce(seq, 0), start_ms, id", session_id)
    return [SegmentRow(**dict(r)) for r in rows]
