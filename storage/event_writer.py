"""Appends one call's events to Postgres in order, in batches, off the call's hot path."""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg

from storage.sessions import EventRow, SegmentRow, append_events, touch_session
from storage.tenancy import Tenant, tenant_tx

__all__ = ["EventWriter"]

log = logging.getLogger(__name__)


class EventWriter:
    """Batches events and writes them at most `flush_ms` after they were added; a failed write is
    retried with the same rows (inserts are idempotent), so nothing acknowledged is dropped.

    Args:
        pool: the app pool.
        tenant: the org the session belongs to (background role `system`).
        session_id: the call.
        flush_ms: the longest an event waits before it is written.
    """

    def __init__(self, pool: asyncpg.Pool, tenant: Tenant, session_id: uuid.UUID, *, flush_ms: int = 250) -> None:
        self._pool, self._tenant, self._session_id, self._flush_s = pool, tenant, session_id, flush_ms / 1000
        self._events: list[EventRow] = []
        self._segments: list[SegmentRow] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task | None = None
        self.persisted_seq = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"event-writer-{self._session_id}")

    def add(self, event: EventRow, segment: SegmentRow | None = None) -> None:
        self._events.append(event)
        if segment is not None:
            self._segments.append(segment)
        self._wake.set()

    async def _flush(self) -> None:
        events, segments = self._events, self._segments
        if not events and not segments:
            return
        self._events, self._segments = [], []
        try:
            async with tenant_tx(self._pool, self._tenant) as conn:
                await append_events(conn, self._tenant.org_id, self._session_id, events, segments)
                await touch_session(conn, self._session_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError):
            # Put them back in front; the next round retries (inserts ignore rows already there).
            self._events, self._segments = events + self._events, segments + self._segments
            raise
        self.persisted_seq = max(self.persisted_seq, events[-1].seq if events else 0)

    async def _run(self) -> None:
        backoff = 0.25
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self._flush_s)
            try:
                await self._flush()
                backoff = 0.25
            except Exception as exc:
                log.warning("event write failed; retrying", extra={"session_id": str(self._session_id),
                                                                   "error": type(exc).__name__})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5)
                self._wake.set()
            if self._closing and not self._events:
                return

    async def close(self) -> None:
        """Writes everything still pending, then stops."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 30)
            except asyncio.TimeoutError:
                self._task.cancel()
        await self._flush()
