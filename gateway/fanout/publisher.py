"""One call's side of the bus: its events go to the session's stream in seq order, in batches,
under the call's lease token, off the call's hot path. Each `add` says when its entry is on the
bus (with Redis, that is when the entry is durable)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.fanout.coordinator import Coordinator, StreamEntry

__all__ = ["StreamPublisher"]

log = logging.getLogger(__name__)


class StreamPublisher:
    """Args:
        coordinator: the bus.
        session_id: the call.
        token: the call's lease token; a batch refused under it means another instance took over.
        ttl_ms: the lease TTL (a publish also renews it).
        on_lost: called once when the lease turns out to be someone else's.
    """

    def __init__(self, coordinator: Coordinator, session_id: str, token: str, ttl_ms: int,
                 on_lost: Callable[[], None]) -> None:
        self._coordinator, self._session_id, self.token, self._ttl_ms = coordinator, session_id, token, ttl_ms
        self._on_lost = on_lost
        self._pending: list[tuple[StreamEntry, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._failing = False
        self.lost = False
        self._task = asyncio.create_task(self._run(), name=f"publisher-{session_id}")

    def add(self, entry: StreamEntry) -> asyncio.Future[bool]:
        """Queues an entry; the future says True once it is on the bus, False when it will not be
        (the bus is down, or another instance holds the call)."""
        published: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self.lost:
            published.set_result(False)
            return published
        self._pending.append((entry, published))
        self._idle.clear()
        self._wake.set()
        return published

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if batch:
                ok = await self._send([entry for entry, _ in batch])
                for _, published in batch:
                    if not published.done():
                        published.set_result(ok)
            if not self._pending:
                self._idle.set()

    async def _send(self, batch: list[StreamEntry]) -> bool:
        try:
            held = await self._coordinator.publish(self._session_id, self.token, batch, self._ttl_ms)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Redis is down: the call goes on and Postgres still gets every event; watchers that
            # reconnect later catch up from there. These entries are not retried.
            if not self._failing:
                log.warning("could not publish call events to the bus",
                            extra={"session_id": self._session_id, "error": type(exc).__name__})
            self._failing = True
            return False
        if self._failing:
            log.info("publishing call events again", extra={"session_id": self._session_id})
            self._failing = False
        if not held:
            self.lost = True
            for _, published in self._pending:
                published.set_result(False)
            self._pending.clear()
            self._on_lost()
        return held

    async def close(self, timeout_s: float = 5) -> None:
        """Publishes what is pending, then stops."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            pass
        self._task.cancel()
        for _, published in self._pending:
            if not published.done():
                published.set_result(False)
