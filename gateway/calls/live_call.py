"""A live call owned by this process: numbers its events, delivers them, persists them, records it.

One LiveCall per session across all instances (the one holding its lease). Its events get their
seq here (one writer per session), are kept in a short in-memory log for a resuming rep, go to the
rep's socket directly and to watchers through the session's stream on the bus, and are appended
to Postgres by the process's EventWriter under the call's fencing token.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable

import asyncpg
import msgspec

from coaching.audio.pcm import PIPELINE_RATE, Resampler
from coaching.audio.recording import RECORDING_CONTENT_TYPE, StereoRecorder
from coaching.brains.base import Turn
from coaching.call import OUTPUT_RATE, CallPipeline
from coaching.events import (
    PROTOCOL_VERSION,
    AudioFormat,
    Event,
    ServerMessage,
    SessionEnded,
    SessionStarted,
    TranscriptFinal,
    encode,
    without_nul,
)
from coaching.hints import HintEngine
from coaching.latency import LatencyObserver
from coaching.persona import Persona
from gateway.calls.outbox import Outbox
from gateway.calls.services import CallServices
from gateway.fanout.coordinator import Coordinator, StreamEntry
from gateway.fanout.publisher import StreamPublisher
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
        coordinator: the bus and the leases.
        token: this call's lease token on the bus.
        fence: this instance's fencing token for the call's rows in Postgres.
        lease_ttl_ms: how long the lease lives without a heartbeat.
    """

    def __init__(self, *, session: SessionRow, persona: Persona, services: CallServices, pool: asyncpg.Pool,
                 writer: EventWriter, last_seq: int, history: list[Turn], elapsed_s: float, record: bool,
                 on_closed: Callable[[LiveCall], None], coordinator: Coordinator, token: str, fence: int,
                 lease_ttl_ms: int) -> None:
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
        self.fence = fence
        self._coordinator = coordinator
        self.stream = StreamPublisher(coordinator, self.session_id, token, lease_ttl_ms, self.lease_lost)
        self.ending = False  # end() or suspend() has begun
        self._sealed = False  # session.ended is out: nothing more is published
        self.ended = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._grace: asyncio.Task | None = None
        self._record = record
        self._recorder = StereoRecorder()
        self._recording: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._persona_to_16k = Resampler(OUTPUT_RATE, PIPELINE_RATE)
        self._hints = HintEngine(self.session_id, services.hints)
        self._llm_hints = services.llm_hints.for_call(persona) if services.llm_hints else None
        self._llm_task: asyncio.Task | None = None
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

    @property
    def token(self) -> str:
        return self.stream.token

    @property
    def last_activity_ago_s(self) -> float:
        return time.monotonic() - self._last_activity

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
            message = without_nul(msgspec.structs.replace(message, seq=self._seq))
            frame = encode(message)
            self._log.append((self._seq, frame))
            segment = None
            if isinstance(message, TranscriptFinal):
                segment = SegmentRow(message.segment_id, message.speaker, message.text, message.start_ms,
                                     message.end_ms, message.seq)
                self._activity()
                hints = self._hints.observe(message)
                if self._llm_hints is not None and self._llm_hints.due() and any(
                        t.speaker == "rep" for t in self.pipeline.history):
                    self._llm_task = asyncio.create_task(self._llm_hint(), name=f"llm-hint-{self.session_id}")
            kind = message.__struct_config__.tag
            self._writer.add(self.session.org_id, self.session.id, self.fence, EventRow(self._seq, kind, frame), segment)
            self.stream.add(StreamEntry(self._seq, kind, frame))
        else:
            frame = encode(message)
        if (latency := self._latency.observe(message)) is not None:
            log.info("turn latency", extra={"session_id": self.session_id, **msgspec.structs.asdict(latency)})
        if self.rep is not None:
            self.rep.send_text(frame)
        for hint in hints:  # right behind the transcript event that triggered it
            await self.publish(hint)

    async def _llm_hint(self) -> None:
        """Asks the LLM for a stage-aware hint; publishes it if the debounce lets it through."""
        suggestion = await self._llm_hints.suggest(self.pipeline.history)
        if suggestion is None or not suggestion.hint or self._sealed:
            return
        hint = self._hints.admit(f"llm_{suggestion.stage}", suggestion.severity, suggestion.hint)
        if hint is not None:
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
                await end_session(conn, self.session.id, reason, fence=self.fence)
        except Exception:
            log.exception("could not record the end of a call", extra={"session_id": self.session_id})
        await self._finish_recording()
        await self.stream.close()
        await self._let_lease_go(absent=True)
        if self.rep is not None:
            self.rep.close(1000, f"call ended: {reason}")
        self.rep = None
        self.ended.set()
        self._on_closed(self)
        log.info("call ended", extra={"session_id": self.session_id, "reason": reason, "duration_ms": duration_ms})

    def _stop_tasks(self) -> None:
        """Cancels the watchdog, the grace timer and pending ends, but not the recording (it is
        finished, not dropped) nor the task running this."""
        current = asyncio.current_task()
        for task in (self._grace, self._llm_task, *self._tasks):
            if task is not None and task is not current and not task.get_name().startswith("recording"):
                task.cancel()

    async def _finish_recording(self) -> None:
        await self._recording.put(None)
        for task in self._tasks:
            if task.get_name().startswith("recording"):
                await asyncio.wait([task], timeout=30)

    async def suspend(self, code: int = 1012, reason: str = "the server is restarting; reconnect to resume") -> None:
        """Persists everything and lets the call go, leaving it live: the rep's next connection,
        here or on another instance, resumes it. Used at shutdown and to hand a call over."""
        await self._let_go(code, reason, release=True)

    def lease_lost(self) -> None:
        """Another instance holds the call now (this one missed heartbeats): stop without a write."""
        self.stream.lost = True
        if not self.ending:
            log.warning("call lease lost to another instance", extra={"session_id": self.session_id})
            self._tasks.append(asyncio.create_task(
                self._let_go(4409, "this call continues on another connection", release=False)))

    async def _let_go(self, code: int, reason: str, *, release: bool) -> None:
        if self.ending:
            return
        self.ending = True
        self._stop_tasks()
        await self.pipeline.close()
        self._sealed = True
        await self.stream.close()
        try:
            await self._writer.flush()
        except Exception:
            log.warning("events not yet persisted when letting a call go", extra={"session_id": self.session_id})
        await self._finish_recording()
        if release:
            await self._let_lease_go(absent=False)
        if self.rep is not None:
            self.rep.close(code, reason)
        self.rep = None
        self.ended.set()
        self._on_closed(self)

    async def _let_lease_go(self, *, absent: bool) -> None:
        try:
            await self._coordinator.release(self.session_id, self.token)
            if absent:
                await self._coordinator.set_absent(str(self.session.org_id), self.session_id)
        except Exception as exc:  # Redis down: the lease and the presence expire by themselves
            log.warning("could not release a call's lease", extra={"session_id": self.session_id,
                                                                  "error": type(exc).__name__})
