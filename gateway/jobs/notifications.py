"""Job changes as they happen, on every instance: one connection LISTENs on the jobs channel and
wakes whoever waits for a job (a progress stream) and the runner (new work). A notification only
says "look again": the job row is the state, so a missed one costs a poll interval, nothing more."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg

from storage.database import acquire
from storage.jobs import JOB_CHANNEL

__all__ = ["JobNotifications"]

log = logging.getLogger(__name__)


class JobNotifications:
    def __init__(self, pool: asyncpg.Pool, *, check_every_s: float = 5.0) -> None:
        self._pool, self._check_every_s = pool, check_every_s
        self._waiters: dict[uuid.UUID, set[asyncio.Event]] = {}
        self._any: set[Callable[[], None]] = set()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> JobNotifications:
        self._task = asyncio.create_task(self._listen(), name="job-notifications")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def on_any(self, callback: Callable[[], None]) -> None:
        self._any.add(callback)

    @contextlib.asynccontextmanager
    async def watch(self, job_id: uuid.UUID) -> AsyncIterator[asyncio.Event]:
        """An event set whenever the job changes (clear it before looking again)."""
        event = asyncio.Event()
        self._waiters.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[job_id]

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        try:
            job_id = uuid.UUID(str(payload))
        except ValueError:
            return
        for event in self._waiters.get(job_id, ()):
            event.set()
        for callback in list(self._any):
            callback()

    async def _listen(self) -> None:
        """Holds one pooled connection listening; after a lost connection (a Postgres restart),
        waits and listens again, waking everyone so nothing sleeps through what it missed."""
        while True:
            try:
                async with acquire(self._pool) as conn:
                    await conn.add_listener(JOB_CHANNEL, self._notified)
                    try:
                        self._wake_all()
                        while not conn.is_closed():
                            await asyncio.sleep(self._check_every_s)
                            await conn.execute("SELECT 1")
                    finally:
                        if not conn.is_closed():
                            await conn.remove_listener(JOB_CHANNEL, self._notified)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("job notifications interrupted; listening again", extra={"error": type(exc).__name__})
            self._wake_all()
            await asyncio.sleep(1.0)

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()
        for callback in list(self._any):
            callback()
