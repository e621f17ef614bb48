"""The live-call list (`GET /api/live`): one entry per live call, kept in presence on the bus by
whoever runs the call (a browser call's owner, the VAPI translator) and read by the route."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from coaching.persona import Persona
from storage.sessions import SessionRow

__all__ = ["LiveEntry", "Named", "decode_entry", "live_entry"]


class Named(msgspec.Struct, frozen=True):
    id: str
    name: str


class LiveEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One live call as `GET /api/live` shows it (kept in presence, renewed while the call runs)."""

    session_id: str
    rep: Named
    persona: Named
    started_at: datetime
    transport: str
    instance: str
    last_activity_at: datetime


decode_entry = msgspec.json.Decoder(LiveEntry).decode


def live_entry(session: SessionRow, persona: Persona | None, *, instance: str, rep_name: str | None = None,
               started_at: datetime | None = None, last_activity_at: datetime | None = None,
               transport: str | None = None) -> tuple[str, str, bytes]:
    """The presence entry of a live session: (org id, session id, entry JSON).

    Args:
        session: the session row (its persona snapshot names the persona when `persona` is None).
        persona: the call's persona, if loaded.
        instance: who runs it (an instance id, or "vapi").
        rep_name: the rep's name when the row does not carry it.
        started_at: when the call started, when the row was read before it did.
        last_activity_at: when something last happened (now by default).
        transport: how the rep is connected now ("websocket", "webrtc"; default: the session's).
    """
    now = datetime.now(UTC)
    entry = LiveEntry(
        session_id=str(session.id), rep=Named(str(session.user_id), rep_name or session.rep_name or ""),
        persona=Named(session.persona_id, persona.name if persona else session.persona_id),
        started_at=started_at or session.started_at or now, transport=transport or session.transport,
        instance=instance,
        last_activity_at=last_activity_at or now,
    )
    return str(session.org_id), str(session.id), msgspec.json.encode(entry)
