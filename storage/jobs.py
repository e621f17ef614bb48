"""The durable job queue (`jobs`): background work such as scoring a call, queued once, claimed by
any instance (`FOR UPDATE SKIP LOCKED` inside `claim_jobs`), retried with backoff, ending `done` or
`failed`. Progress is kept on the row and announced with NOTIFY, so any instance can stream it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import asyncpg
import msgspec

__all__ = [
    "JOB_CHANNEL", "ClaimedJob", "JobRow", "JobStatus", "claim_jobs", "enqueue_job", "finish_job", "get_job",
    "latest_session_job", "latest_upload_job", "notify_job", "retry_or_fail_job", "renew_jobs", "set_job_progress",
]

JOB_CHANNEL = "sparring_jobs"  # NOTIFY payload: the job id (never any content)
JobStatus = Literal["queued", "running", "done", "failed"]


class ClaimedJob(msgspec.Struct, frozen=True):
    id: uuid.UUID
    org_id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


class JobRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    kind: str
    status: JobStatus
    attempts: int
    max_attempts: int
    last_error: str | None
    session_id: uuid.UUID | None
    progress: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    upload_id: uuid.UUID | None = None


_JOB_COLUMNS = ("id, kind, status, attempts, max_attempts, last_error, session_id, progress::text AS progress,"
                " created_at, finished_at, upload_id")


def _job(row: asyncpg.Record) -> JobRow:
    values = dict(row)
    values["progress"] = msgspec.json.decode(values["progress"])
    return JobRow(**values)


async def notify_job(conn: asyncpg.Connection, job_id: uuid.UUID) -> None:
    """Tells every instance's listeners the job changed (delivered when the transaction commits)."""
    await conn.execute("SELECT pg_notify($1, $2)", JOB_CHANNEL, str(job_id))


async def enqueue_job(conn: asyncpg.Connection, org_id: uuid.UUID, kind: str, payload: dict[str, Any], *,
                      dedupe_key: str | None = None, session_id: uuid.UUID | None = None,
                      upload_id: uuid.UUID | None = None, max_attempts: int = 5) -> uuid.UUID | None:
    """Queues a job (of a session, an upload, or neither); with `dedupe_key`, at most one job of
    that kind and key ever exists (None then when it already did)."""
    job_id: uuid.UUID | None = await conn.fetchval(
        "INSERT INTO jobs (org_id, kind, payload, dedupe_key, session_id, upload_id, max_attempts)"
        " VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7)"
        " ON CONFLICT (kind, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING RETURNING id",
        org_id, kind, msgspec.json.encode(payload).decode(), dedupe_key, session_id, upload_id, max_attempts)
    if job_id is not None:
        await notify_job(conn, job_id)
    return job_id


async def claim_jobs(conn: asyncpg.Connection, kinds: list[str], worker: str, *, lease_s: float,
                     limit: int) -> list[ClaimedJob]:
    """Runnable jobs of any organization, now leased to `worker` (run with no tenant: the function
    crosses organizations on purpose; the work itself then runs inside the job's org)."""
    rows = await conn.fetch(
        "SELECT id, org_id, kind, payload::text AS payload, attempts, max_attempts"
        " FROM claim_jobs($1::text[], $2, make_interval(secs => $3), $4)", kinds, worker, lease_s, limit)
    return [ClaimedJob(r["id"], r["org_id"], r["kind"], msgspec.json.decode(r["payload"]), r["attempts"],
                       r["max_attempts"]) for r in rows]


async def renew_jobs(conn: asyncpg.Connection, job_ids: list[uuid.UUID], worker: str, *, lease_s: float) -> None:
    await conn.execute(
        "UPDATE jobs SET locked_until = now() + make_interval(secs => $3)"
        " WHERE id = any($1::uuid[]) AND locked_by = $2 AND status = 'running'", job_ids, worker, lease_s)


async def set_job_progress(conn: asyncpg.Connection, job_id: uuid.UUID, patch: dict[str, Any]) -> None:
    """Merges `patch` into the job's progress (top-level keys) and announces it."""
    await conn.execute("UPDATE jobs SET progress = progress || $2::jsonb, updated_at = now() WHERE id = $1",
                       job_id, msgspec.json.encode(patch).decode())
    await notify_job(conn, job_id)


async def finish_job(conn: asyncpg.Connection, job_id: uuid.UUID, worker: str,
                     progress: dict[str, Any] | None = None) -> bool:
    """done, if this worker still holds it (a worker whose lease ran out must not finish it)."""
    status = await conn.execute(
        "UPDATE jobs SET status = 'done', finished_at = now(), updated_at = now(), locked_by = NULL,"
        " locked_until = NULL, last_error = NULL, progress = progress || $3::jsonb"
        " WHERE id = $1 AND locked_by = $2 AND status = 'running'",
        job_id, worker, msgspec.json.encode(progress or {}).decode())
    await notify_job(conn, job_id)
    return status == "UPDATE 1"


async def retry_or_fail_job(conn: asyncpg.Connection, job_id: uuid.UUID, worker: str, error: str, *,
                            retry_in_s: float | None) -> JobStatus | None:
    """Back to `queued` after `retry_in_s`, or `failed` (retry_in_s None or no attempts left)."""
    status: JobStatus | None = await conn.fetchval(
        "UPDATE jobs SET status = CASE WHEN $4::float8 IS NOT NULL AND attempts < max_attempts THEN 'queued'"
        " ELSE 'failed' END,"
        " run_after = now() + make_interval(secs => coalesce($4::float8, 0)), last_error = $3, locked_by = NULL,"
        " locked_until = NULL, updated_at = now(),"
        " finished_at = CASE WHEN $4::float8 IS NOT NULL AND attempts < max_attempts THEN NULL ELSE now() END"
        " WHERE id = $1 AND locked_by = $2 AND status = 'running' RETURNING status",
        job_id, worker, error[:500], retry_in_s)
    await notify_job(conn, job_id)
    return status


async def get_job(conn: asyncpg.Connection, job_id: uuid.UUID) -> JobRow | None:
    row = await conn.fetchrow(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = $1", job_id)
    return _job(row) if row else None


async def latest_upload_job(conn: asyncpg.Connection, upload_id: uuid.UUID,
                            kinds: tuple[str, ...]) -> JobRow | None:
    """The upload's newest job of any of `kinds`."""
    row = await conn.fetchrow(
        f"SELECT {_JOB_COLUMNS} FROM jobs WHERE upload_id = $1 AND kind = any($2::text[])"
        " ORDER BY created_at DESC, id LIMIT 1", upload_id, list(kinds))
    return _job(row) if row else None


async def latest_session_job(conn: asyncpg.Connection, session_id: uuid.UUID, kind: str) -> JobRow | None:
    row = await conn.fetchrow(
        f"SELECT {_JOB_COLUMNS} FROM jobs WHERE session_id = $1 AND kind = $2 ORDER BY created_at DESC LIMIT 1",
        session_id, kind)
    return _job(row) if row else None
