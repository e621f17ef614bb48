"""A call's numbered events on their way out: persisted, published, and sent to the rep only once
they are durable, in seq order.

Durable means committed to Postgres, or on a bus that keeps what it is given (Redis, when it is
configured). So a client never holds an event that a crash of this process could lose, and a call
resumed after a crash never numbers a seq the client already has. With the in-process bus (no
Redis) watchers, too, get an event only after its commit; with Redis they read the bus.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from collections.abc import Callable

from coaching.session_log import LogEntry
from gateway.fanout.publisher import StreamPublisher
from storage.event_writer import EventRefused, EventWriter, StaleOwner

__all__ = ["Delivery"]

log = logging.getLogger(__name__)


class Delivery:
    """Args:
        writer: the process's event writer (group commit).
        stream: the call's side of the bus.
        bus_keeps: whether a published entry is durable (Redis), so it need not wait for Postgres.
        org_id, session_id, fence: whose rows, under which fencing token.
        send: hands a durable frame to the rep's socket (if one is attached).
        on_stale: Postgres refused the call's rows because another instance owns it now.
        last_seq: the seq already durable when the call was built here.
    """

    def __init__(self, *, writer: EventWriter, stream: StreamPublisher, bus_keeps: bool, org_id: uuid.UUID,
                 session_id: uuid.UUID, fence: int, send: Callable[[bytes], None], on_stale: Callable[[], None],
                 last_seq: int) -> None:
        self._writer, self._stream, self._bus_keeps = writer, stream, bus_keeps
        self._org_id, self._session_id, self._fence = org_id, session_id, fence
        self._send, self._on_stale = send, on_stale
        self._queue: collections.deque[tuple[LogEntry, asyncio.Future[None], asyncio.Future[bool] | None]] = (
            collections.deque())
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self.durable_seq = last_seq  # every event up to here is durable and was handed to `send`
        self._task = asyncio.create_task(self._run(), name=f"delivery-{session_id}")

    def add(self, entry: LogEntry) -> None:
        committed = self._writer.add(self._org_id, self._session_id, self._fence, entry)
        published = self._stream.add(entry) if self._bus_keeps else None
        self._queue.append((entry, committed, published))
        self._empty.clear()
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                entry, committed, published = self._queue[0]
                try:
                    if published is None or not await published:
                        await asyncio.shield(committed)
                except StaleOwner:
                    self._queue.clear()
                    self._on_stale()
                    break
                except EventRefused:
                    self._queue.popleft()  # Postgres will never take it: it never reaches a client
                    continue
                self._queue.popleft()
                if not self._bus_keeps:
                    self._stream.add(entry)  # watchers read the in-process bus: only what is durable
                self.durable_seq = entry.seq
                self._send(entry.frame)
            self._empty.set()

    async def drain(self, timeout_s: float, *, behind_s: float = 30) -> bool:
        """Waits until every event added so far is durable and sent. Gives up after `timeout_s`
        while Postgres is unreachable (the events stay with the writer, which goes on retrying),
        and after `behind_s` while the writer is only behind (a loaded database): a rep whose
        call ends then still gets its `session.ended`. False when it gave up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + behind_s
        while True:
            try:
                async with asyncio.timeout(max(0.0, min(timeout_s, deadline - loop.time()))):
                    await self._empty.wait()
                return True
            except TimeoutError:
                if self._writer.failing or loop.time() >= deadline:
                    log.warning("events not yet durable when the call let go", extra={
                        "session_id": str(self._session_id), "pending": len(self._queue),
                        "postgres_unreachable": self._writer.failing})
                    return False

    def close(self) -> None:
        self._task.cancel()
