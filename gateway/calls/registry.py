"""The calls this process owns, and connecting a rep's socket to one: new, resumed, rebuilt from
its stored events, or taken over from another instance. Also routes whispers to the call's owner
and answers commands other instances send about calls this one owns.

Leases and the heartbeat are in `leases.py`, ending dead instances' calls in `janitor.py`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from types import TracebackType

import asyncpg
import msgspec

from coaching.events import ClientStart, Sender, Whisper
from coaching.persona import Persona, PersonaFileError, parse_persona
from coaching.session_log import SessionLog, as_sent
from gateway.auth.caller import Caller
from gateway.calls.janitor import Janitor
from gateway.calls.leases import Leases
from gateway.calls.live_call import LiveCall
from gateway.calls.outbox import RepChannel
from gateway.calls.recovery import recover_unflushed
from gateway.calls.services import CallServices
from gateway.errors import BAD_MESSAGE, ENDED, INTERNAL, NOT_FOUND, RATE_LIMITED, TAKEN_OVER, CallRefused
from gateway.fanout.commands import EndCall, Handover, RelayedWhisper, decode_command, encode_command
from gateway.fanout.coordinator import Coordinator, owner_of
from storage import sessions
from storage.event_writer import EventWriter
from storage.tenancy import tenant_tx

__all__ = ["CallRegistry"]

log = logging.getLogger(__name__)


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
        self._calls: dict[str, LiveCall] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._handovers: set[asyncio.Task[None]] = set()
        self.leases = Leases(coordinator, ttl_ms=int(lease_ttl_s * 1000), calls=lambda: list(self._calls.values()))
        self.janitor = Janitor(pool, self.leases, writer, is_local=lambda key: key in self._calls,
                               silent_for_s=services.limits.resume_grace_s + lease_ttl_s + 2)

    async def __aenter__(self) -> CallRegistry:
        self._tasks = [asyncio.create_task(self.leases.heartbeat(), name="call-heartbeat"),
                       asyncio.create_task(self.janitor.run(), name="call-janitor"),
                       asyncio.create_task(self.coordinator.listen(self._command), name="call-commands")]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        for task in self._tasks:
            task.cancel()
        await self.shutdown()

    def get(self, session_id: str) -> LiveCall | None:
        return self._calls.get(session_id)

    def __len__(self) -> int:
        return len(self._calls)

    # --- connecting the rep -------------------------------------------------------------------

    async def connect(self, caller: Caller, session: sessions.SessionRow, start: ClientStart,
                      outbox: RepChannel) -> LiveCall:
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
                _check_resume(after_seq, call.log.last_seq)
                call.pipeline.set_input_rate(start.audio.sample_rate)
                call.attach_rep(outbox, after_seq=after_seq, older=await self._older_events(call, after_seq))
                await call.announce(resumed=True)
                await self._record_transport(call, outbox.transport)
                return call
            call, fresh = await self._take(caller, session, after_seq)
            call.attach_rep(outbox, after_seq=after_seq, older=await self._older_events(call, after_seq))
            await call.open(input_rate_hz=start.audio.sample_rate, greet=fresh)
            await call.announce(resumed=not fresh)
            await self.leases.present([call])  # in the live list as soon as the rep hears it started
            await self._record_transport(call, outbox.transport)
            return call

    async def _record_transport(self, call: LiveCall, transport: str) -> None:
        """The session row says what carries the call now (its history shows it); the call goes on
        if the write fails."""
        try:
            async with tenant_tx(self._pool, call.tenant) as conn:
                await sessions.set_transport(conn, call.session.id, transport, fence=call.fence)
        except Exception as exc:  # Postgres unreachable: the row keeps the previous transport
            log.warning("could not record a call's transport", extra={"session_id": call.session_id,
                                                                      "error": type(exc).__name__})

    async def _take(self, caller: Caller, session: sessions.SessionRow, after_seq: int) -> tuple[LiveCall, bool]:
        """Takes the call's lease and builds the call here (new, or rebuilt from its log)."""
        key = str(session.id)
        token = await self.leases.take(key)
        try:
            call, fresh = await self._build(caller, session, token, after_seq)
        except BaseException:
            await self.leases.release(key, token)
            raise
        self._calls[key] = call
        if not fresh:
            log.info("call rebuilt from its events", extra={"session_id": key, "events": call.log.last_seq})
        return call, fresh

    async def _build(self, caller: Caller, session: sessions.SessionRow, token: str,
                     after_seq: int) -> tuple[LiveCall, bool]:
        async with tenant_tx(self._pool, caller.tenant) as conn:
            current = await sessions.get_session(conn, session.id)
            if current is None:
                raise CallRefused(NOT_FOUND, "no such session")
            if current.status == "ended":
                raise CallRefused(ENDED, f"this call has ended ({current.end_reason})")
            fresh = current.status == "created"
            if fresh:
                _check_resume(after_seq, 0)
                live = await sessions.count_live_sessions(conn, caller.user_id, excluding=session.id)
                if live >= self._services.limits.max_live_per_user:
                    raise CallRefused(RATE_LIMITED,
                                      f"you already have {live} live calls; end one before starting another")
                started_at = await sessions.start_session(conn, session.id)
                if started_at is None:
                    raise CallRefused(TAKEN_OVER, "this call was started from another window")
                # The row was read before it started: the live list shows this start, not a later one.
                current = msgspec.structs.replace(current, status="live", started_at=started_at)
            record = await sessions.recording_enabled(conn, session.org_id)
            # Bumping the fence waits for the previous owner's last append, then shuts it out.
            fence = await sessions.claim_session(conn, session.id)
            stored = [] if fresh else await sessions.list_events(conn, session.id, after_seq=0, limit=1_000_000)
        elapsed = 0.0 if fresh or current.started_at is None else max(0.0, (
            datetime.now(UTC) - current.started_at).total_seconds())
        call_log = SessionLog.rebuild(
            str(session.id), (row.payload for row in stored), hints=self._services.hints,
            call_started_ms=int((time.time() - elapsed) * 1000), silence_ms=self._services.options.silence_ms)
        if not fresh:
            await recover_unflushed(self.coordinator, self._writer, call_log, org_id=current.org_id,
                                    session_id=current.id, fence=fence)
            _check_resume(after_seq, call_log.last_seq)
        call = LiveCall(
            session=current, persona=self._persona(current), log=call_log, services=self._services,
            pool=self._pool, writer=self._writer, elapsed_s=elapsed, record=record, rep_name=caller.name,
            on_closed=self._closed, coordinator=self.coordinator, token=token, fence=fence,
            lease_ttl_ms=self.leases.ttl_ms,
        )
        return call, fresh

    async def _older_events(self, call: LiveCall, after_seq: int) -> list[bytes]:
        """The frames after `after_seq` that the call's log no longer keeps in memory."""
        first = call.log.first_seq_in_memory
        if after_seq + 1 >= first:
            return []
        async with tenant_tx(self._pool, call.tenant) as conn:
            rows = await sessions.list_events(conn, call.session.id, after_seq=after_seq, limit=first - after_seq - 1)
        return [as_sent(r.payload) for r in rows if r.seq < first]

    def _persona(self, session: sessions.SessionRow) -> Persona:
        try:
            return parse_persona(session.persona_snapshot, source=f"session {session.id}")
        except PersonaFileError:
            raise CallRefused(INTERNAL, "this session's persona can no longer be loaded") from None

    # --- whispers and commands ------------------------------------------------------------------

    async def whisper(self, session_id: str, sender: Sender, text: str) -> bool:
        """Routes a coach's whisper to the instance that owns the call, which numbers it.
        False: nobody runs the call right now."""
        call = self._calls.get(session_id)
        if call is not None and not call.ending:
            await call.emit(Whisper(session_id=session_id, ts=0, sender=sender, text=text))
            return True
        owner = owner_of(await self.coordinator.lease_holder(session_id))
        if owner is None or owner == self.coordinator.instance_id:
            return False
        return await self.coordinator.send(owner, encode_command(
            RelayedWhisper(session_id=session_id, sender_id=sender.id, sender_name=sender.name, text=text)))

    async def end_call(self, session: sessions.SessionRow, reason: str) -> None:
        """Ends a live call wherever it runs: here, on the instance that owns it (a command), or,
        when nobody runs it (the rep's socket dropped, its instance died), here from its stored
        events, as the janitor would."""
        key = str(session.id)
        call = self._calls.get(key)
        if call is not None:
            await call.end(reason)
            return
        owner = owner_of(await self.coordinator.lease_holder(key))
        if owner is not None and owner != self.coordinator.instance_id:
            await self.coordinator.send(owner, encode_command(EndCall(session_id=key, reason=reason)))
            return
        await self.janitor.end_orphan(session.id, session.org_id, reason)

    async def _command(self, data: bytes) -> None:
        try:
            command = decode_command(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("ignored a malformed command from another instance")
            return
        call = self._calls.get(command.session_id)
        if call is None or call.ending:
            return
        match command:
            case Handover():
                log.info("handing a call over to another instance", extra={"session_id": command.session_id})
                task = asyncio.create_task(call.suspend(TAKEN_OVER, "this call continues on another connection"))
                self._handovers.add(task)
                task.add_done_callback(self._handovers.discard)
            case EndCall():
                task = asyncio.create_task(call.end(command.reason))
                self._handovers.add(task)
                task.add_done_callback(self._handovers.discard)
            case RelayedWhisper():
                await call.emit(Whisper(session_id=command.session_id, ts=0,
                                        sender=Sender(command.sender_id, command.sender_name), text=command.text))
            case _:
                raise TypeError(f"unhandled command {type(command).__name__}")

    # --- letting go -----------------------------------------------------------------------------

    def _closed(self, call: LiveCall) -> None:
        if self._calls.get(call.session_id) is call:
            del self._calls[call.session_id]
        lock = self._locks.get(call.session_id)
        if lock is not None and not lock.locked():  # a connect waiting on it keeps it
            del self._locks[call.session_id]

    async def shutdown(self) -> None:
        """Persists every call, lets its lease go and leaves it live, so the rep's next
        connection (to a restarted gateway or another instance) resumes it."""
        calls = list(self._calls.values())
        await asyncio.gather(*(c.suspend() for c in calls), return_exceptions=True)
        self._calls.clear()

    def live_calls(self) -> list[LiveCall]:
        """The calls this process runs now (the revocation sweep checks their reps)."""
        return [call for call in self._calls.values() if not call.ending]


def _check_resume(after_seq: int, last_seq: int) -> None:
    """A client can only have seen what the call's log holds: a `last_seq` beyond it is refused,
    never renumbered (the client resumes from what it says it has, or starts over from 0)."""
    if after_seq > last_seq:
        raise CallRefused(BAD_MESSAGE, f"last_seq {after_seq} is ahead of this call, whose last event is"
                                       f" {last_seq}; resume with last_seq {last_seq} or lower")
