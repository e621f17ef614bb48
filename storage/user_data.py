"""Everything one user owns: exported as one document, or deleted with the account."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

__all__ = ["delete_user", "export_user"]

# Each query returns one JSON value; the caller's row-level security context still applies, and
# every query is also limited to the caller's own rows (a coach must not export the org's).
_EXPORT_QUERIES: dict[str, str] = {
    "profile": """
        SELECT to_jsonb(u) - 'password_hash' FROM users u WHERE u.id = $1""",
    "memberships": """
        SELECT coalesce(jsonb_agg(jsonb_build_object('org_id', o.id, 'org_name', o.name, 'role', m.role,
                                                     'joined_at', m.created_at) ORDER BY m.created_at), '[]')
        FROM memberships m JOIN organizations o ON o.id = m.org_id WHERE m.user_id = $1""",
    "sessions": """
        SELECT coalesce(jsonb_agg(to_jsonb(s) || jsonb_build_object(
            'events', (SELECT coalesce(jsonb_agg(jsonb_build_object('seq', e.seq, 'type', e.type, 'at', e.at,
                                                                    'payload', e.payload) ORDER BY e.seq), '[]')
                       FROM session_events e WHERE e.session_id = s.id),
            'transcript', (SELECT coalesce(jsonb_agg(to_jsonb(t) - 'org_id' ORDER BY t.start_ms, t.id), '[]')
                           FROM transcript_segments t WHERE t.session_id = s.id),
            'scores', (SELECT coalesce(jsonb_agg(to_jsonb(sc) ORDER BY sc.created_at), '[]')
                       FROM session_scores sc WHERE sc.session_id = s.id)
        ) ORDER BY s.created_at), '[]')
        FROM roleplay_sessions s WHERE s.user_id = $1""",
    "uploads": """
        SELECT coalesce(jsonb_agg(to_jsonb(u) || jsonb_build_object(
            'transcript', (SELECT coalesce(jsonb_agg(to_jsonb(t) - 'org_id' ORDER BY t.start_ms, t.id), '[]')
                           FROM transcript_segments t WHERE t.upload_id = u.id),
            'scores', (SELECT coalesce(jsonb_agg(to_jsonb(sc) ORDER BY sc.created_at), '[]')
                       FROM session_scores sc WHERE sc.upload_id = u.id)
        ) ORDER BY u.created_at), '[]')
        FROM call_uploads u WHERE u.user_id = $1""",
    "curriculum_progress": """
        SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.started_at), '[]')
        FROM curriculum_progress p WHERE p.user_id = $1""",
    "sso_identities": """
        SELECT coalesce(jsonb_agg(jsonb_build_object('provider', i.provider, 'subject', i.subject, 'email', i.email,
                                                     'linked_at', i.created_at, 'last_login_at', i.last_login_at)
                                  ORDER BY i.created_at), '[]')
        FROM user_identities i WHERE i.user_id = $1""",
    "chat_conversations": """
        SELECT coalesce(jsonb_agg(to_jsonb(c) || jsonb_build_object(
            'messages', (SELECT coalesce(jsonb_agg(to_jsonb(m) - 'org_id' ORDER BY m.id), '[]')
                         FROM chat_messages m WHERE m.conversation_id = c.id)
        ) ORDER BY c.created_at), '[]')
        FROM chat_conversations c WHERE c.user_id = $1""",
}


async def export_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> dict[str, Any]:
    """Profile, memberships, sessions with their events, transcripts and scores, uploads (metadata,
    transcripts, scores), curriculum progress, single sign-on identities and coaching chat
    conversations, as JSON-ready data."""
    export: dict[str, Any] = {}
    for key, sql in _EXPORT_QUERIES.items():
        value = await conn.fetchval(sql, user_id)
        export[key] = msgspec.json.decode(value) if value is not None else None
    return export


async def delete_user(conn: asyncpg.Connection, user_id: uuid.UUID, org_id: uuid.UUID, *, delete_org: bool) -> None:
    """Deletes the account; foreign keys cascade to its memberships, sessions (events, transcripts,
    scores), uploads, blobs, progress and refresh tokens. The audit trigger keeps a record of the
    deletion without personal data. With `delete_org`, the org (left with no member) goes too."""
    await conn.execute("DELETE FROM users WHERE id = $1", user_id)
    if delete_org:
        await conn.execute("DELETE FROM organizations WHERE id = $1", org_id)
