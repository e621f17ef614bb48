"""The calls this process owns, and connecting a rep's socket to one (new, resumed, rebuilt, or
taken over from another instance), with the leases, presence and commands that go with them."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import msgspec

from coaching.brains.base import Turn
from coaching.events import ClientStart, Sender, SessionEnded, TranscriptFinal, Whisper, decode_event, encode
from coaching.persona import Persona, PersonaFileError, parse_persona
from gateway.auth.caller import Caller
from gateway.calls.live_call import LiveCall
from gateway.calls.outbox import Outbox
from gateway.calls.services import CallServices
from gateway.errors import CallRefused
from gateway.fanout.commands import Handover, RelayedWhisper, decode_command, encode_command
from gateway.fanout.coordinator import Coordinator, StreamEntry, owner_of
from storage import sessions
from storage.event_writer import EventWriter
from storage.tenancy import Tenant, tenant_tx

__all__ = ["CallRefused", "CallRegistry", "LiveEntry", "as_sent"]

log = logging.getLogger(__name__)


class Named(msgspec.Struct, frozen=True):
    id: str
    name: str


class LiveEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One live call as `GET /api/live` shows it (kept in presence, renewed by the heartbeat)."""
    session_id: str
    rep: Named
    persona: Named
    started_at: datetime
    transport: str
    instance: str
    last_activity_at: datetime


class CallRegistry:
    """Args:
        pool: the app pool.
        services: providers and limits.
        writer: the process's event writer.
        coordinator: the bus, leases, presence and commands.
        lease_ttl_s: how long a lease (and a presence entry) lives without a heartbeat.
    """

    def __init__(self, pool: asyncpg.Pool, services: CallServices, writer: EventWriter, coordinator: Coordinator,
                 *, lease_ttl_s: float = 15) -> None:
        self._pool, self._services, self._writer = pool, services, writer
        self.coordinator = coordinator
        self._ttl_ms = int(lease_ttl_s * 1000)
        self._calls: dict[str, LiveCall] = {}
        self._reps: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: list[asyncio.Task] = []
        self._handovers: set[asyncio.Task] = set()
        self._redis_down = False

    async def __aenter__(self) -> CallRegistry:
        self._tasks = [asyncio.create_task(self._heartbeat(), name="call-heartbeat"),
                       asyncio.create_task(self.coordinator.listen(self._command), name="call-commands")]
        return self

    async def __aexit__(self, *exc) -> None:
        for task in self._tasks:
            task.cancel()
        await self.shutdown()

    def get(self, session_id: str) -> LiveCall | None:
        return self._calls.get(session_id)

    def __len__(self) -> int:
        return len(self._calls)

    async def connect(self, caller: Caller, session: sessions.SessionRow, start: ClientStart,
                      outbox: Outbox) -> LiveCall:
        """Attaches the rep's socket to their call, starting, resuming, rebuilding or taking it over.

        Raises:
            CallRefused: the call has ended, or the rep is over their live-call limit.
        """
        key = str(session.id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            call = self._calls.get(key)
            after_seq = start.last_seq or 0
            if call is not None and call.ending:
                await call.ended.wait()  # let it finish letting go before taking the call again
                call = None
            if call is not None:
                older = await self._older_events(call, session.id, after_seq)
                call.pipeline.set_input_rate(start.audio.sample_rate)
                call.attach_rep(outbox, after_seq=after_seq, older=older)
                await call.announce(resumed=True)
                return call
            token = await self._take_lease(key)
            try:
                call, fresh, events = await self._build(caller, session, token)
            except BaseException:
                await self._release(key, token)
                raise
            self._calls[key] = call
            self._reps[key] = caller.name
            call.attach_rep(outbox, after_seq=after_seq, older=[as_sent(e) for e in events if e.seq > after_seq])
            await call.open(input_rate_hz=start.audio.sample_rate, greet=fresh)
            await call.announce(resumed=not fresh)
            await self._present([call])
            if not fresh:
                log.info("call rebuilt from its events", extra={"session_id": key, "events": len(events)})
            return call

    async def _build(self, caller: Caller, session: sessions.SessionRow,
                     token: str) -> tuple[LiveCall, bool, list[sessions.EventRow]]:
        async with tenant_tx(self._pool, caller.tenant) as conn:
            current = await sessions.get_session(conn, session.id)
            if current is None:
                raise CallRefused(4404, "no such session")
            if current.status == "ended":
                raise CallRefused(4410, f"this call has ended ({current.end_reason})")
            fresh = current.status == "created"
            if fresh:
                live = await sessions.count_live_sessions(conn, caller.user_id, excluding=session.id)
                if live >= self._services.limits.max_live_per_user:
                    raise CallRefused(4429, f"you already have {live} live calls; end one before starting another")
                if not await sessions.start_session(conn, session.id):
                    raise CallRefused(4409, "this call was started from another window")
            record = await sessions.recording_enabled(conn, session.org_id)
            # Bumping the fence waits for the previous owner's last append, then shuts it out.
            fence = await sessions.claim_session(conn, session.id)
            events = [] if fresh else await sessions.list_events(conn, session.id, after_seq=0, limit=1_000_000)
        if not fresh:
            events += await self._unflushed(current, fence, events[-1].seq if events else 0)
        elapsed = 0.0 if fresh or current.started_at is None else (
            datetime.now(UTC) - current.started_at).total_seconds()
        call = LiveCall(
            session=current, persona=self._persona(current), services=self._services, pool=self._pool,
            writer=self._writer, last_seq=events[-1].seq if events else 0, history=_history(events),
            elapsed_s=elapsed, record=record, on_closed=self._closed, coordinator=self.coordinator, token=token,
            fence=fence, lease_ttl_ms=self._ttl_ms,
        )
        return call, fresh, events

    async def _unflushed(self, session: sessions.SessionRow, fence: int, after_seq: int) -> list[sessions.EventRow]:
        """Events of a previous owner that died before writing them to Postgres: the stream has
        them; they are persisted now under this instance's fence."""
        try:
            entries = await self.coordinator.read(str(session.id), after_seq, block_ms=0)
        except Exception as exc:
            log.warning("could not read the call's stream", extra={"session_id": str(session.id),
                                                                  "error": type(exc).__name__})
            return []
        rows: list[sessions.EventRow] = []
        while entries:
            for entry in entries:
                if entry.seq != after_seq + len(rows) + 1:
                    entries = []
                    break
                rows.append(sessions.EventRow(entry.seq, entry.type, entry.frame))
                self._writer.add(session.org_id, session.id, fence, rows[-1], _segment(entry.type, entry.frame))
            else:
                entries = await self.coordinator.read(str(session.id), after_seq + len(rows), block_ms=0)
        return rows

    async def _take_lease(self, session_id: str) -> str:
        """Waits for the call's lease (asking its owner elsewhere to hand it over); returns the token.

        Raises:
            CallRefused: the other owner neither handed over nor let its lease expire in time.
        """
        token = f"{self.coordinator.instance_id}|{uuid.uuid4().hex[:16]}"
        try:
            holder = await self.coordinator.lease_holder(session_id)
            if holder is not None:
                owner = owner_of(holder)
                if owner == self.coordinator.instance_id:
                    await self.coordinator.release(session_id, holder)  # a call this process already let go
                else:
                    await self.coordinator.send(owner, encode_command(Handover(session_id)))
            deadline = time.monotonic() + self._ttl_ms / 1000 + 5
            while not await self.coordinator.try_lease(session_id, token, self._ttl_ms):
                if time.monotonic() > deadline:
                    raise CallRefused(1013, "this call is still held by another server; try again in a moment")
                await asyncio.sleep(0.1)
        except CallRefused:
            raise
        except Exception as exc:
            # Redis is down: run the call anyway (the first publish after it is back takes the lease).
            log.warning("could not take a call's lease; running it without one",
                        extra={"session_id": session_id, "error": type(exc).__name__})
        return token

    async def _release(self, session_id: str, token: str) -> None:
        try:
            await self.coordinator.release(session_id, token)
        except Exception:
            pass

    async def whisper(self, session_id: str, sender: Sender, text: str) -> bool:
        """Routes a coach's whisper to the instance that owns the call, which numbers it.
        False: nobody runs the call right now."""
        call = self._calls.get(session_id)
        if call is not None and not call.ending:
            await call.publish(Whisper(session_id=session_id, ts=0, sender=sender, text=text))
            return True
        owner = owner_of(await self.coordinator.lease_holder(session_id))
        if owner is None or owner == self.coordinator.instance_id:
            return False
        return await self.coordinator.send(owner, encode_command(
            RelayedWhisper(session_id=session_id, sender_id=sender.id, sender_name=sender.name, text=text)))

    async def _command(self, data: bytes) -> None:
        try:
            command = decode_command(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("ignored a malformed command from another instance")
            return
        call = self._calls.get(command.session_id)
        if call is None or call.ending:
            return
        if isinstance(command, Handover):
            log.info("handing a call over to another instance", extra={"session_id": command.session_id})
            task = asyncio.create_task(call.suspend(4409, "this call continues on another connection"))
            self._handovers.add(task)
            task.add_done_callback(self._handovers.discard)
        else:
            await call.publish(Whisper(session_id=command.session_id, ts=0,
                                       sender=Sender(command.sender_id, command.sender_name), text=command.text))

    async def _heartbeat(self) -> None:
        """Renews every lease and presence entry of this instance's calls, three times per TTL,
        and now and then ends calls whose instance died (see `_end_orphans`)."""
        beats = 0
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            beats += 1
            if beats % 9 == 0:
                await self._end_orphans()
            calls = [c for c in self._calls.values() if not c.ending]
            try:
                lost = await self.coordinator.renew({c.session_id: c.token for c in calls}, self._ttl_ms)
                await self._present([c for c in calls if c.session_id not in lost])
                if self._redis_down:
                    log.info("the bus is reachable again")
                self._redis_down = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._redis_down:
                    log.warning("call heartbeat failed; calls go on", extra={"error": type(exc).__name__})
                self._redis_down = True
                continue
            for call in calls:
                if call.session_id in lost:
                    call.lease_lost()
                elif call.ending:  # let go while the renewal was on its way: do not hold on to it
                    await self._release(call.session_id, call.token)

    async def _end_orphans(self) -> None:
        """A call whose instance crashed stays `live` in Postgres. Once it has been silent for
        longer than a resume could take (grace + lease TTL) and nobody holds its lease, this
        instance takes the lease, fences the old owner out, and ends it (`owner_lost`) with a
        `session.ended` event, so watchers close and the rep's page shows the call ended."""
        silent_for = self._services.limits.resume_grace_s + self._ttl_ms / 1000 + 2
        try:
            async with self._pool.acquire() as conn:
                stale = await sessions.stale_live_sessions(conn, silent_for)
        except Exception as exc:
            log.warning("could not look for orphaned calls", extra={"error": type(exc).__name__})
            return
        for session_id, org_id in stale:
            key = str(session_id)
            if key in self._calls:
                continue
            token = f"{self.coordinator.instance_id}|{uuid.uuid4().hex[:16]}"
            try:
                if not await self.coordinator.try_lease(key, token, self._ttl_ms):
                    continue  # someone runs it (or is resuming it)
                tenant = Tenant(org_id=org_id, role="system")
                async with tenant_tx(self._pool, tenant) as conn:
                    fence = await sessions.claim_session(conn, session_id)
                    current = await sessions.get_session(conn, session_id)
                    stored = await sessions.max_seq(conn, session_id)
                if current is None or current.status != "live":
                    continue
                # What the dead owner published but never wrote comes first (it is in the stream).
                seq = stored + len(await self._unflushed(current, fence, stored)) + 1
                await self._writer.flush()
                elapsed = int((datetime.now(UTC) - (current.started_at or current.created_at))
                              .total_seconds() * 1000)
                frame = encode(SessionEnded(session_id=key, ts=int(time.time() * 1000), seq=seq, reason="owner_lost",
                                            duration_ms=elapsed))
                async with tenant_tx(self._pool, tenant) as conn:
                    await sessions.append_events(conn, org_id, [(session_id, fence, sessions.EventRow(
                        seq, "session.ended", frame))], [])
                    await sessions.end_session(conn, session_id, "owner_lost", fence=fence)
                await self.coordinator.publish(key, token, [StreamEntry(seq, "session.ended", frame)], self._ttl_ms)
                await self.coordinator.set_absent(str(org_id), key)
                log.info("ended a call whose instance was lost", extra={"session_id": key})
            except Exception as exc:
                log.warning("could not end an orphaned call", extra={"session_id": key, "error": type(exc).__name__})
            finally:
                await self._release(key, token)

    async def _present(self, calls: list[LiveCall]) -> None:
        now = datetime.now(UTC)
        entries = []
        for call in calls:
            session = call.session
            entry = LiveEntry(
                session_id=call.session_id, rep=Named(str(session.user_id), self._reps.get(call.session_id, "")),
                persona=Named(call.persona.id, call.persona.name), started_at=session.started_at or now,
                transport=session.transport, instance=self.coordinator.instance_id,
                last_activity_at=datetime.fromtimestamp(time.time() - call.last_activity_ago_s, UTC),
            )
            entries.append((str(session.org_id), call.session_id, msgspec.json.encode(entry)))
        try:
            await self.coordinator.set_present(entries, self._ttl_ms)
        except Exception as exc:
            log.warning("could not update live-call presence", extra={"error": type(exc).__name__})

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
            self._reps.pop(call.session_id, None)
        lock = self._locks.get(call.session_id)
        if lock is not None and not lock.locked():  # a connect waiting on it keeps it
            del self._locks[call.session_id]

    async def shutdown(self) -> None:
        """Persists every call, lets its lease go and leaves it live, so the rep's next
        connection (to a restarted gateway or another instance) resumes it."""
        calls = list(self._calls.values())
        await asyncio.gather(*(c.suspend() for c in calls), return_exceptions=True)
        self._calls.clear()


def as_sent(row: sessions.EventRow) -> bytes:
    """The event's frame byte for byte as first sent (jsonb reorders keys; the Struct does not)."""
    return encode(decode_event(row.payload))


def _segment(kind: str, frame: bytes) -> sessions.SegmentRow | None:
    if kind != "transcript.final":
        return None
    event = decode_event(frame)
    return sessions.SegmentRow(event.segment_id, event.speaker, event.text, event.start_ms, event.end_ms, event.seq)


def _history(events: list[sessions.EventRow]) -> list[Turn]:
    """The conversation as the persona heard it: every final, in seq order."""
    turns = []
    for row in events:
        if row.type == "transcript.final":
            event = decode_event(row.payload)
            if isinstance(event, TranscriptFinal):
                turns.append(Turn(event.speaker, event.text))
    return turns
