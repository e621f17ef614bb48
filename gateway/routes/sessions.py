"""Practice sessions: create one, list and read them (with transcript and events), delete, recording."""

from __future__ import annotations

import struct
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.response import Stream

from coaching.audio.recording import RECORDING_CONTENT_TYPE
from coaching.events import decode_event
from coaching.session_log import Segment
from gateway.auth.caller import CallerDep, TenantDb
from gateway.errors import ApiError
from gateway.routes.personas import persona_view, resolve_persona
from gateway.vapi.assistant import assistant_overrides, transient_assistant
from storage import sessions as store
from storage.blobs import BlobNotFound, get_blob, read_blob

__all__ = [
    "UNSTARTED_HIDDEN_AFTER_S", "create_session", "delete_session", "end_own_session", "get_session",
    "list_session_events", "list_sessions", "recording",
]

# A session nobody started (the socket never said `start`) leaves the default list after this long:
# it is a phantom (a refused or abandoned start), not a call. `status=created` still lists them all.
UNSTARTED_HIDDEN_AFTER_S = 300


class SessionIn(msgspec.Struct):
    persona_id: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    transport: Literal["websocket", "webrtc", "vapi"] = "websocket"


class SessionOut(msgspec.Struct):
    id: uuid.UUID
    persona_id: str
    persona_name: str
    status: str
    transport: str
    ws_url: str
    user_id: uuid.UUID
    rep_name: str | None
    end_reason: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    has_recording: bool
    duration_ms: int | None = None
    score: float | None = None  # the latest scorecard's overall, once scored
    passed: bool | None = None


class VapiStart(msgspec.Struct):
    """What the browser passes to the VAPI web SDK: `vapi.start(assistant, assistantOverrides)`.
    Webhooks find the session by `assistantOverrides.variableValues.sparring_session_id`."""
    assistant: dict[str, Any]
    assistantOverrides: dict[str, Any]
    public_key: str | None
    watch_url: str


class CreatedSession(SessionOut, kw_only=True):
    vapi: VapiStart | None = None


class SessionDetail(SessionOut, kw_only=True):
    persona: dict[str, Any]
    transcript: list[Segment]


class SessionPage(msgspec.Struct):
    items: list[SessionOut]
    next_before: datetime | None


class EventPage(msgspec.Struct):
    items: list[dict[str, Any]]


def _out(row: store.SessionRow) -> dict[str, Any]:
    return dict(
        id=row.id, persona_id=row.persona_id, persona_name=row.persona_snapshot.get("name", row.persona_id),
        status=row.status, transport=row.transport, ws_url=f"/ws/sessions/{row.id}", user_id=row.user_id,
        rep_name=row.rep_name, end_reason=row.end_reason, created_at=row.created_at, started_at=row.started_at,
        ended_at=row.ended_at, has_recording=row.recording_blob_id is not None, duration_ms=row.duration_ms,
        score=row.score, passed=row.passed,
    )


async def _visible(db: asyncpg.Connection, session_id: uuid.UUID) -> store.SessionRow:
    row = await store.get_session(db, session_id)
    if row is None:  # absent, deleted, or another org's / another trainee's: all look the same
        raise ApiError(404, "not_found", "no such session")
    return row


@post("/api/sessions", tags=["sessions"], summary="Create a practice session with a persona")
async def create_session(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb,
                         data: JSONBody[SessionIn]) -> CreatedSession:
    found = await resolve_persona(request, db, data.persona_id)
    if found is None:
        raise ApiError(400, "unknown_persona", f"there is no persona {data.persona_id!r}", field="persona_id")
    settings = request.app.state.settings
    if data.transport == "vapi" and not settings.site_url:
        # Without a public URL VAPI would have to run the persona on its own model, and the browser
        # would carry the persona's whole prompt (its hidden pains and objections) to hand it over.
        raise ApiError(409, "vapi_needs_site_url",
                       "VAPI web calls need SITE_URL, the public address VAPI reaches this server on: the persona's"
                       " brain, the coaching webhooks and the knowledge-base tool run here, so the browser never"
                       " carries the persona's prompt", field="transport")
    limit = settings.max_live_sessions_per_user
    live = await store.count_live_sessions(db, caller.user_id)
    if live >= limit:
        calls = "1 live call" if live == 1 else f"{live} live calls"
        raise ApiError(409, "live_call_limit",
                       f"You already have {calls} (the limit is {limit}). End one under \"Your live calls\" on the"
                       f" practice page (POST /api/sessions/{{id}}/end), or wait: a call nobody is connected to ends"
                       f" by itself within {settings.resume_grace_seconds} seconds.")
    row = await store.create_session(db, org_id=caller.org_id, user_id=caller.user_id, persona_id=data.persona_id,
                                     persona_snapshot=found[0].to_dict(), transport=data.transport)
    vapi = None
    if row.transport == "vapi":
        secret = request.app.state.jwt_secret
        vapi = VapiStart(
            assistant=transient_assistant(found[0], session_id=str(row.id), site_url=settings.site_url, secret=secret),
            assistantOverrides=assistant_overrides(str(row.id), secret), public_key=settings.vapi_public_key,
            watch_url=f"/ws/sessions/{row.id}/watch")
    return CreatedSession(**_out(row), vapi=vapi)


@get("/api/sessions", tags=["sessions"], summary="Sessions, newest first (trainees: their own; coaches: the org's)",
     description="Without `status`, sessions that were never started (`created`) and are more than five minutes"
                 " old are left out: they are abandoned or refused starts, not calls. `status=created` lists them.")
async def list_sessions(
    caller: CallerDep, db: TenantDb,
    status: FromQuery[Literal["created", "live", "ended"] | None] = None,
    persona_id: FromQuery[str | None] = None,
    user_id: FromQuery[uuid.UUID | None] = None,
    before: FromQuery[datetime | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    min_score: Annotated[float | None, Parameter(ge=0, le=100)] = None,
    max_score: Annotated[float | None, Parameter(ge=0, le=100)] = None,
) -> SessionPage:
    rows = await store.list_sessions(db, status=status, user_id=user_id, persona_id=persona_id, limit=limit,
                                     before=before, min_score=min_score, max_score=max_score,
                                     unstarted_for_s=None if status else UNSTARTED_HIDDEN_AFTER_S)
    items = [SessionOut(**_out(r)) for r in rows]
    return SessionPage(items, items[-1].created_at if len(items) == limit else None)


@get("/api/sessions/{session_id:uuid}", tags=["sessions"], summary="One session with its transcript")
async def get_session(caller: CallerDep, db: TenantDb, session_id: FromPath[uuid.UUID]) -> SessionDetail:
    row = await _visible(db, session_id)
    transcript = await store.list_transcript(db, session_id)
    return SessionDetail(**_out(row), persona=persona_view(caller, row.persona_snapshot), transcript=transcript)


@get("/api/sessions/{session_id:uuid}/events", tags=["sessions"], summary="The session's events in seq order")
async def list_session_events(
    caller: CallerDep, db: TenantDb, session_id: FromPath[uuid.UUID],
    after_seq: Annotated[int, Parameter(ge=0)] = 0,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
) -> EventPage:
    await _visible(db, session_id)
    rows = await store.list_events(db, session_id, after_seq=after_seq, limit=limit)
    return EventPage([msgspec.to_builtins(decode_event(r.payload)) for r in rows])


@delete("/api/sessions/{session_id:uuid}", tags=["sessions"], summary="Delete a session (soft)", status_code=204)
async def delete_session(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb,
                         session_id: FromPath[uuid.UUID]) -> None:
    row = await _visible(db, session_id)
    if row.user_id != caller.user_id and caller.role != "admin":
        raise ApiError(403, "forbidden", "only the rep or an admin can delete a session")
    call = request.app.state.calls.get(str(session_id))
    if call is not None:
        await call.end("deleted")
    await store.soft_delete_session(db, session_id)


@post("/api/sessions/{session_id:uuid}/end", tags=["sessions"], status_code=200,
      summary="End one's own live (or never-started) call, wherever it runs")
async def end_own_session(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb,
                          session_id: FromPath[uuid.UUID]) -> SessionOut:
    """The rep ends a call they left running (another window, a dropped connection): it ends
    `rep_ended` as if they had pressed End call. A call that never started just ends. Ending an
    ended call changes nothing."""
    row = await _visible(db, session_id)
    if row.user_id != caller.user_id:
        raise ApiError(403, "forbidden", "only the rep whose call it is can end it")
    if row.status == "created":
        await store.end_session(db, session_id, "rep_ended")
    elif row.status == "live":
        if row.transport == "vapi":
            raise ApiError(409, "vapi_call", "a VAPI call ends when its phone or web call hangs up")
        await request.app.state.calls.end_call(row, "rep_ended")
    return SessionOut(**_out(await _visible(db, session_id)))


def _wav_header(data_bytes: int, *, rate: int = 16000, channels: int = 2) -> bytes:
    byte_rate = rate * channels * 2
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, channels, rate, byte_rate, channels * 2, 16) + b"data" + struct.pack("<I", data_bytes))


@get("/api/sessions/{session_id:uuid}/recording", tags=["sessions"],
     summary="The call's audio as WAV: rep left, persona right")
async def recording(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb,
                    session_id: FromPath[uuid.UUID]) -> Stream:
    row = await _visible(db, session_id)
    if row.recording_blob_id is None:
        raise ApiError(404, "no_recording", "this session has no recording")
    try:
        blob = await get_blob(db, row.recording_blob_id)
    except BlobNotFound:
        raise ApiError(404, "no_recording", "this session has no recording") from None
    if blob.content_type != RECORDING_CONTENT_TYPE:
        raise ApiError(404, "no_recording", "this session has no playable recording")
    pool, tenant = request.app.state.pool, caller.tenant

    async def body() -> AsyncIterator[bytes]:
        yield _wav_header(blob.size_bytes)
        async for chunk in read_blob(pool, tenant, blob.id):
            yield chunk

    return Stream(body(), media_type="audio/wav", headers={"Content-Length": str(44 + blob.size_bytes)})
