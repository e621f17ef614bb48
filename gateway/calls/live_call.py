"""A live call owned by this process: numbers its events, delivers them, persists them, records it.

One LiveCall per session per process. Its events get their seq here (one writer per session),
are kept in a short in-memory log for resuming clients, go to every attached client through its
outbox, and are appended to Postgres by the call's EventWriter.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Callable

import asyncpg
import msgspec

from coaching.audio.pcm import PIPELINE_RATE, Resampler
from coaching.audio.recording import RECORDING_CONTENT_TYPE, StereoRecorder
from coaching.brains.base import Turn
from coaching.call import OUTPUT_RATE, CallPipeline
from coaching.events import (
    PROTOCOL_VERSION, AudioFormat, Event, ServerMessage, SessionEnded, SessionStarted, TranscriptFinal, encode,
)
from coaching.hints import HintEngine
from coaching.latency import LatencyObserver
from coaching.persona import Persona
from gateway.calls.outbox import Outbox
from gateway.calls.services import CallServices
from storage.blobs import BlobWriter
from storage.event_writer import EventWriter
from storage.sessions import EventRow, SegmentRow, SessionRow, end_session, set_recording
from storage.tenancy import Tenant, tenant_tx

__all__ = ["LiveCall"]

log = logging.getLogger(__name__)
_MEMORY_EVENTS = 1000  # older events are replayed from Postgres


class LiveCall:
    """Args:
        session: the session row (status live).
        persona: the persona snapshot the call uses.
        services: providers and limits.
        pool: the app pool.
        writer: the process's event writer.
        last_seq: the highest seq already in the log (0 for a new call).
        history: the conversation so far (rebuilt from events when a call resumes here).
        elapsed_s: how long the call has been running already.
        record: whether to record the call's audio.
        on_closed: called once the call has ended and let go of everything.
    """

    def __init__(self, *, session: SessionRow, persona: Persona, services: CallServices, pool: asyncpg.Pool,
                 writer: EventWriter, last_seq: int, history: list[Turn], elapsed_s: float, record: bool,
                 on_closed: Callable[["LiveCall"], None]) -> None:
        self.session = session
        self.session_id = str(session.id)
        self.persona = persona
        self.tenant = Tenant(org_id=session.org_id, user_id=session.user_id, role="system")
        self._services, self._pool, self._on_closed = services, pool, on_closed
        self._seq = last_seq
        self._log: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=_MEMORY_EVENTS)
        self._writer = writer
        self._started = time.monotonic() - elapsed_s
        self._last_activity = time.monotonic()
        self.rep: Outbox | None = None
        self.watchers: set[Outbox] = set()
        self.ending = False  # end() or suspend() has begun
        self._sealed = False  # session.ended is out: nothing more is published
        self.ended = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._grace: asyncio.Task | None = None
        self._record = record
        self._recorder = StereoRecorder()
        self._recording: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._persona_to_16k = Resampler(OUTPUT_RATE, PIPELINE_RATE)
        self._hints = HintEngine(self.session_id)
        self._latency = LatencyObserver(call_started_ms=int((time.time() - elapsed_s) * 1000),
                                        silence_ms=services.options.silence_ms)
        self.pipeline = CallPipeline(
            session_id=self.session_id, persona=persona, brain=services.brain, stt=services.stt, tts=services.tts,
            emit=self.publish, send_audio=self._send_audio, on_end=self._end_soon, history=history,
            options=services.options, call_started_at=self._started,
            on_rep_audio=self._record_rep if record else None, on_activity=self._activity,
        )

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self, *, input_rate_hz: int, greet: bool) -> None:
        if self._record:
            self._tasks.append(asyncio.create_task(self._write_recording(), name=f"recording-{self.session_id}"))
        self._tasks.append(asyncio.create_task(self._watchdog(), name=f"watchdog-{self.session_id}"))
        self.pipeline.start(input_rate_hz=input_rate_hz, greet=greet)

    @property
    def limits(self):
        return self._services.limits

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def first_seq_in_memory(self) -> int:
        return self._log[0][0] if self._log else self._seq + 1

    def _activity(self) -> None:
        self._last_activity = time.monotonic()

    async def _watchdog(self) -> None:
        limits = self._services.limits
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            if now - self._started >= limits.max_call_s:
                await self.end("max_duration")
                return
            if now - self._last_activity >= limits.idle_s and not self.pipeline.persona_speaking:
                await self.end("idle_timeout")
                return

    # --- events -------------------------------------------------------------------------------

    async def publish(self, message: ServerMessage) -> None:
        """Numbers (when it is a log event), records and delivers one message."""
        if self._sealed:
            return
        if message.ts == 0:
            message = msgspec.structs.replace(message, ts=int(time.time() * 1000))
        hints: list = []
        if isinstance(message, Event):
            self._seq += 1
            message = msgspec.structs.replace(message, seq=self._seq)
            frame = encode(message)
            self._log.append((self._seq, frame))
            segment = None
            if isinstance(message, TranscriptFinal):
                segment = SegmentRow(message.segment_id, message.speaker, message.text, message.start_ms,
                                     message.end_ms, message.seq)
                self._activity()
                hints = self._hints.observe(message)
            self._writer.add(self.session.org_id, self.session.id,
                             EventRow(self._seq, message.__struct_config__.tag, frame), segment)
        else:
            frame = encode(message)
        if (latency := self._latency.observe(message)) is not None:
            log.info("turn latency", extra={"session_id": self.session_id, **msgspec.structs.asdict(latency)})
        if self.rep is not None:
            self.rep.send_text(frame)
        for watcher in self.watchers:
            watcher.send_text(frame)
        for hint in hints:  # right behind the transcript event that triggered it
            await self.publish(hint)

    async def announce(self, *, resumed: bool) -> None:
        await self.publish(SessionStarted(
            session_id=self.session_id, ts=0, protocol=PROTOCOL_VERSION, persona_id=self.persona.id,
            output_audio=AudioFormat(sample_rate=OUTPUT_RATE), resumed=resumed))

    def replay_frames(self, after_seq: int) -> list[bytes]:
        return [frame for seq, frame in self._log if seq > after_seq]

    # --- the rep's socket -----------------------------------------------------------------------

    def attach_rep(self, outbox: Outbox, *, after_seq: int, older: list[bytes]) -> None:
        """Sends `older` (events from Postgres), then the in-memory events after `after_seq`, then
        the live stream: no await in between, so nothing can slip through or repeat."""
        if self.rep is not None and self.rep is not outbox:
            self.rep.close(4409, "this call was opened in another window")
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        for frame in older:
            outbox.send_text(frame)
        for frame in self.replay_frames(after_seq):
            outbox.send_text(frame)
        self.rep = outbox
        self._activity()

    def attach_watcher(self, outbox: Outbox, *, after_seq: int, older: list[bytes]) -> None:
        """Like `attach_rep`: history from Postgres, then memory, then live, with no await between."""
        for frame in older:
            outbox.send_text(frame)
        for frame in self.replay_frames(after_seq):
            outbox.send_text(frame)
        self.watchers.add(outbox)

    def detach_watcher(self, outbox: Outbox) -> None:
        self.watchers.discard(outbox)

    def detach_rep(self, outbox: Outbox) -> None:
        """The rep's socket closed without `end`: a drop. The call waits `resume_grace_s` for them."""
        if self.rep is not outbox:
            return
        self.rep = None
        if not self.ending:
            self._grace = asyncio.create_task(self._grace_period())

    async def _grace_period(self) -> None:
        await asyncio.sleep(self._services.limits.resume_grace_s)
        await self.end("client_disconnected")

    def feed_audio(self, pcm: bytes) -> None:
        self.pipeline.feed_audio(pcm)

    def rep_text(self, text: str) -> None:
        self.pipeline.rep_text(text)

    # --- audio out and recording ----------------------------------------------------------------

    async def _send_audio(self, chunk: bytes) -> None:
        if self.rep is not None:
            self.rep.send_bytes(chunk)
        if self._record:
            self._recorder.persona(self._persona_to_16k.feed(chunk))

    def _record_rep(self, pcm16k: bytes) -> None:
        stereo = self._recorder.rep(pcm16k)
        if stereo:
            self._recording.put_nowait(stereo)

    async def _write_recording(self) -> None:
        try:
            async with BlobWriter(self._pool, self.tenant, content_type=RECORDING_CONTENT_TYPE) as blob:
                async with tenant_tx(self._pool, self.tenant) as conn:
                    await set_recording(conn, self.session.id, blob.id)
                while (data := await self._recording.get()) is not None:
                    await blob.write(data)
                tail = self._recorder.flush()
                if tail:
                    await blob.write(tail)
        except Exception:
            log.exception("recording failed", extra={"session_id": self.session_id})

    # --- ending ---------------------------------------------------------------------------------

    async def _end_soon(self, reason: str) -> None:
        # Called from inside the pipeline: end from a task of its own, since ending closes the pipeline.
        self._tasks.append(asyncio.create_task(self.end(reason)))

    async def end(self, reason: str) -> None:
        """Ends the call for good: `session.ended`, status ended, everything flushed, sockets closed."""
        if self.ending:
            await self.ended.wait()
            return
        self.ending = True
        self._stop_tasks()
        await self.pipeline.close()  # an interrupted reply still reports what was said
        duration_ms = int((time.monotonic() - self._started) * 1000)
        await self.publish(SessionEnded(session_id=self.session_id, ts=0, reason=reason, duration_ms=duration_ms))
        self._sealed = True
        try:
            await self._writer.flush()
            async with tenant_tx(self._pool, self.tenant) as conn:
                await end_session(conn, self.session.id, reason)
        except Exception:
            log.exception("could not record the end of a call", extra={"session_id": self.session_id})
        await self._finish_recording()
        for outbox in [self.rep, *self.watchers]:
            if outbox is not None:
                outbox.close(1000, f"call ended: {reason}")
        self.rep = None
        self.ended.set()
        self._on_closed(self)
        log.info("call ended", extra={"session_id": self.session_id, "reason": reason, "duration_ms": duration_ms})

    def _stop_tasks(self) -> None:
        """Cancels the watchdog, the grace timer and pending ends, but not the recording (it is
        finished, not dropped) nor the task running this."""
        current = asyncio.current_task()
        for task in (self._grace, *self._tasks):
            if task is not None and task is not current and not task.get_name().startswith("recording"):
                task.cancel()

    async def _finish_recording(self) -> None:
        await self._recording.put(None)
        for task in self._tasks:
            if task.get_name().startswith("recording"):
                await asyncio.wait([task], timeout=30)

    async def suspend(self) -> None:
        """Process shutdown: persist everything, leave the call live for a resume elsewhere."""
        self.ending = True
        self._stop_tasks()
        await self.pipeline.close()
        self._sealed = True
        await self._finish_recording()
        for outbox in [self.rep, *self.watchers]:
            if outbox is not None:
                outbox.close(1012, "the server is restarting; reconnect to resume")
        self.ended.set()
