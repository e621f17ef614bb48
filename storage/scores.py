"""Scorecards (`session_scores`, history kept: the latest is the call's score), the org's scoring
settings, and the rollups the progress and team pages read."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from coaching.scorecard import DIMENSION_KEYS, Scorecard, ScoringConfig

__all__ = [
    "COLUMNS", "KEY_OF_COLUMN", "ScoreRow", "TeamRow", "TrendPoint", "get_score", "get_scoring_config",
    "insert_score", "latest_score", "latest_upload_score", "list_scores", "record_module_progress", "rep_trend",
    "set_scoring_config", "team_rollup",
]

# The rubric's dimension keys and the columns they are kept in (named before the keys were).
COLUMNS: dict[str, str] = {
    "opening": "opening_rapport", "discovery": "discovery", "listening": "active_listening",
    "value": "value_articulation", "objections": "objection_handling", "closing": "closing_next_steps",
}
KEY_OF_COLUMN = {column: key for key, column in COLUMNS.items()}


class ScoreRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    session_id: uuid.UUID | None
    created_at: datetime
    scorecard: Scorecard
    upload_id: uuid.UUID | None = None


class TrendPoint(msgspec.Struct, frozen=True):
    """A scored call: a practice session (`kind` "practice", `persona_name` its buyer) or an
    uploaded call (`kind` "upload", `upload_id`, `persona_name` its title or file name)."""

    session_id: uuid.UUID | None
    created_at: datetime
    persona_name: str
    overall: float
    passed: bool | None
    dimensions: dict[str, int]
    kind: str = "practice"
    upload_id: uuid.UUID | None = None


class TeamRow(msgspec.Struct, frozen=True):
    """One member over a period: averages per call, the change against the period before, the
    weakest dimension (ties: the earlier in the call)."""

    user_id: uuid.UUID
    name: str
    email: str
    calls: int
    scored: int
    average: float | None
    dimensions: dict[str, float | None]
    trend: dict[str, float | None]
    weakest: str | None


_decode_card = msgspec.json.Decoder(Scorecard).decode


async def insert_score(conn: asyncpg.Connection, *, org_id: uuid.UUID, user_id: uuid.UUID,
                       session_id: uuid.UUID | None = None, upload_id: uuid.UUID | None = None, card: Scorecard,
                       job_id: uuid.UUID | None) -> uuid.UUID:
    """Stores the scorecard of a practice session or of an uploaded call (exactly one of the two).

    Raises:
        ValueError: neither or both of `session_id` and `upload_id`.
    """
    if (session_id is None) == (upload_id is None):
        raise ValueError("a score belongs to exactly one of session_id and upload_id")
    scores = {d.key: d.score for d in card.dimensions}
    score_id: uuid.UUID = await conn.fetchval(
        f"""INSERT INTO session_scores (org_id, user_id, session_id, upload_id,
                {", ".join(COLUMNS[k] for k in DIMENSION_KEYS)},
                overall, scorer, version, scorecard, passed, pass_mark, fallback_reason, job_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15, $16, $17, $18)
            RETURNING id""",
        org_id, user_id, session_id, upload_id, *(scores[k] for k in DIMENSION_KEYS), card.overall, card.scorer,
        card.version, msgspec.json.encode(card).decode(), card.passed, card.pass_mark, card.fallback_reason, job_id)
    return score_id


_SCORE_SELECT = "SELECT id, session_id, created_at, scorecard::text AS scorecard, upload_id FROM session_scores"


def _score(row: asyncpg.Record) -> ScoreRow:
    return ScoreRow(row["id"], row["session_id"], row["created_at"], _decode_card(row["scorecard"]),
                    row["upload_id"])


async def latest_score(conn: asyncpg.Connection, session_id: uuid.UUID) -> ScoreRow | None:
    row = await conn.fetchrow(_SCORE_SELECT + " WHERE session_id = $1 AND scorecard <> '{}'"
                              " ORDER BY created_at DESC, id LIMIT 1", session_id)
    return _score(row) if row else None


async def list_scores(conn: asyncpg.Connection, session_id: uuid.UUID) -> list[ScoreRow]:
    """Every scorecard of the session, newest first (rescoring keeps the earlier ones)."""
    rows = await conn.fetch(_SCORE_SELECT + " WHERE session_id = $1 AND scorecard <> '{}'"
                            " ORDER BY created_at DESC, id", session_id)
    return [_score(r) for r in rows]


async def get_scoring_config(conn: asyncpg.Connection, org_id: uuid.UUID) -> ScoringConfig:
    raw: str | None = await conn.fetchval(
        "SELECT (settings -> 'scoring')::text FROM org_settings WHERE org_id = $1", org_id)
    if not raw or raw == "null":
        return ScoringConfig()
    try:
        return msgspec.json.decode(raw, type=ScoringConfig)
    except msgspec.ValidationError:
        return ScoringConfig()  # written by an older version: the defaults, until an admin saves again


async def set_scoring_config(conn: asyncpg.Connection, org_id: uuid.UUID, config: ScoringConfig) -> None:
    await conn.execute(
        "INSERT INTO org_settings (org_id, settings) VALUES ($1, jsonb_build_object('scoring', $2::jsonb))"
        " ON CONFLICT (org_id) DO UPDATE SET"
        " settings = org_settings.settings || jsonb_build_object('scoring', $2::jsonb),"
        " updated_at = now()", org_id, msgspec.json.encode(config).decode())


async def record_module_progress(conn: asyncpg.Connection, *, org_id: uuid.UUID, user_id: uuid.UUID,
                                 card: Scorecard) -> None:
    """Each curriculum module: the rep's best score on its dimension; completed once a scored call
    reaches the pass mark on it."""
    rows = [(m["id"], m["dimension"]) for m in await conn.fetch("SELECT id, dimension FROM curriculum_modules")]
    scores: dict[str, int] = {d.key: d.score for d in card.dimensions}
    for module_id, column in rows:
        score = scores.get(KEY_OF_COLUMN.get(column, ""))
        if score is None:
            continue
        passed = score >= card.pass_mark
        await conn.execute(
            """
            INSERT INTO curriculum_progress (org_id, user_id, module_id, status, best_score, completed_at)
            VALUES ($1, $2, $3, CASE WHEN $5 THEN 'completed' ELSE 'in_progress' END, $4,
                    CASE WHEN $5 THEN now() END)
            ON CONFLICT (org_id, user_id, module_id) DO UPDATE SET
                best_score = greatest(curriculum_progress.best_score, excluded.best_score),
                status = CASE WHEN $5 THEN 'completed' ELSE curriculum_progress.status END,
                completed_at = coalesce(curriculum_progress.completed_at, excluded.completed_at)
            """, org_id, user_id, module_id, score, passed)


def _dimension_scores(row: asyncpg.Record) -> dict[str, int]:
    return {key: row[column] for key, column in COLUMNS.items()}


async def rep_trend(conn: asyncpg.Connection, user_id: uuid.UUID, *, limit: int = 20) -> list[TrendPoint]:
    """The rep's last `limit` scored calls, practice and uploaded (each call's latest score), oldest first."""
    dims = ", ".join("sc." + c for c in COLUMNS.values())
    rows = await conn.fetch(
        f"""
        SELECT * FROM (
            SELECT DISTINCT ON (sc.session_id) sc.session_id, NULL::uuid AS upload_id, 'practice' AS kind,
                   s.created_at, coalesce(s.persona_snapshot ->> 'name', s.persona_id) AS persona_name,
                   sc.overall::float8 AS overall, sc.passed, {dims}
            FROM session_scores sc JOIN roleplay_sessions s ON s.id = sc.session_id AND s.deleted_at IS NULL
            WHERE sc.user_id = $1 AND sc.session_id IS NOT NULL
            ORDER BY sc.session_id, sc.created_at DESC
        ) practice
        UNION ALL
        SELECT * FROM (
            SELECT DISTINCT ON (sc.upload_id) NULL::uuid AS session_id, sc.upload_id, 'upload' AS kind,
                   u.created_at, coalesce(u.title, u.filename) AS persona_name,
                   sc.overall::float8 AS overall, sc.passed, {dims}
            FROM session_scores sc JOIN call_uploads u ON u.id = sc.upload_id AND u.deleted_at IS NULL
            WHERE sc.user_id = $1 AND sc.upload_id IS NOT NULL
            ORDER BY sc.upload_id, sc.created_at DESC
        ) uploaded
        ORDER BY created_at DESC LIMIT $2
        """, user_id, limit)
    return [TrendPoint(r["session_id"], r["created_at"], r["persona_name"], r["overall"], r["passed"],
                       _dimension_scores(r), r["kind"], r["upload_id"]) for r in reversed(rows)]


async def team_rollup(conn: asyncpg.Connection, org_id: uuid.UUID, *, days: int) -> list[TeamRow]:
    """Per member: calls and scored calls in the last `days`, practice and uploaded (an upload
    counts as a call unless it failed), the average overall and per dimension (each call's latest
    score, averaged per call), and the same for the period before."""
    averages = ", ".join(f"avg({c}) FILTER (WHERE cur)::float8 AS {c}, avg({c}) FILTER (WHERE NOT cur)::float8 AS"
                         f" prev_{c}" for c in COLUMNS.values())
    rows = await conn.fetch(
        f"""
        WITH latest AS (
            SELECT DISTINCT ON (sc.session_id) sc.session_id, sc.user_id, sc.overall, s.created_at,
                   s.created_at >= now() - make_interval(days => $2) AS cur,
                   {", ".join("sc." + c for c in COLUMNS.values())}
            FROM session_scores sc JOIN roleplay_sessions s ON s.id = sc.session_id AND s.deleted_at IS NULL
            WHERE sc.org_id = $1 AND s.created_at >= now() - make_interval(days => 2 * $2)
            ORDER BY sc.session_id, sc.created_at DESC
        ), latest_uploads AS (
            SELECT DISTINCT ON (sc.upload_id) sc.upload_id, sc.user_id, sc.overall, u.created_at,
                   u.created_at >= now() - make_interval(days => $2) AS cur,
                   {", ".join("sc." + c for c in COLUMNS.values())}
            FROM session_scores sc JOIN call_uploads u ON u.id = sc.upload_id AND u.deleted_at IS NULL
            WHERE sc.org_id = $1 AND u.created_at >= now() - make_interval(days => 2 * $2)
            ORDER BY sc.upload_id, sc.created_at DESC
        ), scored AS (
            SELECT user_id, overall, cur, {", ".join(COLUMNS.values())} FROM latest
            UNION ALL
            SELECT user_id, overall, cur, {", ".join(COLUMNS.values())} FROM latest_uploads
        ), calls AS (
            SELECT user_id, count(*) AS calls FROM (
                SELECT user_id FROM roleplay_sessions
                WHERE org_id = $1 AND deleted_at IS NULL AND started_at IS NOT NULL
                  AND created_at >= now() - make_interval(days => $2)
                UNION ALL
                SELECT user_id FROM call_uploads
                WHERE org_id = $1 AND deleted_at IS NULL AND status <> 'failed'
                  AND created_at >= now() - make_interval(days => $2)
            ) every_call
            GROUP BY user_id
        ), per_user AS (
            SELECT user_id, count(*) FILTER (WHERE cur) AS scored, avg(overall) FILTER (WHERE cur)::float8 AS average,
                   {averages}
            FROM scored GROUP BY user_id
        )
        SELECT m.user_id, u.name, u.email, coalesce(c.calls, 0) AS calls, coalesce(p.scored, 0) AS scored,
               p.average, {", ".join(f"p.{c}, p.prev_{c}" for c in COLUMNS.values())}
        FROM memberships m JOIN users u ON u.id = m.user_id
        LEFT JOIN calls c ON c.user_id = m.user_id LEFT JOIN per_user p ON p.user_id = m.user_id
        WHERE m.org_id = $1 AND u.deleted_at IS NULL
        ORDER BY u.name, m.user_id
        """, org_id, days)
    return [_team_row(r) for r in rows]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _team_row(r: asyncpg.Record) -> TeamRow:
    now = {k: _round(r[c]) for k, c in COLUMNS.items()}
    before = {k: r[f"prev_{c}"] for k, c in COLUMNS.items()}
    trend = {k: None if now[k] is None or before[k] is None else round(r[COLUMNS[k]] - before[k], 1) for k in now}
    known = [k for k in DIMENSION_KEYS if now[k] is not None]
    weakest: str | None = None
    for key in known:  # the lowest average; on a tie, the dimension earlier in the call
        if weakest is None or (now[key] or 0.0) < (now[weakest] or 0.0):
            weakest = key
    return TeamRow(r["user_id"], r["name"], r["email"], r["calls"], r["scored"], _round(r["average"]), now, trend,
                   weakest)


async def latest_upload_score(conn: asyncpg.Connection, upload_id: uuid.UUID) -> ScoreRow | None:
    row = await conn.fetchrow(_SCORE_SELECT + " WHERE upload_id = $1 AND scorecard <> '{}'"
                              " ORDER BY created_at DESC, id LIMIT 1", upload_id)
    return _score(row) if row else None


async def get_score(conn: asyncpg.Connection, score_id: uuid.UUID) -> ScoreRow | None:
    row = await conn.fetchrow(_SCORE_SELECT + " WHERE id = $1", score_id)
    return _score(row) if row else None
