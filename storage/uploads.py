"""Uploaded recordings of real calls (`call_uploads`): the row that tracks one, its transcript
(`transcript_segments` with `upload_id`, each with a voice summary for speaker clustering), and
removing one with its audio."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from coaching.session_log import Segment

__all__ = [
    "NewSegment", "UploadRow", "UploadStatus", "add_segments", "create_upload", "delete_upload", "get_upload",
    "label_segments", "list_transcript",
    "list_uploads", "replace_transcript", "segment_voices", "set_speakers", "set_status", "swap_speakers",
]

UploadStatus = Literal["uploaded", "transcribing", "transcribed", "scoring", "scored", "failed"]
SpeakerMode = Literal["channels", "inferred", "confirmed"]


class UploadRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    org_id: uuid.UUID
    user_id: uuid.UUID
    filename: str
    title: str | None
    content_type: str
    size_bytes: int
    blob_id: uuid.UUID | None
    status: UploadStatus
    error: str | None
    duration_ms: int | None
    channels: int | None
    rep_channel: str | None
    speakers: SpeakerMode | None
    speaker_method: str | None
    created_at: datetime
    updated_at: datetime
    rep_name: str | None = None
    score: float | None = None
    passed: bool | None = None


class NewSegment(msgspec.Struct, frozen=True):
    segment_id: str
    speaker: str
    text: str
    start_ms: int
    end_ms: int
    voice: list[float] | None = None


_COLUMNS = """u.id, u.org_id, u.user_id, u.filename, u.title, u.content_type, u.size_bytes, u.blob_id, u.status,
              u.error, u.duration_ms, u.channels, u.rep_channel, u.speakers, u.speaker_method, u.created_at,
              u.updated_at, us.name AS rep_name, sc.overall::float8 AS score, sc.passed"""
_FROM = """FROM call_uploads u LEFT JOIN users us ON us.id = u.user_id
           LEFT JOIN LATERAL (SELECT overall, passed FROM session_scores WHERE upload_id = u.id AND scorecard <> '{}'
                              ORDER BY created_at DESC, id LIMIT 1) sc ON true"""


async def create_upload(conn: asyncpg.Connection, *, org_id: uuid.UUID, user_id: uuid.UUID, filename: str,
                        title: str | None, content_type: str, size_bytes: int, blob_id: uuid.UUID, duration_ms: int,
                        channels: int, rep_channel: str | None) -> UploadRow:
    upload_id: uuid.UUID = await conn.fetchval(
        """INSERT INTO call_uploads (org_id, user_id, filename, title, content_type, size_bytes, blob_id, duration_ms,
                                     channels, rep_channel, speakers, speaker_method)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::smallint, $10,
                   CASE WHEN $9::smallint = 2 THEN 'channels' ELSE 'inferred' END,
                   CASE WHEN $9::smallint = 2 THEN 'channels' END) RETURNING id""",
        org_id, user_id, filename, title, content_type, size_bytes, blob_id, duration_ms, channels, rep_channel)
    row = await get_upload(conn, upload_id)
    if row is None:
        raise LookupError("the upload just created is not visible to its creator")
    return row


async def get_upload(conn: asyncpg.Connection, upload_id: uuid.UUID) -> UploadRow | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} {_FROM} WHERE u.id = $1 AND u.deleted_at IS NULL", upload_id)
    return UploadRow(**dict(row)) if row else None


async def list_uploads(conn: asyncpg.Connection, *, user_id: uuid.UUID | None, limit: int,
                       before: datetime | None) -> list[UploadRow]:
    """Newest first; row-level security decides whose (a trainee's own, staff: the org's)."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} {_FROM} WHERE u.deleted_at IS NULL AND ($1::uuid IS NULL OR u.user_id = $1)
            AND ($2::timestamptz IS NULL OR u.created_at < $2) ORDER BY u.created_at DESC, u.id LIMIT $3""",
        user_id, before, limit)
    return [UploadRow(**dict(r)) for r in rows]


async def set_status(conn: asyncpg.Connection, upload_id: uuid.UUID, status: UploadStatus, *,
                     error: str | None = None) -> None:
    await conn.execute("UPDATE call_uploads SET status = $2, error = $3, updated_at = now() WHERE id = $1",
                       upload_id, status, error)


async def set_speakers(conn: asyncpg.Connection, upload_id: uuid.UUID, mode: SpeakerMode, method: str) -> None:
    await conn.execute("UPDATE call_uploads SET speakers = $2, speaker_method = $3, updated_at = now() WHERE id = $1",
                       upload_id, mode, method)


async def add_segments(conn: asyncpg.Connection, org_id: uuid.UUID, upload_id: uuid.UUID,
                       segments: Sequence[NewSegment]) -> None:
    """Adds a chunk's segments; a chunk transcribed again (a resumed job) replaces its own."""
    await conn.executemany(
        """INSERT INTO transcript_segments (org_id, upload_id, segment_id, speaker, text, start_ms, end_ms, voice)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::real[])
           ON CONFLICT (upload_id, segment_id) WHERE upload_id IS NOT NULL DO UPDATE SET
               speaker = excluded.speaker, text = excluded.text, start_ms = excluded.start_ms,
               end_ms = excluded.end_ms, voice = excluded.voice""",
        [(org_id, upload_id, s.segment_id, s.speaker, s.text, s.start_ms, s.end_ms, s.voice) for s in segments])


async def replace_transcript(conn: asyncpg.Connection, upload_id: uuid.UUID, *, from_ms: int) -> None:
    """Drops the segments that start at or after `from_ms` (a transcription starting over there)."""
    await conn.execute("DELETE FROM transcript_segments WHERE upload_id = $1 AND start_ms >= $2", upload_id, from_ms)


async def list_transcript(conn: asyncpg.Connection, upload_id: uuid.UUID) -> list[Segment]:
    rows = await conn.fetch(
        "SELECT segment_id, speaker, text, start_ms, end_ms, NULL::bigint AS seq FROM transcript_segments"
        " WHERE upload_id = $1 ORDER BY start_ms, id", upload_id)
    return [Segment(**dict(r)) for r in rows]


async def segment_voices(conn: asyncpg.Connection,
                         upload_id: uuid.UUID) -> list[tuple[str, str, int, list[float] | None]]:
    """(segment_id, text, duration_ms, voice) in transcript order, for labelling the speakers."""
    rows = await conn.fetch(
        "SELECT segment_id, text, end_ms - start_ms AS duration_ms, voice FROM transcript_segments"
        " WHERE upload_id = $1 ORDER BY start_ms, id", upload_id)
    return [(r["segment_id"], r["text"], r["duration_ms"], list(r["voice"]) if r["voice"] is not None else None)
            for r in rows]


async def label_segments(conn: asyncpg.Connection, upload_id: uuid.UUID, speakers: dict[str, str]) -> int:
    """Sets each named segment's speaker; returns how many of them exist."""
    status = await conn.execute(
        """UPDATE transcript_segments t SET speaker = v.speaker
           FROM unnest($2::text[], $3::text[]) AS v(segment_id, speaker)
           WHERE t.upload_id = $1 AND t.segment_id = v.segment_id""",
        upload_id, list(speakers), list(speakers.values()))
    return int(status.split()[-1])


async def swap_speakers(conn: asyncpg.Connection, upload_id: uuid.UUID) -> None:
    await conn.execute(
        """UPDATE transcript_segments SET speaker = CASE speaker WHEN 'rep' THEN 'buyer' WHEN 'buyer' THEN 'rep'
                                                              ELSE speaker END
           WHERE upload_id = $1""", upload_id)


async def delete_upload(conn: asyncpg.Connection, upload_id: uuid.UUID) -> bool:
    """Deletes the upload, its transcript, scores and jobs (foreign keys cascade) and its audio."""
    row = await conn.fetchrow("DELETE FROM call_uploads WHERE id = $1 RETURNING blob_id", upload_id)
    if row is None:
        return False
    if row["blob_id"] is not None:
        await conn.execute("DELETE FROM blobs WHERE id = $1", row["blob_id"])
    return True
