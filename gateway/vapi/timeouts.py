"""Ends VAPI calls whose `ended` never arrived.

A VAPI call is live from its first webhook until VAPI says it ended. When that message is lost
(VAPI gave up retrying, the endpoint was down), the session would stay live forever: listed in
GET /api/live and holding a live call. Every instance sweeps for VAPI calls started longer ago than
MAX_CALL_SECONDS plus a grace and ends each (`vapi_timeout`) through `VapiCalls.end_stale`, which
numbers `session.ended` through the call's session log under the session's lock.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from gateway.vapi.calls import VapiCalls
from storage import vapi as store
from storage.database import acquire

__all__ = ["VapiTimeouts"]

log = logging.getLogger(__name__)


class VapiTimeouts:
    """Args:
        pool: the app pool.
        calls: the process's VAPI calls (they number the events).
        after_s: how long after its start a VAPI call is ended (MAX_CALL_SECONDS plus a grace).
        every_s: how often to look.
    """

    def __init__(self, pool: asyncpg.Pool, calls: VapiCalls, *, after_s: float, every_s: float) -> None:
        self._pool, self._calls, self._after_s, self._every_s = pool, calls, after_s, every_s

    async def run(self) -> None:
        """Sweeps every `every_s`, until cancelled."""
        while True:
            await asyncio.sleep(self._every_s)
            await self.sweep()

    async def sweep(self) -> int:
        """Ends every overdue VAPI call; returns how many it ended."""
        try:
            async with acquire(self._pool) as conn:
                stale = await store.stale_vapi_sessions(conn, self._after_s)
        except Exception as exc:
            log.warning("could not look for overdue VAPI calls", extra={"error": type(exc).__name__})
            return 0
        ended = 0
        for session_id, org_id in stale:
            try:
                ended += await self._calls.end_stale(session_id, org_id, started_before_s=self._after_s)
            except Exception as exc:
                log.warning("could not end an overdue VAPI call",
                            extra={"session_id": str(session_id), "error": type(exc).__name__})
        return ended
