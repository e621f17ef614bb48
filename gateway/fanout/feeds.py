"""Watchers of live calls on this instance: one reader for every watched session, fanning out locally.

Every watcher frame comes from the session's stream (the bus), after the history from Postgres:
a joining watcher first gets the stored events after its `after_seq`, then whatever the stream
holds after those, then live entries, one frame per event in seq order. Whenever a watcher would
see a gap (Redis lost entries during an outage, or the stream was trimmed before Postgres caught
up) it catches up from Postgres again before anything newer is sent.

The reader is one task per instance: each read names every watched session's stream with its
position (one XREAD over all of them, not one blocked Redis connection and one round trip per
call and event). A session that gains its first watcher wakes the waiting read, so it is read
from then on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid

import asyncpg

from coaching.session_log import as_sent
from gateway.calls.outbox import Outbox
from gateway.errors import INTERNAL, NORMAL, RESTARTING, TRY_AGAIN
from gateway.fanout.coordinator import Coordinator, StreamEntry
from storage import sessions
from storage.tenancy import Tenant, tenant_tx

__all__ = ["FeedHub", "Watcher"]

log = logging.getLogger(__name__)
_MEMORY = 1000  # entries each feed keeps for watchers that join
_CATCH_UP_TRIES = 40  # x 100 ms: the event writer flushes every 250 ms


class Watcher:
    def __init__(self, outbox: Outbox, tenant: Tenant, session_id: str, after_seq: int) -> None:
        self.outbox, self.tenant, self.sent = outbox, tenant, after_seq
        self.session_uuid = uuid.UUID(session_id)
        self.joining = True

    def send(self, seq: int, type_: str, frame: bytes) -> None:
        self.outbox.send_text(frame)
        self.sent = seq
        if type_ == "session.ended":
            self.outbox.close(NORMAL, "call ended")


class _Feed:
    def __init__(self, hub: FeedHub, session_id: str) -> None:
        self.hub, self.session_id = hub, session_id
        self.memory: collections.deque[StreamEntry] = collections.deque(maxlen=_MEMORY)
        self.watchers: set[Watcher] = set()
        self.after = 0  # the last seq read from the stream
        self._tasks: set[asyncio.Task] = set()

    def take(self, entries: list[StreamEntry]) -> None:
        for entry in entries:
            if entry.seq <= self.after:
                continue
            self.after = entry.seq
            self.memory.append(entry)
            for watcher in list(self.watchers):
                self._deliver(watcher, entry)

    def interrupted(self) -> None:
        self.stop()
        for watcher in self.watchers:
            watcher.outbox.close(TRY_AGAIN, "the live feed was interrupted; reconnect with after_seq to resume")

    def _deliver(self, watcher: Watcher, entry: StreamEntry) -> None:
        if watcher.joining or entry.seq <= watcher.sent:
            return
        if entry.seq > watcher.sent + 1:
            self.catch_up(watcher)
            return
        watcher.send(entry.seq, entry.type, entry.frame)

    def catch_up(self, watcher: Watcher) -> None:
        watcher.joining = True
        task = asyncio.create_task(self._catch_up(watcher))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _catch_up(self, watcher: Watcher) -> None:
        """Postgres after what the watcher has, then the feed's memory: no await between the last
        check and going live, so nothing slips in between."""
        try:
            for _ in range(_CATCH_UP_TRIES):
                async with tenant_tx(self.hub.pool, watcher.tenant) as conn:
                    rows = await sessions.list_events(conn, watcher.session_uuid, after_seq=watcher.sent,
                                                      limit=1_000_000)
                for row in rows:
                    if row.seq == watcher.sent + 1:
                        watcher.send(row.seq, row.type, as_sent(row.payload))
                newer = [e for e in self.memory if e.seq > watcher.sent]
                if newer and newer[0].seq > watcher.sent + 1:
                    await asyncio.sleep(0.1)  # in neither place yet: Postgres is about to get it
                    continue
                for entry in newer:
                    watcher.send(entry.seq, entry.type, entry.frame)
                watcher.joining = False
                return
            watcher.outbox.close(INTERNAL, "could not load this call's history; reconnect to try again")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever it was, the watcher must not hang in "joining"
            log.warning("watcher catch-up failed", extra={"session_id": self.session_id, "error": type(exc).__name__})
            watcher.outbox.close(INTERNAL, "could not load this call's history; reconnect to try again")

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()


class FeedHub:
    """Args:
        coordinator: the bus.
        pool: the app pool (history comes from Postgres).
    """

    def __init__(self, coordinator: Coordinator, pool: asyncpg.Pool) -> None:
        self.coordinator, self.pool = coordinator, pool
        self._feeds: dict[str, _Feed] = {}
        self._reader: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    def watch(self, session_id: str, tenant: Tenant, outbox: Outbox, after_seq: int) -> Watcher:
        """Adds a watcher: history after `after_seq`, then live. Returns it for `leave`."""
        feed = self._feeds.get(session_id)
        if feed is None:
            feed = self._feeds[session_id] = _Feed(self, session_id)
            self._read_too()
        watcher = Watcher(outbox, tenant, session_id, after_seq)
        feed.watchers.add(watcher)
        feed.catch_up(watcher)
        return watcher

    def _read_too(self) -> None:
        """Starts the reader, or wakes the one waiting so that its next read has the new feed."""
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="live-feeds")
            return
        task = asyncio.create_task(self._wake())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wake(self) -> None:
        try:
            await self.coordinator.wake()
        except Exception as exc:  # the reader's own read fails the same way and says so
            log.debug("could not wake the live feeds' reader", extra={"error": type(exc).__name__})

    async def _read(self) -> None:
        """Until no session is watched: read every feed's stream, hand each feed its entries. A
        failed read interrupts every feed it was reading (their watchers reconnect and resume)."""
        while self._feeds:
            feeds = dict(self._feeds)
            try:
                found = await self.coordinator.read_many({s: f.after for s, f in feeds.items()}, block_ms=2000)
                for session_id, entries in found.items():
                    feed = feeds.get(session_id)
                    if feed is not None and self._feeds.get(session_id) is feed:  # not left while reading
                        feed.take(entries)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live feeds interrupted", extra={"feeds": len(feeds), "error": type(exc).__name__})
                for session_id, feed in feeds.items():
                    if self._feeds.get(session_id) is feed:
                        del self._feeds[session_id]
                    feed.interrupted()

    def leave(self, session_id: str, watcher: Watcher) -> None:
        feed = self._feeds.get(session_id)
        if feed is None:
            return
        feed.watchers.discard(watcher)
        if not feed.watchers:
            feed.stop()
            del self._feeds[session_id]

    def __len__(self) -> int:
        return len(self._feeds)

    async def close(self) -> None:
        feeds = list(self._feeds.values())
        self._feeds.clear()
        for task in (self._reader, *self._tasks):
            if task is not None:
                task.cancel()
        for feed in feeds:
            feed.stop()
            for watcher in feed.watchers:
                watcher.outbox.close(RESTARTING, "the server is restarting; reconnect to resume")

    def watchers(self) -> list[Watcher]:
        """Every watcher on this instance (the revocation sweep checks them)."""
        return [watcher for feed in self._feeds.values() for watcher in feed.watchers if not watcher.outbox.closed]
