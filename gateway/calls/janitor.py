"""Ends calls whose instance died.

A call whose instance crashed stays `live` in Postgres. Once it has been silent for longer than a
resume could take (grace + lease TTL) and nobody holds its lease, the janitor (one on every
instance, every third TTL) takes the lease, fences the old owner out, persists what the old owner
published but never wrote, and ends the call (`owner_lost`) with a `session.ended` event numbered
by the call's session log, so watchers close and the rep's page shows the call ended.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from coaching.events import SessionEnded, decode_event
from coaching.session_log import SessionLog
from gateway.calls.leases import Leases
from gateway.calls.recovery import recover_unflushed
from storage import sessions
from storage.database import acquire
from storage.event_writer import EventWriter
from storage.tenancy import Tenant, tenant_tx

__all__ = ["Janitor"]

log = logging.getLogger(__name__)


class Janitor:
    """Args:
        pool: the app pool.
        leases: this instance's leases (and through them, the bus).
        writer: the process's event writer.
        silent_for_s: how long a live call must have been silent to count as orphaned.
        is_local: whether this instance runs a call (those are never orphans).
    """

    def __init__(self, pool: asyncpg.Pool, leases: Leases, writer: EventWriter, *, silent_for_s: float,
                 is_local: Callable[[str], bool]) -> None:
        self._pool, self._leases, self._writer = pool, leases, writer
        self._silent_for_s, self._is_local = silent_for_s, is_local

    async def run(self) -> None:
        """Looks for orphans every third lease TTL, until cancelled."""
        while True:
            await asyncio.sleep(self._leases.ttl_ms / 1000 * 3)
            await self.sweep()

    async def sweep(self) -> None:
        try:
            async with acquire(self._pool) as conn:
                stale = await sessions.stale_live_sessions(conn, self._silent_for_s)
        except Exception as exc:
            log.warning("could not look for orphaned calls", extra={"error": type(exc).__name__})
            return
        for session_id, org_id in stale:
            if not self._is_local(str(session_id)):
                await self.end_orphan(session_id, org_id)

    async def end_orphan(self, session_id: uuid.UUID, org_id: uuid.UUID, reason: str = "owner_lost") -> None:
        key, coordinator = str(session_id), self._leases.coordinator
        token = self._leases.new_token()
        try:
            if not await coordinator.try_lease(key, token, self._leases.ttl_ms):
                return  # someone runs it (or is resuming it)
            tenant = Tenant(org_id=org_id, role="system")
            async with tenant_tx(self._pool, tenant) as conn:
                fence = await sessions.claim_session(conn, session_id)
                current = await sessions.get_session(conn, session_id)
                stored = await sessions.max_seq(conn, session_id)
                last = await sessions.list_events(conn, session_id, after_seq=stored - 1, limit=1) if stored else []
            if current is None or current.status != "live":
                return
            call_log = SessionLog(key, last_seq=max(0, stored - 1), tail_events=0)
            for row in last:  # a call whose `session.ended` was written but not its status: the log is sealed
                call_log.replay(row.payload)
            # What the dead owner published but never wrote comes first (it is in the stream).
            await recover_unflushed(coordinator, self._writer, call_log, org_id=org_id, session_id=session_id,
                                    fence=fence)
            await self._writer.flush()
            if call_log.sealed:  # it ended; only the status was not written: the reason is the event's
                last_event = decode_event(last[-1].payload)
                reason = last_event.reason if isinstance(last_event, SessionEnded) else "owner_lost"
                async with tenant_tx(self._pool, tenant) as conn:
                    await sessions.end_session(conn, session_id, reason, fence=fence)
                return
            elapsed_ms = int((datetime.now(UTC) - (current.started_at or current.created_at)).total_seconds() * 1000)
            ended = call_log.append(SessionEnded(session_id=key, ts=0, reason=reason, duration_ms=elapsed_ms))
            async with tenant_tx(self._pool, tenant) as conn:
                await sessions.append_events(conn, org_id, [(session_id, fence, e) for e in ended.entries])
            await coordinator.publish(key, token, ended.entries, self._leases.ttl_ms)
            await coordinator.set_absent(str(org_id), key)
            log.info("ended a call nobody ran", extra={"session_id": key, "reason": reason})
        except Exception as exc:
            log.warning("could not end an orphaned call", extra={"session_id": key, "error": type(exc).__name__})
        finally:
            await self._leases.release(key, token)
