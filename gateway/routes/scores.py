"""After the call: its analytics, its scorecard (latest and history, streamed while it is made),
rescoring, a rep's progress, the team's rollup, and the org's scoring settings."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import ServerSentEvent

from coaching.analytics import metrics as call_metrics
from coaching.scorecard import DIMENSION_KEYS, Metric, ScoringConfig
from gateway.auth.caller import CallerDep, TenantDb, require_role
from gateway.errors import ApiError, JobState
from gateway.jobs.progress import job_events, score_out
from storage import curriculum, jobs, scores, sessions
from storage.tenancy import Tenant

__all__ = [
    "get_analytics", "get_progress", "get_score", "get_scoring", "list_scores", "put_scoring", "rescore",
    "score_stream", "job_stream", "team",
]

_SCORE_JOB = "score_session"
_QUEUE_WINDOW_S = 10


class AnalyticsOut(msgspec.Struct):
    metrics: dict[str, Metric]


class RescoreIn(msgspec.Struct):
    session_id: uuid.UUID


class JobOut(msgspec.Struct):
    job_id: uuid.UUID
    status: str


class ScoreList(msgspec.Struct):
    items: list[dict[str, Any]]


Weight = Annotated[float, msgspec.Meta(ge=0, le=10)]


class ScoringIn(msgspec.Struct, forbid_unknown_fields=True):
    weights: dict[Literal["opening", "discovery", "listening", "value", "objections", "closing"], Weight] = {}
    pass_mark: Annotated[int, msgspec.Meta(ge=0, le=100)] = 70


class ScoringOut(msgspec.Struct):
    weights: dict[str, float]
    pass_mark: int


class ProgressOut(msgspec.Struct):
    user_id: uuid.UUID
    modules: list[curriculum.ModuleProgress]
    trend: list[scores.TrendPoint]


class TeamOut(msgspec.Struct):
    period: str
    reps: list[scores.TeamRow]


async def _session(db: Any, session_id: uuid.UUID) -> sessions.SessionRow:
    row = await sessions.get_session(db, session_id)
    if row is None:  # absent, deleted, or not the caller's to see: all look the same
        raise ApiError(404, "not_found", "no such session")
    return row


@get("/api/sessions/{session_id:uuid}/analytics", tags=["scores"],
     summary="Conversation metrics with their reference bands (works during a live call too)")
async def get_analytics(caller: CallerDep, db: TenantDb, session_id: FromPath[uuid.UUID]) -> AnalyticsOut:
    await _session(db, session_id)
    return AnalyticsOut(call_metrics(await sessions.list_transcript(db, session_id)))


@get("/api/sessions/{session_id:uuid}/score", tags=["scores"], summary="The call's latest scorecard",
     description="404 `score_not_ready` (with the job's status) while it is being made; `not_scored` when "
                 "no scoring was queued (the call has not ended, or had nothing to score).")
async def get_score(caller: CallerDep, db: TenantDb, session_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    session = await _session(db, session_id)
    latest = await scores.latest_score(db, session_id)
    job = await jobs.latest_session_job(db, session_id, _SCORE_JOB)
    if latest is not None and (job is None or job.status in ("done", "failed") or job.created_at <= latest.created_at):
        return score_out(latest)
    if job is None and _about_to_be_queued(session):
        raise ApiError(404, "score_not_ready", "scoring is about to start")
    if job is None or (job.status == "done" and latest is None):
        message = (job.progress.get("message") if job else None) or "this call has not been scored"
        raise ApiError(404, "not_scored", message, job=_job_state(job) if job else None)
    raise ApiError(404, "score_not_ready", "the scorecard is not ready yet" if job.status != "failed"
                   else "scoring this call failed; ask for a rescore", job=_job_state(job))


def _about_to_be_queued(session: sessions.SessionRow) -> bool:
    """A call that ran and just ended: its scoring job commits with the end of the call, which can
    land a moment after the rep's socket got `session.ended` (or, for VAPI, with the report)."""
    if session.started_at is None or session.transport == "vapi":
        return False  # VAPI calls are queued when their report arrives, whenever that is
    if session.ended_at is None:
        return session.status == "live"  # ending right now, or still running
    return (datetime.now(UTC) - session.ended_at).total_seconds() < _QUEUE_WINDOW_S


async def _score_job(db: Any, session_id: uuid.UUID) -> jobs.JobRow | None:
    """The call's latest scoring job, waiting up to a few seconds for one about to be queued
    (a page that subscribes as its call ends)."""
    for _ in range(_QUEUE_WINDOW_S * 4):
        job = await jobs.latest_session_job(db, session_id, _SCORE_JOB)
        if job is not None or not _about_to_be_queued(await _session(db, session_id)):
            return job
        await asyncio.sleep(0.25)
    return None


def _job_state(job: jobs.JobRow) -> JobState:
    return JobState(str(job.id), job.status, job.last_error)


@get("/api/sessions/{session_id:uuid}/scores", tags=["scores"], summary="Every scorecard of the call, newest first")
async def list_scores(caller: CallerDep, db: TenantDb, session_id: FromPath[uuid.UUID]) -> ScoreList:
    await _session(db, session_id)
    return ScoreList([score_out(r) for r in await scores.list_scores(db, session_id)])


def _stream(request: Request[Any, Any, Any], tenant: Tenant, job_id: uuid.UUID) -> ServerSentEvent:
    state = request.app.state
    return ServerSentEvent(job_events(state.pool, tenant, job_id, state.job_notifications),
                           headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@get("/api/sessions/{session_id:uuid}/score/stream", tags=["scores"],
     summary="Scoring progress as Server-Sent Events: status, each dimension, then done with the scorecard")
async def score_stream(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb,
                       session_id: FromPath[uuid.UUID]) -> ServerSentEvent:
    await _session(db, session_id)
    job = await _score_job(db, session_id)
    if job is None:
        raise ApiError(404, "not_scored", "no scoring was queued for this call")
    return _stream(request, caller.tenant, job.id)


@get("/api/analyze/{job_id:uuid}/stream", tags=["scores"], summary="A job's progress as Server-Sent Events")
async def job_stream(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb,
                     job_id: FromPath[uuid.UUID]) -> ServerSentEvent:
    if await jobs.get_job(db, job_id) is None:  # row-level security: the org's staff, or the call's rep
        raise ApiError(404, "not_found", "no such job")
    return _stream(request, caller.tenant, job_id)


@post("/api/analyze/score", tags=["scores"], status_code=202,
      summary="Score (again) a finished call: the rep or a coach/admin")
async def rescore(caller: CallerDep, db: TenantDb, data: JSONBody[RescoreIn]) -> JobOut:
    row = await _session(db, data.session_id)
    if row.user_id != caller.user_id and not caller.is_staff:
        raise ApiError(403, "forbidden", "only the rep or a coach/admin can rescore a call")
    if row.status != "ended":
        raise ApiError(409, "call_not_ended", "a call can be scored once it has ended", field="session_id")
    running = await jobs.latest_session_job(db, data.session_id, _SCORE_JOB)
    if running is not None and running.status in ("queued", "running"):
        return JobOut(running.id, running.status)  # already on its way: the same job, not a second
    job_id = await sessions.enqueue_score(db, row.org_id, data.session_id, rescore=True)
    assert job_id is not None  # a rescore has no dedupe key
    return JobOut(job_id, "queued")


@get("/api/progress", tags=["scores"], summary="A rep's curriculum progress and score trend (default: yours)")
async def get_progress(caller: CallerDep, db: TenantDb, user_id: FromQuery[uuid.UUID | None] = None) -> ProgressOut:
    target = user_id or caller.user_id
    if target != caller.user_id and not caller.is_staff:
        raise ApiError(403, "forbidden", "only coaches and admins see other reps' progress")
    modules = await curriculum.list_modules(db, target, caller.org_id)
    return ProgressOut(target, modules, await scores.rep_trend(db, target))


@get("/api/team", tags=["scores"], summary="Each rep's calls, averages, trend and weakest dimension (coach/admin)")
async def team(caller: CallerDep, db: TenantDb, period: FromQuery[Literal["week", "month"]] = "week") -> TeamOut:
    require_role(caller, "coach", "admin")
    return TeamOut(period, await scores.team_rollup(db, caller.org_id, days=7 if period == "week" else 30))


def _scoring_out(config: ScoringConfig) -> ScoringOut:
    return ScoringOut({k: config.weight(k) for k in DIMENSION_KEYS}, config.pass_mark)


@get("/api/orgs/scoring", tags=["orgs"], summary="The org's dimension weights and pass mark (coach/admin)")
async def get_scoring(caller: CallerDep, db: TenantDb) -> ScoringOut:
    require_role(caller, "coach", "admin")  # reps see the pass mark on each scorecard
    return _scoring_out(await scores.get_scoring_config(db, caller.org_id))


@put("/api/orgs/scoring", tags=["orgs"], summary="Set the dimension weights and pass mark (admin)")
async def put_scoring(caller: CallerDep, db: TenantDb, data: JSONBody[ScoringIn]) -> ScoringOut:
    require_role(caller, "admin")
    config = ScoringConfig(weights={str(k): float(v) for k, v in data.weights.items()}, pass_mark=data.pass_mark)
    if sum(config.weight(k) for k in DIMENSION_KEYS) <= 0:
        raise ApiError(400, "invalid_field", "at least one dimension needs a weight above 0", field="weights")
    await scores.set_scoring_config(db, caller.org_id, config)
    return _scoring_out(config)
