"""The calls this process owns, and connecting a rep's socket to one (new, resumed or rebuilt)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timezone

import asyncpg

from coaching.brains.base import Turn
from coaching.events import ClientStart, TranscriptFinal, decode_event, encode
from coaching.persona import Persona, PersonaFileError, parse_persona
from gateway.auth.caller import Caller
from gateway.calls.live_call import LiveCall
from gateway.calls.outbox import Outbox
from gateway.calls.services import CallServices
from storage import sessions
from storage.event_writer import EventWriter
from storage.tenancy import tenant_tx

__all__ = ["CallRefused", "CallRegistry", "as_sent"]

log = logging.getLogger(__name__)


class CallRefused(Exception):
    """The socket cannot join the call: a WebSocket close code and a reason for the client."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class CallRegistry:
    def __init__(self, pool: asyncpg.Pool, services: CallServices, writer: EventWriter) -> None:
        self._pool, self._services, self._writer = pool, services, writer
        self._calls: dict[str, LiveCall] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def get(self, session_id: str) -> LiveCall | None:
        return self._calls.get(session_id)

    def __len__(self) -> int:
        return len(self._calls)

    async def connect(self, caller: Caller, session: sessions.SessionRow, start: ClientStart,
                      outbox: Outbox) -> LiveCall:
        """Attaches the rep's socket to their call, starting, resuming or rebuilding it.

        Raises:
            CallRefused: the call has ended, or the rep is over their live-call limit.
        """
        key = str(session.id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            call = self._calls.get(key)
            after_seq = start.last_seq or 0
            if call is not None and not call.ending:
                older = await self._older_events(call, session.id, after_seq)
                call.pipeline.set_input_rate(start.audio.sample_rate)
                call.attach_rep(outbox, after_seq=after_seq, older=older)
                await call.announce(resumed=True)
                return call
            async with tenant_tx(self._pool, caller.tenant) as conn:
                current = await sessions.get_session(conn, session.id)
                if current is None:
                    raise CallRefused(4404, "no such session")
                if current.status == "ended":
                    raise CallRefused(4410, f"this call has ended ({current.end_reason})")
                if current.status == "created":
                    live = await sessions.count_live_sessions(conn, caller.user_id, excluding=session.id)
                    if live >= self._services.limits.max_live_per_user:
                        raise CallRefused(4429, f"you already have {live} live calls; end one before starting another")
                    if not await sessions.start_session(conn, session.id):
                        raise CallRefused(4409, "this call was started from another window")
                    record = await sessions.recording_enabled(conn, session.org_id)
                    fresh = True
                    events: list[sessions.EventRow] = []
                else:
                    record = await sessions.recording_enabled(conn, session.org_id)
                    fresh = False
                    events = await sessions.list_events(conn, session.id, after_seq=0, limit=1_000_000)
            persona = self._persona(current)
            history = _history(events)
            elapsed = 0.0 if fresh or current.started_at is None else (
                datetime.now(timezone.utc) - current.started_at).total_seconds()
            call = LiveCall(
                session=current, persona=persona, services=self._services, pool=self._pool, writer=self._writer,
                last_seq=events[-1].seq if events else 0, history=history, elapsed_s=elapsed, record=record,
                on_closed=self._closed,
            )
            self._calls[key] = call
            call.attach_rep(outbox, after_seq=after_seq, older=[as_sent(e) for e in events if e.seq > after_seq])
            await call.open(input_rate_hz=start.audio.sample_rate, greet=fresh)
            await call.announce(resumed=not fresh)
            if not fresh:
                log.info("call rebuilt from its events", extra={"session_id": key, "events": len(events)})
            return call

    async def watch(self, caller: Caller, session: sessions.SessionRow, outbox: Outbox, after_seq: int) -> LiveCall | None:
        """Attaches a watcher: the call's events after `after_seq`, one frame each, then live ones.
        Returns the call, or None when it does not run here (ended: the replay is all there is)."""
        call = self._calls.get(str(session.id))
        if call is not None and not call.ending:
            call.attach_watcher(outbox, after_seq=after_seq,
                                older=await self._older_events(call, session.id, after_seq))
            return call
        async with tenant_tx(self._pool, caller.tenant) as conn:
            rows = await sessions.list_events(conn, session.id, after_seq=after_seq, limit=1_000_000)
        for row in rows:
            outbox.send_text(as_sent(row))
        return None

    async def _older_events(self, call: LiveCall, session_id: uuid.UUID, after_seq: int) -> list[bytes]:
        first = call.first_seq_in_memory
        if after_seq + 1 >= first:
            return []
        async with tenant_tx(self._pool, call.tenant) as conn:
            rows = await sessions.list_events(conn, session_id, after_seq=after_seq, limit=first - after_seq - 1)
        return [as_sent(r) for r in rows if r.seq < first]

    def _persona(self, session: sessions.SessionRow) -> Persona:
        try:
            return parse_persona(session.persona_snapshot, source=f"session {session.id}")
        except PersonaFileError:
            raise CallRefused(1011, "this session's persona can no longer be loaded") from None

    def _closed(self, call: LiveCall) -> None:
        if self._calls.get(call.session_id) is call:
            del self._calls[call.session_id]
        self._locks.pop(call.session_id, None)

    async def shutdown(self) -> None:
        """Persists every call and leaves it live, so a restarted gateway resumes it."""
        calls = list(self._calls.values())
        self._calls.clear()
        await asyncio.gather(*(c.suspend() for c in calls), return_exceptions=True)


def as_sent(row: sessions.EventRow) -> bytes:
    """The event's frame byte for byte as first sent (jsonb reorders keys; the Struct does not)."""
    return encode(decode_event(row.payload))


def _history(events: list[sessions.EventRow]) -> list[Turn]:
    """The conversation as the persona heard it: every final, in seq order."""
    turns = []
    for row in events:
        if row.type == "transcript.final":
            event = decode_event(row.payload)
            if isinstance(event, TranscriptFinal):
                turns.append(Turn(event.speaker, event.text))
    return turns
