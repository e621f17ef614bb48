"""Recorded calls: upload one (streamed into a blob as it arrives, recognised by its bytes, checked
to decode whole), (re)transcribe it, list and read uploads with their transcript and speakers,
fix the speakers (which rescores), its scorecard, its audio, and delete it with its audio."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.response import Stream
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from coaching.audio.decode import CONTENT_TYPES, AudioInfo, UndecodableAudio, probe, sniff
from gateway.auth.caller import Caller, CallerDep, TenantDb, authenticate
from gateway.errors import ApiError, JobState
from gateway.jobs.progress import score_out
from gateway.jobs.uploads import SCORE_KIND, TRANSCRIBE_KIND
from gateway.ratelimit import limit_request
from storage import jobs, scores
from storage import uploads as store
from storage.blobs import BlobNotFound, BlobWriter, get_blob, read_blob
from storage.database import acquire
from storage.tenancy import tenant_tx

__all__ = [
    "delete_upload", "fix_speakers", "get_upload", "list_uploads", "transcribe", "upload", "upload_recording",
    "upload_score",
]

_JOB_KINDS = (TRANSCRIBE_KIND, SCORE_KIND)
_SNIFF_BYTES = 16
_MIN_MS = 2000
_FORMATS = "WAV, MP3, M4A/AAC, OGG/Opus, WebM or FLAC"
_FORM_SLACK_BYTES = 64 * 1024  # the form's other fields and boundaries around the file


class UploadCreated(msgspec.Struct):
    id: uuid.UUID
    job_id: uuid.UUID
    status: str


class JobOut(msgspec.Struct):
    job_id: uuid.UUID
    status: str


class UploadJob(msgspec.Struct):
    id: uuid.UUID
    kind: str
    status: str
    stage: str | None
    percent: int | None
    error: str | None


class Speakers(msgspec.Struct):
    mode: str | None  # channels, inferred, confirmed
    method: str | None  # channels, voice-clustering, pauses, or by hand
    rep_channel: str | None


class UploadOut(msgspec.Struct):
    id: uuid.UUID
    title: str | None
    filename: str
    content_type: str
    size_bytes: int
    status: str
    error: str | None
    duration_ms: int | None
    channels: int | None
    speakers: Speakers
    user_id: uuid.UUID
    rep_name: str | None
    created_at: datetime
    has_recording: bool
    score: float | None
    passed: bool | None


class TranscriptSegment(msgspec.Struct, frozen=True):
    segment_id: str
    speaker: str
    text: str
    start_ms: int
    end_ms: int
    inferred: bool  # the speaker was guessed from the audio (not channels, not confirmed by a person)


class UploadDetail(UploadOut, kw_only=True):
    transcript: list[TranscriptSegment]
    job: UploadJob | None


class UploadPage(msgspec.Struct):
    items: list[UploadOut]
    next_before: datetime | None


class TranscribeIn(msgspec.Struct):
    upload_id: uuid.UUID


class SpeakersIn(msgspec.Struct, forbid_unknown_fields=True):
    """`swap`: rep and buyer trade places everywhere; `segments`: a speaker per segment id (after the swap)."""

    swap: bool = False
    segments: dict[Annotated[str, msgspec.Meta(max_length=64)], Literal["rep", "buyer"]] = {}


def _out(row: store.UploadRow) -> dict[str, Any]:
    return dict(id=row.id, title=row.title, filename=row.filename, content_type=row.content_type,
                size_bytes=row.size_bytes, status=row.status, error=row.error, duration_ms=row.duration_ms,
                channels=row.channels, speakers=Speakers(row.speakers, row.speaker_method, row.rep_channel),
                user_id=row.user_id, rep_name=row.rep_name, created_at=row.created_at,
                has_recording=row.blob_id is not None, score=row.score, passed=row.passed)


def _job_out(job: jobs.JobRow | None) -> UploadJob | None:
    if job is None:
        return None
    percent = job.progress.get("percent")
    return UploadJob(job.id, job.kind, job.status, job.progress.get("stage"),
                     int(percent) if isinstance(percent, int | float) else None, job.last_error)


async def _visible(db: Any, upload_id: uuid.UUID) -> store.UploadRow:
    row = await store.get_upload(db, upload_id)
    if row is None:  # absent, deleted, or not the caller's to see: all look the same
        raise ApiError(404, "not_found", "no such upload")
    return row


def _field_text(value: bytearray, name: str, max_chars: int) -> str:
    try:
        text = value.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_field", f"{name} is not UTF-8 text", field=name) from None
    if "\x00" in text:
        raise ApiError(400, "nul_character", "text may not contain NUL (\\u0000) characters", field=name)
    if len(text) > max_chars:
        raise ApiError(400, "invalid_field", f"{name} may be at most {max_chars} characters", field=name)
    return text


class _Receiver:
    """The form as it streams in: the `file` field into a blob and a temporary file (for decoding),
    never whole in memory; the small fields kept."""

    def __init__(self, request: Request[Any, Any, Any], caller: Caller, max_bytes: int) -> None:
        self.request, self.caller, self.max_bytes = request, caller, max_bytes
        self.fields: dict[str, bytearray] = {}
        self.filename = "recording"
        self.format: str | None = None
        self.size = 0
        self.blob: BlobWriter | None = None
        self.path: Path | None = None
        self._head = bytearray()
        self._file: Any = None

    async def _file_bytes(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise ApiError(413, "upload_too_large",
                           f"the file is larger than {self.max_bytes // (1024 * 1024)} MB; upload a shorter or "
                           "more compressed recording", field="file")
        if self.format is None:
            self._head += data
            if len(self._head) < _SNIFF_BYTES:
                return
            await self._start(bytes(self._head))
            data, self._head = bytes(self._head), bytearray()
        assert self.blob is not None
        await self.blob.write(data)
        await asyncio.to_thread(self._file.write, data)

    async def _start(self, head: bytes) -> None:
        found = sniff(head)
        if found is None:
            raise ApiError(415, "unsupported_audio", f"the file is not audio we can read; send {_FORMATS}",
                           field="file")
        self.format = found
        handle, name = tempfile.mkstemp(prefix="sparring-upload-")
        self.path, self._file = Path(name), os.fdopen(handle, "wb")
        self.blob = BlobWriter(self.request.app.state.pool, self.caller.tenant, content_type=CONTENT_TYPES[found])
        await self.blob.__aenter__()

    async def receive(self) -> None:
        content_type, options = parse_options_header(self.request.headers.get("content-type", ""))
        if content_type != "multipart/form-data" or not options.get("boundary"):
            raise ApiError(400, "bad_request", "send the recording as multipart/form-data with a `file` field")
        parser = PushMultipartParser(options["boundary"], max_segment_count=8)
        current: MultipartSegment | None = None
        seen_file = False
        try:
            async for chunk in self.request.stream():
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        current = event
                        if current.name == "file":
                            if seen_file:
                                raise ApiError(400, "invalid_field", "send one file per upload", field="file")
                            seen_file = True
                            self.filename = (current.filename or "recording").replace("\x00", "")[:200] or "recording"
                    elif event is None:
                        current = None
                    elif current is not None and current.name == "file":
                        await self._file_bytes(bytes(event))
                    elif current is not None and current.name in ("title", "rep_channel"):
                        field = self.fields.setdefault(current.name, bytearray())
                        field += event
                        if len(field) > 4096:
                            raise ApiError(400, "invalid_field", f"{current.name} is too long", field=current.name)
            parser.close()
        except MultipartError:
            raise ApiError(400, "bad_request", "the multipart body is malformed or incomplete") from None
        if not seen_file:
            raise ApiError(400, "missing_field", "add the recording as the form field `file`", field="file")
        if self.size == 0:
            raise ApiError(400, "empty_file", "the file is empty", field="file")
        if self.format is None:  # shorter than the sniffing window
            await self._start(bytes(self._head))
            assert self.blob is not None
            await self.blob.write(bytes(self._head))
            await asyncio.to_thread(self._file.write, bytes(self._head))

    async def finish(self, failed: BaseException | None) -> None:
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
        if self.blob is not None:
            if failed is None:
                await self.blob.__aexit__(None, None, None)
            else:
                with contextlib.suppress(Exception):
                    await self.blob.__aexit__(type(failed), failed, None)

    async def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    async def drop_blob(self) -> None:
        if self.blob is not None:
            async with tenant_tx(self.request.app.state.pool, self.caller.tenant) as conn:
                await conn.execute("DELETE FROM blobs WHERE id = $1", self.blob.id)


def _check_length(info: AudioInfo, max_s: int) -> None:
    if info.duration_ms < _MIN_MS:
        raise ApiError(400, "audio_too_short", f"the recording is {info.duration_ms / 1000:.1f} s long; "
                       f"a call needs at least {_MIN_MS // 1000} s", field="file")
    if info.duration_ms > max_s * 1000:
        raise ApiError(400, "audio_too_long", f"the recording is {info.duration_ms / 1000:.0f} s long; "
                       f"the most taken is {max_s} s ({max_s / 60:g} minutes)", field="file")


@post("/api/analyze/upload", tags=["uploads"], status_code=201, request_max_body_size=None,
      summary="Upload a recorded call (multipart: file, optional title and rep_channel); it is then transcribed, "
              "its speakers labelled and scored",
      description="Formats are recognised by their bytes: WAV, MP3, M4A/AAC, OGG/Opus, WebM, FLAC (else 415). "
                  "413 over MAX_UPLOAD_BYTES; 400 for an empty, truncated or undecodable file and for audio under "
                  "2 s or over MAX_UPLOAD_SECONDS. `rep_channel` (left or right) says which side of a stereo "
                  "recording is the rep. Follow the job at /api/analyze/{job_id}/stream.")
async def upload(request: Request[Any, Any, Any]) -> UploadCreated:
    state = request.app.state
    settings = state.settings
    async with acquire(state.pool) as conn, conn.transaction():
        caller = await authenticate(request, conn)
    await limit_request(request, "upload", str(caller.user_id))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes + _FORM_SLACK_BYTES:
        raise ApiError(413, "upload_too_large", f"the file is larger than {settings.max_upload_bytes // (1024 * 1024)}"
                       " MB; upload a shorter or more compressed recording", field="file")
    receiver = _Receiver(request, caller, settings.max_upload_bytes)
    failure: BaseException | None = None
    try:
        try:
            await receiver.receive()
        except BaseException as exc:
            failure = exc
            raise
        finally:
            await receiver.finish(failure)
        title = _field_text(receiver.fields["title"], "title", 200) or None if "title" in receiver.fields else None
        rep_channel = _field_text(receiver.fields.get("rep_channel", bytearray()), "rep_channel", 10).lower() or None
        if rep_channel not in (None, "left", "right"):
            raise ApiError(400, "invalid_field", "rep_channel is left or right", field="rep_channel")
        assert receiver.path is not None and receiver.format is not None and receiver.blob is not None
        try:
            info = await asyncio.to_thread(probe, receiver.path, receiver.format)
        except UndecodableAudio as exc:
            raise ApiError(400, "undecodable_audio", str(exc), field="file") from None
        _check_length(info, settings.max_upload_seconds)
        async with tenant_tx(state.pool, caller.tenant) as conn:
            row = await store.create_upload(
                conn, org_id=caller.org_id, user_id=caller.user_id, filename=receiver.filename, title=title,
                content_type=CONTENT_TYPES[receiver.format], size_bytes=receiver.size, blob_id=receiver.blob.id,
                duration_ms=info.duration_ms, channels=info.speaker_channels,
                rep_channel=(rep_channel or "left") if info.speaker_channels == 2 else None)
            job_id = await jobs.enqueue_job(conn, caller.org_id, TRANSCRIBE_KIND, {"upload_id": str(row.id)},
                                            dedupe_key=str(row.id), upload_id=row.id, max_attempts=5)
        assert job_id is not None
        return UploadCreated(row.id, job_id, row.status)
    except BaseException:
        with contextlib.suppress(Exception):
            await receiver.drop_blob()
        raise
    finally:
        await receiver.discard()


@post("/api/analyze/transcribe", tags=["uploads"], status_code=202,
      summary="Transcribe an upload (again), then label and score it; the running job if one is on its way")
async def transcribe(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb,
                     data: JSONBody[TranscribeIn]) -> JobOut:
    await limit_request(request, "transcribe", str(caller.user_id))
    row = await _visible(db, data.upload_id)
    if row.user_id != caller.user_id and not caller.is_staff:
        raise ApiError(403, "forbidden", "only the rep or a coach/admin can transcribe an upload")
    if row.blob_id is None:
        raise ApiError(409, "no_recording", "the upload's audio is gone; upload it again", field="upload_id")
    running = await jobs.latest_upload_job(db, row.id, _JOB_KINDS)
    if running is not None and running.status in ("queued", "running"):
        return JobOut(running.id, running.status)
    job_id = await jobs.enqueue_job(db, row.org_id, TRANSCRIBE_KIND, {"upload_id": str(row.id)}, upload_id=row.id)
    assert job_id is not None  # no dedupe key
    await store.set_status(db, row.id, "uploaded")
    return JobOut(job_id, "queued")


@get("/api/uploads", tags=["uploads"], summary="Uploaded calls, newest first (trainees: their own; staff: the org's)")
async def list_uploads(caller: CallerDep, db: TenantDb, user_id: FromQuery[uuid.UUID | None] = None,
                       before: FromQuery[datetime | None] = None,
                       limit: Annotated[int, Parameter(ge=1, le=200)] = 50) -> UploadPage:
    rows = await store.list_uploads(db, user_id=user_id, limit=limit, before=before)
    items = [UploadOut(**_out(r)) for r in rows]
    return UploadPage(items, items[-1].created_at if len(items) == limit else None)


@get("/api/uploads/{upload_id:uuid}", tags=["uploads"],
     summary="One upload: status, duration, speakers, transcript and its latest job")
async def get_upload(caller: CallerDep, db: TenantDb, upload_id: FromPath[uuid.UUID]) -> UploadDetail:
    # The job first: each statement reads what is committed when it starts, and a job commits
    # `done` with the status and scorecard it produced, so a finished job is never shown beside
    # the status it had before.
    job = await jobs.latest_upload_job(db, upload_id, _JOB_KINDS)
    row = await _visible(db, upload_id)
    inferred = row.speakers == "inferred"
    transcript = [TranscriptSegment(s.segment_id, s.speaker, s.text, s.start_ms, s.end_ms, inferred)
                  for s in await store.list_transcript(db, upload_id)]
    return UploadDetail(**_out(row), transcript=transcript, job=_job_out(job))


@get("/api/uploads/{upload_id:uuid}/score", tags=["uploads"], summary="The upload's latest scorecard",
     description="The same shape as a session's. 404 `score_not_ready` (with the job's status) while it is being "
                 "made; `not_scored` when the recording had nothing to score.")
async def upload_score(caller: CallerDep, db: TenantDb, upload_id: FromPath[uuid.UUID]) -> dict[str, Any]:
    job = await jobs.latest_upload_job(db, upload_id, _JOB_KINDS)  # first, as in get_upload
    await _visible(db, upload_id)
    latest = await scores.latest_upload_score(db, upload_id)
    if latest is not None and (job is None or job.status in ("done", "failed") or job.created_at <= latest.created_at):
        return score_out(latest)
    state = JobState(str(job.id), job.status, job.last_error) if job else None
    if job is None or job.status == "done":
        message = (job.progress.get("message") if job else None) or "this recording has not been scored"
        raise ApiError(404, "not_scored", message, job=state)
    raise ApiError(404, "score_not_ready", "the scorecard is not ready yet" if job.status != "failed"
                   else f"the recording could not be processed: {job.last_error}", job=state)


@patch("/api/uploads/{upload_id:uuid}/speakers", tags=["uploads"], status_code=202,
       summary="Swap the two speakers or fix segments' speakers; the call is scored again")
async def fix_speakers(caller: CallerDep, db: TenantDb, upload_id: FromPath[uuid.UUID],
                       data: JSONBody[SpeakersIn]) -> JobOut:
    row = await _visible(db, upload_id)
    if row.user_id != caller.user_id and not caller.is_staff:
        raise ApiError(403, "forbidden", "only the rep or a coach/admin can change the speakers")
    if not data.swap and not data.segments:
        raise ApiError(400, "invalid_field", "say what to change: swap, or segments", field="swap")
    job = await jobs.latest_upload_job(db, upload_id, _JOB_KINDS)
    if job is not None and job.status in ("queued", "running"):
        raise ApiError(409, "busy", "the recording is still being processed; try again when it is done",
                       job=JobState(str(job.id), job.status, job.last_error))
    if not await store.list_transcript(db, upload_id):
        raise ApiError(409, "not_transcribed", "the recording has no transcript yet")
    if data.swap:
        await store.swap_speakers(db, upload_id)
    if data.segments:
        found = await store.label_segments(db, upload_id, dict(data.segments))
        if found != len(data.segments):
            raise ApiError(400, "invalid_field", "some segment ids are not in this transcript", field="segments")
    await store.set_speakers(db, upload_id, "confirmed", "by hand" if row.speakers != "channels" else "channels")
    job_id = await jobs.enqueue_job(db, row.org_id, SCORE_KIND, {"upload_id": str(upload_id)}, upload_id=upload_id)
    assert job_id is not None
    return JobOut(job_id, "queued")


@get("/api/uploads/{upload_id:uuid}/recording", tags=["uploads"], summary="The uploaded audio as it was sent")
async def upload_recording(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb,
                           upload_id: FromPath[uuid.UUID]) -> Stream:
    row = await _visible(db, upload_id)
    if row.blob_id is None:
        raise ApiError(404, "no_recording", "this upload's audio is gone")
    try:
        blob = await get_blob(db, row.blob_id)
    except BlobNotFound:
        raise ApiError(404, "no_recording", "this upload's audio is gone") from None
    pool, tenant = request.app.state.pool, caller.tenant

    async def body() -> AsyncIterator[bytes]:
        async for chunk in read_blob(pool, tenant, blob.id):
            yield chunk

    return Stream(body(), media_type=blob.content_type, headers={"Content-Length": str(blob.size_bytes)})


@delete("/api/uploads/{upload_id:uuid}", tags=["uploads"], status_code=204,
        summary="Delete an upload with its audio, transcript and scores")
async def delete_upload(caller: CallerDep, db: TenantDb, upload_id: FromPath[uuid.UUID]) -> None:
    row = await _visible(db, upload_id)
    if row.user_id != caller.user_id and caller.role != "admin":
        raise ApiError(403, "forbidden", "only the rep or an admin can delete an upload")
    await store.delete_upload(db, upload_id)
