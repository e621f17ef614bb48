"""The jobs of an uploaded call: `transcribe_upload` (decode the stored audio in chunks, transcribe
each, label the speakers, then score) and `score_upload` (score again after the rep fixed the
speakers). Progress goes on the job row for the SSE stream: `stage` (received, transcribing,
labelling, scoring, done), `percent` of the audio transcribed, `dimensions` as each is decided,
and `score_id` at the end.

Each chunk's segments commit with the job's `transcribed_ms`, so a job taken up again after a
restart (its lease ran out) resumes after the last chunk it finished rather than from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from coaching.audio.decode import decode_chunks
from coaching.providers.stt.base import RecordingSTT, TimedWord
from coaching.providers.stt.retry import TranscriptionFailed
from coaching.scorecard import Dimension, Scorer
from coaching.speakers import label_speakers, speech_turns, split_by_turns, voice_features
from gateway.jobs.runner import JobContext, PermanentJobError
from storage import jobs, scores, uploads
from storage.blobs import BlobNotFound, read_blob
from storage.tenancy import tenant_tx

__all__ = ["SCORE_KIND", "TRANSCRIBE_KIND", "ScoreUpload", "TranscribeUpload"]

log = logging.getLogger(__name__)

TRANSCRIBE_KIND = "transcribe_upload"
SCORE_KIND = "score_upload"
_RATE = 16


def _upload_id(context: JobContext) -> uuid.UUID:
    try:
        return uuid.UUID(str(context.job.payload.get("upload_id")))
    except ValueError:
        raise PermanentJobError("the job names no upload") from None


async def _load(context: JobContext, upload_id: uuid.UUID) -> uploads.UploadRow:
    async with tenant_tx(context.runner.pool, context.tenant) as conn:
        upload = await uploads.get_upload(conn, upload_id)
    if upload is None:
        raise PermanentJobError("the upload no longer exists")
    return upload


async def _failed(context: JobContext, upload_id: uuid.UUID, reason: str) -> None:
    with contextlib.suppress(Exception):  # the job's own failure is recorded by the runner either way
        async with tenant_tx(context.runner.pool, context.tenant) as conn:
            await uploads.set_status(conn, upload_id, "failed", error=reason[:300])


async def _score(context: JobContext, scorer: Scorer, upload: uploads.UploadRow) -> None:
    pool = context.runner.pool
    async with tenant_tx(pool, context.tenant) as conn:
        segments = await uploads.list_transcript(conn, upload.id)
        config = await scores.get_scoring_config(conn, upload.org_id)
    if not any(s.speaker == "rep" and s.text.strip() for s in segments):
        async with tenant_tx(pool, context.tenant) as conn:
            await uploads.set_status(conn, upload.id, "transcribed")
            await context.finish(conn, {"stage": "skipped",
                                        "message": "the recording has nothing the rep said to score"})
        return
    async with tenant_tx(pool, context.tenant) as conn:
        await uploads.set_status(conn, upload.id, "scoring")
        await jobs.set_job_progress(conn, context.job.id, {"stage": "scoring", "scorer": scorer.name, "dimensions": {}})
    decided: dict[str, Any] = {}

    async def on_dimension(dimension: Dimension) -> None:
        decided[dimension.key] = msgspec.to_builtins(dimension)
        await context.progress({"dimensions": decided})

    card = await scorer.score(segments, persona=None, config=config, on_dimension=on_dimension)
    async with tenant_tx(pool, context.tenant) as conn:
        await conn.execute("SELECT 1 FROM call_uploads WHERE id = $1 FOR UPDATE", upload.id)
        score_id = await scores.insert_score(conn, org_id=upload.org_id, user_id=upload.user_id, upload_id=upload.id,
                                             card=card, job_id=context.job.id)
        await uploads.set_status(conn, upload.id, "scored")
        await scores.record_module_progress(conn, org_id=upload.org_id, user_id=upload.user_id, card=card)
        await context.finish(conn, {"stage": "done", "score_id": str(score_id)})


async def _spool(context: JobContext, blob_id: uuid.UUID) -> Path:
    """The stored audio in a temporary file (FFmpeg wants to seek), written chunk by chunk."""
    handle, name = tempfile.mkstemp(prefix="sparring-upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            async for chunk in read_blob(context.runner.pool, context.tenant, blob_id):
                await asyncio.to_thread(out.write, chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def _mono_segments(pcm: np.ndarray, start_ms: int, found: list[Any]) -> list[uploads.NewSegment]:
    """A mono chunk's words regrouped by the speech turns of its audio, each with a voice summary."""
    words: list[TimedWord] = []
    for segment in found:
        words.extend(segment.words or [TimedWord(segment.start_ms, segment.end_ms, segment.text)])
    pieces = split_by_turns(words, speech_turns(pcm, offset_ms=start_ms))
    out = []
    for i, piece in enumerate(pieces):
        audio = pcm[max(0, (piece.start_ms - start_ms) * _RATE):max(0, (piece.end_ms - start_ms) * _RATE)]
        out.append(uploads.NewSegment(f"u{start_ms:010d}-m-{i:03d}", "unknown", piece.text, piece.start_ms,
                                      max(piece.start_ms, piece.end_ms), voice_features(audio)))
    return out


class TranscribeUpload:
    """Args:
        stt: the recorded-call transcriber (retries and timeouts around it already).
        scorer: the configured scorer.
        chunk_ms: audio per transcription request (and per resume point).
    """

    kind = TRANSCRIBE_KIND

    def __init__(self, stt: RecordingSTT, scorer: Scorer, *, chunk_ms: int = 60_000) -> None:
        self.stt, self.scorer, self.chunk_ms = stt, scorer, chunk_ms

    async def __call__(self, context: JobContext) -> None:
        upload_id = _upload_id(context)
        try:
            await self._run(context, upload_id)
        except TranscriptionFailed as exc:
            await _failed(context, upload_id, str(exc))
            raise PermanentJobError(f"transcription failed: {exc}") from exc
        except PermanentJobError as exc:
            await _failed(context, upload_id, str(exc))
            raise
        except Exception as exc:
            if context.job.attempts >= context.job.max_attempts:
                await _failed(context, upload_id, f"{type(exc).__name__}: {exc}")
            raise

    async def _run(self, context: JobContext, upload_id: uuid.UUID) -> None:
        upload = await _load(context, upload_id)
        if upload.blob_id is None:
            raise PermanentJobError("the upload's audio is gone")
        duration_ms = max(1, upload.duration_ms or 1)
        stereo = upload.channels == 2
        async with tenant_tx(context.runner.pool, context.tenant) as conn:
            job = await jobs.get_job(conn, context.job.id)
            resume_ms = int((job.progress if job else {}).get("transcribed_ms") or 0)
            await uploads.replace_transcript(conn, upload_id, from_ms=resume_ms)  # a half-stored chunk goes
            await uploads.set_status(conn, upload_id, "transcribing")
            await jobs.set_job_progress(conn, context.job.id, {
                "stage": "received" if resume_ms == 0 else "transcribing",
                "percent": min(99, resume_ms * 100 // duration_ms), "resumed_from_ms": resume_ms})
        try:
            path = await _spool(context, upload.blob_id)
        except BlobNotFound:
            raise PermanentJobError("the upload's audio is gone") from None
        try:
            await self._transcribe(context, upload, path, resume_ms, duration_ms, stereo)
        finally:
            path.unlink(missing_ok=True)
        await self._label(context, upload, stereo)
        await _score(context, self.scorer, await _load(context, upload_id))

    async def _transcribe(self, context: JobContext, upload: uploads.UploadRow, path: Path, resume_ms: int,
                          duration_ms: int, stereo: bool) -> None:
        chunks: Iterator[tuple[int, np.ndarray]] = decode_chunks(path, channels=2 if stereo else 1,
                                                                 chunk_ms=self.chunk_ms, start_ms=resume_ms)
        rep_index = 1 if upload.rep_channel == "right" else 0
        try:
            while True:
                item = await asyncio.to_thread(next, chunks, None)
                if item is None:
                    break
                start_ms, pcm = item
                new: list[uploads.NewSegment] = []
                if stereo:
                    for channel in (0, 1):
                        mono = np.ascontiguousarray(pcm[:, channel])
                        found = await self.stt.transcribe_timed(mono.tobytes(), offset_ms=start_ms, words=False)
                        speaker = "rep" if channel == rep_index else "buyer"
                        new += [uploads.NewSegment(f"u{start_ms:010d}-{channel}-{i:03d}", speaker, s.text, s.start_ms,
                                                   s.end_ms) for i, s in enumerate(found)]
                else:
                    mono = np.ascontiguousarray(pcm[:, 0])
                    found = await self.stt.transcribe_timed(mono.tobytes(), offset_ms=start_ms, words=True)
                    new = await asyncio.to_thread(_mono_segments, mono, start_ms, found)
                end_ms = start_ms + pcm.shape[0] // _RATE
                async with tenant_tx(context.runner.pool, context.tenant) as conn:
                    await uploads.add_segments(conn, upload.org_id, upload.id, new)
                    await jobs.set_job_progress(conn, context.job.id, {
                        "stage": "transcribing", "percent": min(100, end_ms * 100 // duration_ms),
                        "transcribed_ms": end_ms})
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                await asyncio.to_thread(close)

    async def _label(self, context: JobContext, upload: uploads.UploadRow, stereo: bool) -> None:
        async with tenant_tx(context.runner.pool, context.tenant) as conn:
            await uploads.set_status(conn, upload.id, "transcribed")
            await jobs.set_job_progress(conn, context.job.id, {"stage": "labelling", "percent": 100})
            if stereo:
                await uploads.set_speakers(conn, upload.id, "channels", "channels")
                return
            rows = await uploads.segment_voices(conn, upload.id)
        labels, method = await asyncio.to_thread(
            label_speakers, [r[1] for r in rows], [r[3] for r in rows], [r[2] for r in rows])
        async with tenant_tx(context.runner.pool, context.tenant) as conn:
            await uploads.label_segments(conn, upload.id, {r[0]: label for r, label in zip(rows, labels, strict=True)})
            await uploads.set_speakers(conn, upload.id, "inferred", method)
            await jobs.set_job_progress(conn, context.job.id, {"speaker_method": method})


class ScoreUpload:
    """Scores an uploaded call again (after its speakers were swapped or fixed)."""

    kind = SCORE_KIND

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    async def __call__(self, context: JobContext) -> None:
        upload_id = _upload_id(context)
        upload = await _load(context, upload_id)
        await _score(context, self.scorer, upload)
