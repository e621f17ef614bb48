"""What gateway instances share about live calls, as one small Protocol with two implementations:
Redis (`redis.py`, several instances) and in-process (`memory.py`, one instance, no Redis).

- Stream: each session's events in seq order, bounded; readers block for the next ones (one
  reader per instance reads every stream it watches in one call: `read_many`).
- Lease: one owner per call. The owner's token is checked on every batch it publishes and on
  every heartbeat; once another instance holds the lease, the old owner's batches are refused.
- Presence: the org's live calls, each entry expiring unless its owner's heartbeat renews it.
- Commands: a message to one instance (a whisper for a call it owns, "hand this call over").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from coaching.session_log import LogEntry

__all__ = ["ENDED_STREAM_TTL_S", "CommandHandler", "Coordinator", "StreamEntry", "owner_of", "stream_lifetime_s"]


StreamEntry = LogEntry  # seq, type and frame travel on the bus (a final's segment does not)

# A stream lives an hour after its last event while the call runs; once `session.ended` is on it,
# a minute, for the watchers still reading it. A watcher that joins later reads Postgres first
# (feeds.py), so nothing needs the stream then; keeping it would hold every ended call's events
# in memory (the in-process bus) or in Redis for an hour.
ENDED_STREAM_TTL_S = 60


def stream_lifetime_s(entries: Sequence[StreamEntry], running_ttl_s: float) -> float:
    return ENDED_STREAM_TTL_S if any(e.type == "session.ended" for e in entries) else running_ttl_s


CommandHandler = Callable[[bytes], Awaitable[None]]


def owner_of(token: str | None) -> str | None:
    """The instance id in a lease token (`instance|nonce`)."""
    return token.split("|", 1)[0] if token else None


class Coordinator(Protocol):
    instance_id: str
    shared: bool  # True when other instances see the same state (Redis)

    async def publish(self, session_id: str, token: str, entries: Sequence[StreamEntry], ttl_ms: int) -> bool:
        """Appends entries if `token` holds the call's lease (taking it when nobody does).
        False: another instance owns the call now; nothing was appended."""

    async def publish_many(self, batches: Sequence[tuple[str, str, Sequence[StreamEntry]]],
                           ttl_ms: int) -> list[bool]:
        """`publish` for several calls (session id, token, entries) in one round trip; each one's answer."""

    async def read(self, session_id: str, after_seq: int, *, block_ms: int) -> list[StreamEntry]:
        """Entries with seq > after_seq, waiting up to block_ms for the first (0: do not wait)."""

    async def read_many(self, positions: Mapping[str, int], *, block_ms: int) -> dict[str, list[StreamEntry]]:
        """`read` for several sessions (session id: after_seq) at once: each one that has entries,
        waiting up to block_ms for the first of any, or until `wake` is called."""

    async def wake(self) -> None:
        """Ends this instance's waiting `read_many` now, with whatever it has (nothing): the
        reader has a new session to read as well."""

    async def try_lease(self, session_id: str, token: str, ttl_ms: int) -> bool:
        """Takes the lease if nobody holds it."""

    async def renew(self, tokens: dict[str, str], ttl_ms: int) -> set[str]:
        """Extends each lease still held by its token; returns the sessions whose lease is lost."""

    async def release(self, session_id: str, token: str) -> None:
        """Lets the lease go, if `token` still holds it."""

    async def lease_holder(self, session_id: str) -> str | None:
        """The token holding the lease, if any."""

    async def send(self, instance_id: str, command: bytes) -> bool:
        """Delivers a command to one instance; False when no such instance is listening."""

    async def listen(self, handler: CommandHandler) -> None:
        """Runs `handler` for each command sent to this instance, until cancelled."""

    async def set_present(self, entries: Sequence[tuple[str, str, bytes]], ttl_ms: int) -> None:
        """(org_id, session_id, entry JSON) for each live call this instance runs."""

    async def set_absent(self, org_id: str, session_id: str) -> None: ...

    async def live(self, org_id: str) -> list[bytes]:
        """The org's live-call entries whose owner renewed them within the TTL."""

    async def ping(self) -> None: ...
