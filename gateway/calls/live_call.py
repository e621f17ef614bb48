"""A live call owned by this process: its pipeline's sink, its session log, its rep, its recording.

One LiveCall per session across all instances (the one holding its lease). Its events are
numbered by its `SessionLog` (coaching/session_log.py), go to the rep's socket directly and to
watchers through the session's stream on the bus, and are appended to Postgres by the process's
EventWriter under the call's fencing token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import msgspec

from coaching.audio.recording import RECORDING_CONTENT_TYPE, StereoRecorder
from coaching.call import OUTPUT_RATE, CallPipeline
from coaching.events import (
    PROTOCOL_VERSION,
    AudioFormat,
    Event,
    PersonaAudioEnd,
    ServerMessage,
    SessionEnded,
    SessionStarted,
    TranscriptFinal,
    encode,
)
from coaching.persona import Persona
from coaching.session_log import Appended, SessionLog
from gateway.calls.delivery import Delivery
from gateway.calls.live_list import live_entry
from gateway.calls.outbox import RepChannel
from gateway.calls.services import CallLimits, CallServices
from gateway.errors import NORMAL, RESTARTING, TAKEN_OVER
from gateway.fanout.coordinator import Coordinator
from gateway.fanout.publisher import StreamPublisher
from storage.blobs import CHUNK_BYTES, BlobWriter
from storage.event_writer import EventWriter
from storage.sessions import SessionRow, set_recording
from storage.tenancy import Tenant, tenant_tx

__all__ = ["LiveCall"]

log = logging.getLogger(__name__)


class LiveCall:
    """Args:
        session: the session row (status live).
        persona: the persona snapshot the call uses.
        log: the call's session log (new, or rebuilt from its stored events).
        services: providers and limits.
        pool: the app pool.
        writer: the process's event writer.
        elapsed_s: how long the call has been running already.
        record: whether to record the call's audio.
        rep_name: the rep's name (for the live list).
        on_closed: called once the call has ended and let go of everything.
        coordinator: the bus and the leases.
        token: this call's lease token on the bus.
        fence: this instance's fencing token for the call's rows in Postgres.
        lease_ttl_ms: how long the lease lives without a heartbeat.
    """

    def __init__(self, *, session: SessionRow, persona: Persona, log: SessionLog, services: CallServices,
                 pool: asyncpg.Pool, writer: EventWriter, elapsed_s: float, record: bool, rep_name: str,
                 on_closed: Callable[[LiveCall], None], coordinator: Coordinator, token: str, fence: int,
                 lease_ttl_ms: int) -> None:
        self.session = session
        self.session_id = str(session.id)
        self.persona = persona
        self.log = log
        self.tenant = Tenant(org_id=session.org_id, user_id=session.user_id, role="system")
        self._services, self._pool, self._on_closed = services, pool, on_closed
        self._writer = writer
        self._started = time.monotonic() - elapsed_s
        self._started_at = time.time() - elapsed_s
        self._last_activity = time.monotonic()
        self._rep_name = rep_name
        self.rep: RepChannel | None = None
        self.transport = session.transport  # the rep's current connection's, once one attached
        self.fence = fence
        self._coordinator = coordinator
        self.stream = StreamPublisher(coordinator, self.session_id, token, lease_ttl_ms, self.lease_lost)
        self._delivery = Delivery(writer=writer, stream=self.stream, bus_keeps=coordinator.shared,
                                  org_id=session.org_id, session_id=session.id, fence=fence, send=self._to_rep,
                                  on_stale=self.lease_lost, last_seq=log.last_seq)
        self.ending = False  # end() or suspend() has begun
        self.ended = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._grace: asyncio.Task[None] | None = None
        self._record = record
        self._recorder = StereoRecorder(persona_rate_hz=OUTPUT_RATE)
        self._recording: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._recording_task: asyncio.Task[None] | None = None
        self._llm_hints = services.llm_hints.for_call(
            persona, retrieve=services.retrieval(session.org_id) if services.retrieval is not None else None,
        ) if services.llm_hints else None
        self._llm_task: asyncio.Task[None] | None = None
        self.pipeline = CallPipeline(
            session_id=self.session_id, persona=persona, brain=services.brain, stt=services.stt, tts=services.tts,
            sink=self, history=log.conversation, options=services.options, call_started_at=self._started,
        )

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self, *, input_rate_hz: int, greet: bool) -> None:
        if self._record:
            self._recording_task = asyncio.create_task(self._write_recording(), name=f"recording-{self.session_id}")
        self._tasks.append(asyncio.create_task(self._watchdog(), name=f"watchdog-{self.session_id}"))
        self.pipeline.start(input_rate_hz=input_rate_hz, greet=greet)

    @property
    def limits(self) -> CallLimits:
        return self._services.limits

    @property
    def token(self) -> str:
        return self.stream.token

    def presence(self, instance: str) -> tuple[str, str, bytes]:
        """This call's entry in the live list."""
        idle_s = time.monotonic() - self._last_activity
        return live_entry(self.session, self.persona, instance=instance, rep_name=self._rep_name,
                          transport=self.transport,
                          started_at=datetime.fromtimestamp(self._started_at, UTC),
                          last_activity_at=datetime.fromtimestamp(time.time() - idle_s, UTC))

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

    # --- the pipeline's sink --------------------------------------------------------------------

    async def emit(self, message: ServerMessage) -> None:
        """Numbers (when it is a log event), persists, publishes and delivers one message."""
        if self.log.sealed:
            return
        if not isinstance(message, Event):  # ephemeral: to the rep only
            if self.rep is not None:
                self.rep.send_text(encode(message if message.ts else msgspec.structs.replace(
                    message, ts=int(time.time() * 1000))))
            return
        if isinstance(message, PersonaAudioEnd) and message.interrupted and self.rep is not None:
            self.rep.stop_audio()  # a barge-in silences the persona now; its event waits for the commit
        appended = self.log.append(message)
        self._deliver(appended)
        if appended.latency is not None:
            log.info("turn latency", extra={"session_id": self.session_id,
                                            **msgspec.structs.asdict(appended.latency)})
        if isinstance(message, TranscriptFinal):
            self.activity()
            if self._llm_hints is not None and self._llm_hints.due() and any(
                    t.speaker == "rep" for t in self.pipeline.history):
                self._llm_task = asyncio.create_task(self._llm_hint(), name=f"llm-hint-{self.session_id}")

    def _deliver(self, appended: Appended) -> None:
        for entry in appended.entries:
            self._delivery.add(entry)  # to the rep and the bus once it is durable (delivery.py)

    def _to_rep(self, frame: bytes) -> None:
        if self.rep is not None:
            self.rep.send_text(frame)

    async def send_audio(self, chunk: bytes) -> None:
        if self.rep is not None:
            self.rep.send_bytes(chunk)
        if self._record:
            self._recorder.persona(chunk)

    async def persona_ended(self, reason: str) -> None:
        # Called from inside the pipeline: end from a task of its own, since ending closes the pipeline.
        self._tasks.append(asyncio.create_task(self.end(reason)))

    def rep_audio(self, pcm16k: bytes) -> None:
        # Called for every 20 ms frame: the frame is interleaved and the writer task woken once per
        # blob chunk, not per frame.
        if self._record:
            self._recorder.rep(pcm16k)
            if self._recorder.pending_bytes >= CHUNK_BYTES:
                self._recording.put_nowait(self._recorder.drain())

    def activity(self) -> None:
        self._last_activity = time.monotonic()

    async def _llm_hint(self) -> None:
        """Asks the LLM for a stage-aware hint; publishes it if the debounce lets it through."""
        if self._llm_hints is None:
            return
        suggestion = await self._llm_hints.suggest(self.pipeline.history)
        if suggestion is not None and suggestion.hint:
            self._deliver(self.log.admit_hint(f"llm_{suggestion.stage}", suggestion.severity, suggestion.hint))

    async def announce(self, *, resumed: bool) -> None:
        await self.emit(SessionStarted(
            session_id=self.session_id, ts=0, protocol=PROTOCOL_VERSION, persona_id=self.persona.id,
            output_audio=AudioFormat(sample_rate=OUTPUT_RATE), resumed=resumed))

    # --- the rep's socket -----------------------------------------------------------------------

    def attach_rep(self, outbox: RepChannel, *, after_seq: int, older: list[bytes]) -> None:
        """Sends `older` (events from Postgres), then the log's durable events in memory after
        `after_seq`, then the live stream: no await in between, so nothing can slip through or repeat."""
        if self.rep is not None and self.rep is not outbox:
            self.rep.close(TAKEN_OVER, "this call was opened in another window")
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        for frame in older:
            outbox.send_text(frame)
        for frame in self.log.frames_after(after_seq, self._delivery.durable_seq):
            outbox.send_text(frame)
        self.rep = outbox
        self.transport = outbox.transport
        self.activity()

    def detach_rep(self, outbox: RepChannel) -> None:
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

    # --- the recording --------------------------------------------------------------------------

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

    async def _finish_recording(self) -> None:
        # Audio from here on is not recorded: the writer's flush then ends the recording where
        # the call ended, with nothing queued behind its end.
        self._record = False
        await self._recording.put(None)
        if self._recording_task is not None:
            await asyncio.wait([self._recording_task], timeout=30)

    # --- ending ---------------------------------------------------------------------------------

    async def end(self, reason: str) -> None:
        """Ends the call for good: `session.ended`, status ended, everything flushed, sockets closed."""
        if self.ending:
            await self.ended.wait()
            return
        self.ending = True
        begun = time.monotonic()
        self._stop_tasks()
        await self.pipeline.close()  # an interrupted reply still reports what was said
        duration_ms = int((begun - self._started) * 1000)
        await self.emit(SessionEnded(session_id=self.session_id, ts=0, reason=reason, duration_ms=duration_ms))
        self.log.seal()
        # The writer ends the session in the transaction that stores its `session.ended`
        # (storage.sessions.append_events): waiting for this call's own events is enough, not for
        # a flush of every call's. The rep gets session.ended once it is durable.
        await self._delivery.drain(timeout_s=5)
        durable = time.monotonic()
        await self._finish_recording()
        recorded = time.monotonic()
        await self.stream.close()
        await self._let_lease_go(absent=True)
        self._close_rep(NORMAL, f"call ended: {reason}")
        log.info("call ended", extra={  # how long the call took to let go, and where
            "session_id": self.session_id, "reason": reason, "duration_ms": duration_ms,
            "closing_ms": int((time.monotonic() - begun) * 1000), "durable_ms": int((durable - begun) * 1000),
            "recording_ms": int((recorded - durable) * 1000)})

    def _stop_tasks(self) -> None:
        """Cancels the watchdog, the grace timer, an LLM hint and pending ends, but not the
        recording (it is finished, not dropped) nor the task running this."""
        current = asyncio.current_task()
        for task in (self._grace, self._llm_task, *self._tasks):
            if task is not None and task is not current:
                task.cancel()

    async def suspend(self, code: int = RESTARTING,
                      reason: str = "the server is restarting; reconnect to resume") -> None:
        """Persists everything and lets the call go, leaving it live: the rep's next connection,
        here or on another instance, resumes it. Used at shutdown and to hand a call over."""
        await self._let_go(code, reason, release=True)

    def lease_lost(self) -> None:
        """Another instance holds the call now (this one missed heartbeats): stop without a write."""
        self.stream.lost = True
        if not self.ending:
            log.warning("call lease lost to another instance", extra={"session_id": self.session_id})
            self._tasks.append(asyncio.create_task(
                self._let_go(TAKEN_OVER, "this call continues on another connection", release=False)))

    async def _let_go(self, code: int, reason: str, *, release: bool) -> None:
        if self.ending:
            return
        self.ending = True
        self._stop_tasks()
        await self.pipeline.close()
        self.log.seal()
        try:
            await self._writer.flush()
        except Exception:
            log.warning("events not yet persisted when letting a call go", extra={"session_id": self.session_id})
        await self._delivery.drain(timeout_s=5)
        await self.stream.close()
        await self._finish_recording()
        if release:
            await self._let_lease_go(absent=False)
        self._close_rep(code, reason)

    def _close_rep(self, code: int, reason: str) -> None:
        self._delivery.close()
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
