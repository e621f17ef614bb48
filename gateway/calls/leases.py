"""Call ownership on the bus: taking a call's lease (asking its owner elsewhere to hand it over),
letting it go, and the heartbeat that renews every lease and live-list entry of this instance's
calls three times per TTL and tells a call when another instance took its lease."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.errors import TRY_AGAIN, CallRefused
from gateway.fanout.commands import Handover, encode_command
from gateway.fanout.coordinator import Coordinator, owner_of

__all__ = ["Leased", "Leases"]

log = logging.getLogger(__name__)


class Leased(Protocol):
    """A call as the heartbeat sees it."""

    session_id: str
    ending: bool

    @property
    def token(self) -> str: ...

    def presence(self, instance: str) -> tuple[str, str, bytes]: ...

    def lease_lost(self) -> None: ...


class Leases:
    """Args:
        coordinator: the bus.
        ttl_ms: how long a lease (and a live-list entry) lives without a heartbeat.
        calls: this instance's calls, now.
    """

    def __init__(self, coordinator: Coordinator, *, ttl_ms: int, calls: Callable[[], Sequence[Leased]]) -> None:
        self.coordinator, self.ttl_ms, self._calls = coordinator, ttl_ms, calls
        self._bus_down = False

    def new_token(self) -> str:
        return f"{self.coordinator.instance_id}|{uuid.uuid4().hex[:16]}"

    async def take(self, session_id: str) -> str:
        """Waits for the call's lease (asking its owner elsewhere to hand it over); returns the token.

        Raises:
            CallRefused: the other owner neither handed over nor let its lease expire in time.
        """
        token = self.new_token()
        try:
            holder = await self.coordinator.lease_holder(session_id)
            if holder is not None:
                owner = owner_of(holder)
                if owner == self.coordinator.instance_id:
                    await self.coordinator.release(session_id, holder)  # a call this process already let go
                else:
                    await self.coordinator.send(owner or "", encode_command(Handover(session_id)))
            deadline = time.monotonic() + self.ttl_ms / 1000 + 5
            while not await self.coordinator.try_lease(session_id, token, self.ttl_ms):
                if time.monotonic() > deadline:
                    raise CallRefused(TRY_AGAIN, "this call is still held by another server; try again in a moment")
                await asyncio.sleep(0.1)
        except CallRefused:
            raise
        except Exception as exc:
            # Redis is down: run the call anyway (the first publish after it is back takes the lease).
            log.warning("could not take a call's lease; running it without one",
                        extra={"session_id": session_id, "error": type(exc).__name__})
        return token

    async def release(self, session_id: str, token: str) -> None:
        """Lets the lease go if `token` still holds it; a bus that is down lets it expire instead."""
        try:
            await self.coordinator.release(session_id, token)
        except Exception as exc:
            log.warning("could not release a call's lease", extra={"session_id": session_id,
                                                                  "error": type(exc).__name__})

    async def present(self, calls: Sequence[Leased]) -> None:
        """Writes (renews) the calls' entries in the live list."""
        try:
            await self.coordinator.set_present([c.presence(self.coordinator.instance_id) for c in calls], self.ttl_ms)
        except Exception as exc:
            log.warning("could not update live-call presence", extra={"error": type(exc).__name__})

    async def heartbeat(self) -> None:
        """Renews every lease and live-list entry of this instance's calls, three times per TTL,
        until cancelled."""
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            await self.beat()

    async def beat(self) -> None:
        calls = [c for c in self._calls() if not c.ending]
        try:
            lost = await self.coordinator.renew({c.session_id: c.token for c in calls}, self.ttl_ms)
            await self.present([c for c in calls if c.session_id not in lost])
            if self._bus_down:
                log.info("the bus is reachable again")
            self._bus_down = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._bus_down:
                log.warning("call heartbeat failed; calls go on", extra={"error": type(exc).__name__})
            self._bus_down = True
            return
        for call in calls:
            if call.session_id in lost:
                call.lease_lost()
            elif call.ending:  # let go while the renewal was on its way: do not hold on to it
                await self.release(call.session_id, call.token)
