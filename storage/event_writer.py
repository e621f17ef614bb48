"""Appends every live call's events to Postgres, with group commit, and says when each is durable.

One writer per process. An event added while no write is in flight is written at once; events
added while one is in flight wait for it and go together in the next (group commit), one
transaction per organization, the organizations in parallel. `add` returns a future that is done
when the event is committed: a call sends an event to its clients only then (a client never sees
an event a crash could lose). At a hundred calls this is a few dozen transactions a second rather
than thousands.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from types import TracebackType

import asyncpg

from coaching.errors import SparringError
from coaching.session_log import LogEntry
from storage.sessions import append_events
from storage.tenancy import Tenant, tenant_tx

__all__ = ["EventRefused", "EventWriter", "StaleOwner"]

log = logging.getLogger(__name__)


class StaleOwner(SparringError):
    """Postgres dropped an event because another instance has taken the call (its fence moved on)."""


class EventRefused(SparringError):
    """Postgres will never take this event (it was dropped; the call goes on without it)."""


_Row = tuple[uuid.UUID, int, LogEntry, "asyncio.Future[None]"]


class EventWriter:
    """Writes each event as soon as the write before it is done; a failed write is retried with the
    same rows (inserts are idempotent), so nothing added is dropped while Postgres is down.

    Args:
        pool: the app pool.
        max_backoff_s: the longest wait between two retries while Postgres is unreachable.
    """

    def __init__(self, pool: asyncpg.Pool, *, max_backoff_s: float = 2.0) -> None:
        self._pool, self._max_backoff_s = pool, max_backoff_s
        self._events: dict[uuid.UUID, list[_Row]] = defaultdict(list)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.failing = False  # the last write failed (Postgres unreachable); rows are kept

    async def __aenter__(self) -> EventWriter:
        self._task = asyncio.create_task(self._run(), name="event-writer")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        try:
            await self.flush()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.error("events not persisted at shutdown", extra={"error": type(exc).__name__})

    def add(self, org_id: uuid.UUID, session_id: uuid.UUID, fence: int, entry: LogEntry) -> asyncio.Future[None]:
        """Queues one numbered event (with its transcript segment, if any) under the owner's
        fencing token; the future is done when the event is committed.

        The future fails with `StaleOwner` when another instance has taken the call, and with
        `EventRefused` when Postgres will never take the row.
        """
        durable: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        durable.add_done_callback(_retrieved)  # a caller that never waits is not warned about
        self._events[org_id].append((session_id, fence, entry, durable))
        self._wake.set()
        return durable

    @property
    def pending(self) -> int:
        return sum(len(rows) for rows in self._events.values())

    async def flush(self) -> None:
        """Writes everything pending now (calls use it when they end).

        Raises:
            asyncpg.PostgresError, OSError: the write failed; the rows stay pending.
        """
        async with self._lock:
            events, self._events = self._events, defaultdict(list)
            results = await asyncio.gather(*(self._write(org_id, rows) for org_id, rows in events.items()))
            failed = [(org_id, exc) for (org_id, _), exc in zip(events.items(), results, strict=True) if exc]
            for org_id, _ in failed:
                # Back in front of anything added meanwhile, for the next round.
                self._events[org_id][:0] = events[org_id]
            self.failing = bool(failed)
            if failed:
                raise failed[0][1]

    async def _write(self, org_id: uuid.UUID, rows: list[_Row]) -> Exception | None:
        """One org's rows in one transaction; resolves their futures. Returns the failure, if any."""
        try:
            async with tenant_tx(self._pool, Tenant(org_id=org_id, role="system")) as conn:
                dropped = await append_events(conn, org_id, [(s, f, e) for s, f, e, _ in rows])
        except asyncpg.DataError:
            # A row Postgres will never take must not hold the org's other calls back forever.
            await self._one_by_one(org_id, rows)
            return None
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            return exc
        if dropped:
            log.warning("events of a call this instance no longer owns were dropped", extra={"count": len(dropped)})
        for session_id, _, _, durable in rows:
            _settle(durable, StaleOwner(f"call {session_id} is owned by another instance now")
                    if session_id in dropped else None)
        return None

    async def _one_by_one(self, org_id: uuid.UUID, rows: list[_Row]) -> None:
        for session_id, fence, entry, durable in rows:
            try:
                async with tenant_tx(self._pool, Tenant(org_id=org_id, role="system")) as conn:
                    dropped = await append_events(conn, org_id, [(session_id, fence, entry)])
                _settle(durable, StaleOwner(f"call {session_id} is owned by another instance now")
                        if dropped else None)
            except asyncpg.DataError as exc:
                log.error("an event Postgres refuses was dropped",
                          extra={"session_id": str(session_id), "seq": entry.seq, "error": type(exc).__name__})
                _settle(durable, EventRefused(f"event {entry.seq} of call {session_id} was refused"))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                self._events[org_id].append((session_id, fence, entry, durable))  # retried with the next round

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                if backoff > 0.05:
                    log.info("events are being persisted again")
                backoff = 0.05
            except Exception as exc:
                if backoff == 0.05:
                    log.warning("event write failed; retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                self._wake.set()


def _settle(durable: asyncio.Future[None], error: Exception | None) -> None:
    if durable.done():
        return
    if error is None:
        durable.set_result(None)
    else:
        durable.set_exception(error)


def _retrieved(durable: asyncio.Future[None]) -> None:
    if not durable.cancelled():
        durable.exception()
