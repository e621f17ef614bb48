"""Taking over what a dead owner left on the bus: the events it published to the session's stream
but never wrote to Postgres. Whoever takes the call next (a rep's reconnect, the janitor) replays
them into the call's log and persists them under its own fence, before anything new is numbered."""

from __future__ import annotations

import logging
import uuid

from coaching.session_log import SessionLog
from gateway.fanout.coordinator import Coordinator
from storage.event_writer import EventWriter

__all__ = ["recover_unflushed"]

log = logging.getLogger(__name__)


async def recover_unflushed(coordinator: Coordinator, writer: EventWriter, log_: SessionLog, *,
                            org_id: uuid.UUID, session_id: uuid.UUID, fence: int) -> int:
    """Replays the stream's events after the log's last seq into the log (the contiguous run
    only) and queues them for Postgres under `fence`. Returns how many there were; 0 when the bus
    cannot be read (what Postgres has is then all there is)."""
    recovered = 0
    while True:
        try:
            entries = await coordinator.read(str(session_id), log_.last_seq, block_ms=0)
        except Exception as exc:
            log.warning("could not read the call's stream", extra={"session_id": str(session_id),
                                                                  "error": type(exc).__name__})
            return recovered
        taken = 0
        for entry in entries:
            if entry.seq != log_.last_seq + 1:
                return recovered + taken
            writer.add(org_id, session_id, fence, log_.replay(entry.frame))
            taken += 1
        recovered += taken
        if not taken:
            return recovered
