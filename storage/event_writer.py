"""Appends every live call's events to Postgres in order, in batches, off the calls' hot path.

One writer per process: each flush writes all pending events of all calls, one transaction per
organization (three statements), instead of a transaction per call. At a hundred calls that is
the difference between thousands of round trips a second and a few dozen.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from types import TracebackType

import asyncpg

from coaching.session_log import LogEntry
from storage.sessions import append_events
from storage.tenancy import Tenant, tenant_tx

__all__ = ["EventWriter"]

log = logging.getLogger(__name__)


class EventWriter:
    """Writes each event at most `flush_ms` after it was added; a failed write is retried with the
    same rows (inserts are idempotent), so nothing acknowledged is dropped.

    Args:
        pool: the app pool.
        flush_ms: the longest an event waits before it is written.
    """

    def __init__(self, pool: asyncpg.Pool, *, flush_ms: int = 250) -> None:
        self._pool, self._flush_s = pool, flush_ms / 1000
        self._events: dict[uuid.UUID, list[tuple[uuid.UUID, int, LogEntry]]] = defaultdict(list)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

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
        await self.flush()

    def add(self, org_id: uuid.UUID, session_id: uuid.UUID, fence: int, entry: LogEntry) -> None:
        """Queues one numbered event (with its transcript segment, if any); `fence` is the owner's
        fencing token (rows of a stale owner are dropped)."""
        self._events[org_id].append((session_id, fence, entry))
        self._wake.set()

    async def flush(self) -> None:
        """Writes everything pending now (calls use it when they end).

        Raises:
            asyncpg.PostgresError, OSError: the write failed; the rows stay pending.
        """
        async with self._lock:
            events, self._events = self._events, defaultdict(list)
            failed: Exception | None = None
            for org_id in list(events):
                try:
                    async with tenant_tx(self._pool, Tenant(org_id=org_id, role="system")) as conn:
                        dropped = await append_events(conn, org_id, events[org_id])
                    if dropped:
                        log.warning("events of a call this instance no longer owns were dropped",
                                    extra={"count": dropped})
                except asyncpg.DataError:
                    # A row Postgres will never take must not hold the org's other calls back forever.
                    await self._one_by_one(org_id, events[org_id])
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                    # Back in front of anything added meanwhile, for the next round.
                    self._events[org_id][:0] = events[org_id]
                    failed = exc
            if failed is not None:
                raise failed

    async def _one_by_one(self, org_id: uuid.UUID, rows: list[tuple[uuid.UUID, int, LogEntry]]) -> None:
        for row in rows:
            try:
                async with tenant_tx(self._pool, Tenant(org_id=org_id, role="system")) as conn:
                    await append_events(conn, org_id, [row])
            except asyncpg.DataError as exc:
                log.error("an event Postgres refuses was dropped",
                          extra={"session_id": str(row[0]), "seq": row[2].seq, "error": type(exc).__name__})

    async def _run(self) -> None:
        backoff = 0.25
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self._flush_s)
            try:
                await self.flush()
                backoff = 0.25
            except Exception as exc:
                log.warning("event write failed; retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5)
                self._wake.set()
