"""A job's progress as Server-Sent Events: `status` whenever the status, stage or (uploads:
transcription) percent changes,
`dimension` for each scorecard dimension as it is decided, then `done` with the whole scorecard.
A subscriber that comes late gets the current state first. The job row is the state; a
notification (or, failing that, a poll) says when to look again, so a stage that begins and ends
between two looks is not sent: the stages a client sees come in order, but may skip one."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
from litestar.response import ServerSentEventMessage

from gateway.jobs.notifications import JobNotifications
from storage import jobs, scores
from storage.tenancy import Tenant, tenant_tx

__all__ = ["job_events", "score_out"]

_POLL_S = 2.0  # the longest a stream sleeps without a notification
_KEEPALIVE_S = 15.0


def _message(event: str, data: Any) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=event, data=msgspec.json.encode(data).decode())


def score_out(row: scores.ScoreRow) -> dict[str, Any]:
    """A stored scorecard as the API answers it."""
    card: dict[str, Any] = msgspec.to_builtins(row.scorecard)
    out = {"id": str(row.id), "session_id": str(row.session_id) if row.session_id else None}
    if row.upload_id is not None:
        out["upload_id"] = str(row.upload_id)
    return {**out, "created_at": row.created_at.isoformat(), **card}


async def job_events(pool: asyncpg.Pool, tenant: Tenant, job_id: uuid.UUID,
                     notifications: JobNotifications) -> AsyncIterator[ServerSentEventMessage]:
    sent_status: dict[str, Any] | None = None
    sent: dict[str, Any] = {}
    quiet_s = 0.0
    async with notifications.watch(job_id) as changed:
        while True:
            changed.clear()
            async with tenant_tx(pool, tenant) as conn:
                job = await jobs.get_job(conn, job_id)
                score = None
                if job is not None and job.status == "done" and job.progress.get("score_id"):
                    score = await scores.get_score(conn, uuid.UUID(job.progress["score_id"]))
            if job is None:
                yield _message("status", {"job_id": str(job_id), "status": "failed", "stage": None,
                                          "error": "the job no longer exists"})
                return
            status = {"job_id": str(job.id), "status": job.status, "stage": job.progress.get("stage"),
                      "error": job.last_error if job.status != "done" else job.progress.get("message")}
            if "percent" in job.progress:  # an upload's transcription: how much of the audio is done
                status["percent"] = job.progress["percent"]
            if status != sent_status:
                sent_status = status
                yield _message("status", status)
            for key, dimension in (job.progress.get("dimensions") or {}).items():
                if sent.get(key) != dimension:
                    sent[key] = dimension
                    yield _message("dimension", dimension)
            if job.status == "done":
                if score is not None:
                    yield _message("done", score_out(score))
                return
            if job.status == "failed":
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_POLL_S):
                    await changed.wait()
                quiet_s = 0.0
                continue
            quiet_s += _POLL_S
            if quiet_s >= _KEEPALIVE_S:
                quiet_s = 0.0
                yield ServerSentEventMessage(comment="keep-alive")
