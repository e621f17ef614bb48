"""The `score_session` job: a finished call's transcript through the configured scorer, each
dimension reported as it is decided, then the scorecard stored, `score.ready` appended to the
call's log and the rep's curriculum progress updated, all in the transaction that marks the job
done (so a job scores a call once, whichever instance runs it and however often it is retried)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from coaching.events import ScoreReady
from coaching.persona import Persona
from coaching.scorecard import Dimension, Scorer
from coaching.session_log import SessionLog
from gateway.jobs.runner import JobContext, PermanentJobError
from storage import scores, sessions
from storage.tenancy import tenant_tx

__all__ = ["ScoreSession", "build_scorer"]


def _persona(snapshot: dict[str, Any]) -> Persona | None:
    try:
        return msgspec.convert(snapshot, Persona)
    except msgspec.ValidationError:
        return None  # a snapshot from before a persona field existed: score without its brief


class ScoreSession:
    kind = "score_session"

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    async def __call__(self, context: JobContext) -> None:
        try:
            session_id = uuid.UUID(str(context.job.payload.get("session_id")))
        except ValueError:
            raise PermanentJobError("the job names no session") from None
        pool = context.runner.pool
        async with tenant_tx(pool, context.tenant) as conn:
            session = await sessions.get_session(conn, session_id)
            if session is None:
                raise PermanentJobError("the session no longer exists")
            if session.status != "ended":
                raise PermanentJobError("the call has not ended yet")
            segments = await sessions.list_transcript(conn, session_id)
            config = await scores.get_scoring_config(conn, session.org_id)
        if not any(s.speaker == "rep" and s.text.strip() for s in segments):
            async with tenant_tx(pool, context.tenant) as conn:
                await context.finish(conn, {"stage": "skipped",
                                            "message": "the call has nothing the rep said to score"})
            return
        await context.progress({"stage": "scoring", "scorer": self.scorer.name, "dimensions": {}})
        decided: dict[str, Any] = {}

        async def on_dimension(dimension: Dimension) -> None:
            decided[dimension.key] = msgspec.to_builtins(dimension)
            await context.progress({"dimensions": decided})

        card = await self.scorer.score(segments, persona=_persona(session.persona_snapshot), config=config,
                                       on_dimension=on_dimension)
        async with tenant_tx(pool, context.tenant) as conn:
            await conn.execute("SELECT 1 FROM roleplay_sessions WHERE id = $1 FOR UPDATE", session_id)
            score_id = await scores.insert_score(conn, org_id=session.org_id, user_id=session.user_id,
                                                 session_id=session_id, card=card, job_id=context.job.id)
            log = SessionLog.rebuild(str(session_id), [r.payload for r in await sessions.list_events(
                conn, session_id, after_seq=0, limit=1_000_000)])
            appended = log.append(ScoreReady(session_id=str(session_id), ts=0, score_id=str(score_id),
                                             overall=card.overall, passed=card.passed, scorer=card.scorer))
            await sessions.append_events(conn, session.org_id, [(session_id, 0, e) for e in appended.entries],
                                         locked=True)
            await scores.record_module_progress(conn, org_id=session.org_id, user_id=session.user_id, card=card)
            await context.finish(conn, {"stage": "done", "score_id": str(score_id)})


def build_scorer(choice: str, backends: list[Any]) -> Scorer:
    """`heuristic`, or `llm` (GPT-4o through the backends in order, the heuristic scorer behind it);
    `auto` is llm when an LLM key is configured."""
    from coaching.scoring import HeuristicScorer

    heuristic = HeuristicScorer()
    if choice == "heuristic" or not backends:
        return heuristic
    from coaching.scoring_llm import LlmScorer

    return LlmScorer(backends, fallback=heuristic)
