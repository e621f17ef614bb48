"""The coordinator for one instance without Redis: the same behaviour, in this process."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Mapping, Sequence

from gateway.fanout.coordinator import CommandHandler, StreamEntry, stream_lifetime_s

__all__ = ["MemoryCoordinator"]


class _Stream:
    def __init__(self, maxlen: int) -> None:
        self.entries: collections.deque[StreamEntry] = collections.deque(maxlen=maxlen)
        self.expires = 0.0

    def after(self, seq: int) -> list[StreamEntry]:
        """Entries past `seq`, walking back from the newest (a reader is usually one behind)."""
        found = []
        for entry in reversed(self.entries):
            if entry.seq <= seq:
                break
            found.append(entry)
        found.reverse()
        return found


class MemoryCoordinator:
    shared = False

    def __init__(self, instance_id: str, *, stream_maxlen: int = 1000, stream_ttl_s: float = 3600,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`clock` (seconds) decides every expiry: of leases, presence and idle streams. Tests pass a
        fake one to move time instead of sleeping."""
        self.instance_id = instance_id
        self._clock = clock
        self._maxlen, self._stream_ttl = stream_maxlen, stream_ttl_s
        self._streams: dict[str, _Stream] = {}
        self._next_sweep = 0.0
        self._leases: dict[str, tuple[str, float]] = {}
        self._presence: dict[str, dict[str, tuple[bytes, float]]] = collections.defaultdict(dict)
        self._handler: CommandHandler | None = None
        self._changed = asyncio.Condition()  # any stream got entries, or a reader was woken

    def _stream(self, session_id: str) -> _Stream:
        now = self._clock()
        if now >= self._next_sweep:  # at most once a second: thousands of streams, many calls
            self._next_sweep = now + 1.0
            for key in [k for k, s in self._streams.items() if s.expires < now]:
                del self._streams[key]  # as a Redis stream's key expires after its last event
        stream = self._streams.get(session_id)
        if stream is None:
            stream = self._streams[session_id] = _Stream(self._maxlen)
            stream.expires = now + self._stream_ttl
        return stream

    def _holder(self, session_id: str) -> str | None:
        held = self._leases.get(session_id)
        if held is None or held[1] < self._clock():
            self._leases.pop(session_id, None)
            return None
        return held[0]

    async def publish(self, session_id: str, token: str, entries: Sequence[StreamEntry], ttl_ms: int) -> bool:
        holder = self._holder(session_id)
        if holder not in (None, token):
            return False
        self._leases[session_id] = (token, self._clock() + ttl_ms / 1000)
        stream = self._stream(session_id)
        last = stream.entries[-1].seq if stream.entries else 0
        stream.entries.extend(e for e in entries if e.seq > last)
        stream.expires = self._clock() + stream_lifetime_s(entries, self._stream_ttl)
        await self.wake()
        return True

    async def publish_many(self, batches: Sequence[tuple[str, str, Sequence[StreamEntry]]],
                           ttl_ms: int) -> list[bool]:
        return [await self.publish(session_id, token, entries, ttl_ms) for session_id, token, entries in batches]

    async def read(self, session_id: str, after_seq: int, *, block_ms: int) -> list[StreamEntry]:
        return (await self.read_many({session_id: after_seq}, block_ms=block_ms)).get(session_id, [])

    async def read_many(self, positions: Mapping[str, int], *, block_ms: int) -> dict[str, list[StreamEntry]]:
        found = self._after(positions)
        if found or block_ms <= 0:
            return found
        async with self._changed:
            try:
                async with asyncio.timeout(block_ms / 1000):
                    await self._changed.wait()
            except TimeoutError:
                return {}
        return self._after(positions)

    def _after(self, positions: Mapping[str, int]) -> dict[str, list[StreamEntry]]:
        return {session_id: entries for session_id, after_seq in positions.items()
                if (entries := self._stream(session_id).after(after_seq))}

    async def wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def try_lease(self, session_id: str, token: str, ttl_ms: int) -> bool:
        if self._holder(session_id) not in (None, token):
            return False
        self._leases[session_id] = (token, self._clock() + ttl_ms / 1000)
        return True

    async def renew(self, tokens: dict[str, str], ttl_ms: int) -> set[str]:
        lost = set()
        for session_id, token in tokens.items():
            if not await self.try_lease(session_id, token, ttl_ms):
                lost.add(session_id)
        return lost

    async def release(self, session_id: str, token: str) -> None:
        if self._holder(session_id) == token:
            del self._leases[session_id]

    async def lease_holder(self, session_id: str) -> str | None:
        return self._holder(session_id)

    async def send(self, instance_id: str, command: bytes) -> bool:
        if instance_id != self.instance_id or self._handler is None:
            return False
        await self._handler(command)
        return True

    async def listen(self, handler: CommandHandler) -> None:
        self._handler = handler
        try:
            await asyncio.Event().wait()
        finally:
            self._handler = None

    async def set_present(self, entries: Sequence[tuple[str, str, bytes]], ttl_ms: int) -> None:
        expires = self._clock() + ttl_ms / 1000
        for org_id, session_id, entry in entries:
            self._presence[org_id][session_id] = (entry, expires)

    async def set_absent(self, org_id: str, session_id: str) -> None:
        self._presence[org_id].pop(session_id, None)

    async def live(self, org_id: str) -> list[bytes]:
        now = self._clock()
        calls = self._presence.get(org_id, {})
        for session_id in [s for s, (_, expires) in calls.items() if expires < now]:
            del calls[session_id]
        return [entry for entry, _ in calls.values()]

    async def ping(self) -> None:
        return None
