"""The coaching chat: a question answered as Server-Sent Events from the playbook (and, with a
session id, that call), with numbered citations; and the user's saved conversations."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.response import ServerSentEvent, ServerSentEventMessage

from coaching.analytics import metrics as call_metrics
from coaching.coach_chat import CallContext, ChatTurn, CoachChat, Passage, build_messages
from coaching.errors import ProviderUnavailable
from coaching.knowledge import extractive_answer
from gateway.auth.caller import Caller, CallerDep, TenantDb
from gateway.errors import ApiError
from gateway.knowledge.service import KnowledgeBase, SearchItem
from gateway.ratelimit import limit_request
from storage import chat as store
from storage import scores, sessions
from storage.tenancy import tenant_tx

__all__ = ["chat", "delete_conversation", "get_conversation", "list_conversations"]

_PASSAGES = 5
Content = Annotated[str, msgspec.Meta(min_length=1, max_length=8000)]


class ChatMessageIn(msgspec.Struct, forbid_unknown_fields=True):
    role: Annotated[str, msgspec.Meta(pattern="^(user|assistant)$")]
    content: Content


class ChatIn(msgspec.Struct, forbid_unknown_fields=True):
    messages: Annotated[list[ChatMessageIn], msgspec.Meta(min_length=1, max_length=40)]
    session_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None


class Source(msgspec.Struct):
    n: int
    document_id: uuid.UUID | None
    title: str | None
    text: str
    chunk_index: int
    source: str


class ConversationOut(msgspec.Struct):
    id: uuid.UUID
    title: str
    session_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class ConversationList(msgspec.Struct):
    items: list[ConversationOut]


class ConversationDetail(ConversationOut):
    messages: list[store.MessageRow]


def _message(event: str, data: Any) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=event, data=msgspec.json.encode(data).decode())


def _call_context(session: sessions.SessionRow, segments: list[sessions.SegmentRow],
                  score: scores.ScoreRow | None) -> CallContext:
    persona = str(session.persona_snapshot.get("name") or session.persona_id)
    transcript = [f"{'Rep' if s.speaker == 'rep' else 'Buyer'}: {s.text}" for s in segments]
    metrics = [f"{m.label}: {m.value if m.value is not None else 'n/a'} {m.unit} ({m.verdict})"
               for m in call_metrics(segments).values()]
    card: list[str] = []
    if score is not None:
        card.append(f"Overall {score.scorecard.overall}/100, {'passed' if score.scorecard.passed else 'not passed'}")
        for d in score.scorecard.dimensions:
            card.append(f"{d.name}: {d.score}/100")
            card += [f"  missed: {c.label}" + (f" - {c.feedback.where}; could say: {c.feedback.example}"
                                                 if c.feedback else "") for c in d.checks if not c.passed]
    return CallContext(persona, transcript, metrics, card)


async def _answer(state: Any, caller: Caller, conversation_id: uuid.UUID, turns: list[ChatTurn], question: str,
                  items: list[SearchItem], call: CallContext | None) -> AsyncIterator[ServerSentEventMessage]:
    """Events: `delta` {text} as the answer streams, `sources` {items}, then `done`."""
    sources = [Source(n, i.document_id, i.title, i.text, i.chunk_index, i.source) for n, i in enumerate(items, 1)]
    passages = [Passage(s.n, s.title, s.text) for s in sources]
    coach: CoachChat = state.coach_chat
    answer, mode, backend = "", "extractive", None
    if coach.available:
        try:
            async for name, delta in coach.stream(build_messages(turns, passages, call)):
                backend = name
                answer += delta
                yield _message("delta", {"text": delta})
            mode = "llm"
        except ProviderUnavailable:
            backend = None
    if mode == "extractive":
        answer = extractive_answer(question, [(p.n, p.text) for p in passages])
        yield _message("delta", {"text": answer})
    yield _message("sources", {"items": msgspec.to_builtins(sources)})
    async with tenant_tx(state.pool, caller.tenant) as conn:
        await store.add_message(conn, conversation_id, caller.org_id, "assistant", answer,
                                msgspec.to_builtins(sources))
    yield _message("done", {"conversation_id": str(conversation_id), "answer": mode, "backend": backend})


@post("/api/chat", tags=["chat"], status_code=200,
      summary="Ask the coach: the answer as Server-Sent Events (delta, sources, done) with [n] citations",
      description="With `session_id`, that call's transcript, metrics and scorecard are context too. With no LLM"
                  " key the answer is extractive (the best passages), labelled as such. RATE_LIMIT_CHAT applies.")
async def chat(request: Request[Any, Any, Any], caller: CallerDep, data: JSONBody[ChatIn]) -> ServerSentEvent:
    await limit_request(request, "chat", str(caller.user_id))
    if data.messages[-1].role != "user":
        raise ApiError(400, "invalid_body", "the last message must be the user's question", field="messages")
    turns = [ChatTurn("user" if m.role == "user" else "assistant", m.content) for m in data.messages]
    question = turns[-1].content
    state = request.app.state
    knowledge: KnowledgeBase = state.knowledge
    call = None
    async with tenant_tx(state.pool, caller.tenant) as conn:
        if data.session_id is not None:
            session = await sessions.get_session(conn, data.session_id)
            if session is None:
                raise ApiError(404, "not_found", "no such session", field="session_id")
            call = _call_context(session, await sessions.list_transcript(conn, session.id),
                                 await scores.latest_score(conn, session.id))
        conversation_id = data.conversation_id
        if conversation_id is None:
            conversation_id = await store.create_conversation(
                conn, org_id=caller.org_id, user_id=caller.user_id, title=" ".join(question.split())[:80],
                session_id=data.session_id)
        elif await store.get_conversation(conn, conversation_id) is None:
            raise ApiError(404, "not_found", "no such conversation", field="conversation_id")
        await store.add_message(conn, conversation_id, caller.org_id, "user", question)
        items, _ = await knowledge.search(conn, question, limit=_PASSAGES)
    return ServerSentEvent(_answer(state, caller, conversation_id, turns, question, items, call),
                           headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@get("/api/chat/conversations", tags=["chat"], summary="The caller's conversations, latest first")
async def list_conversations(caller: CallerDep, db: TenantDb) -> ConversationList:
    return ConversationList([ConversationOut(c.id, c.title, c.session_id, c.created_at, c.updated_at)
                             for c in await store.list_conversations(db)])


@get("/api/chat/conversations/{conversation_id:uuid}", tags=["chat"], summary="A conversation with its messages")
async def get_conversation(caller: CallerDep, db: TenantDb,
                           conversation_id: FromPath[uuid.UUID]) -> ConversationDetail:
    c = await store.get_conversation(db, conversation_id)
    if c is None:
        raise ApiError(404, "not_found", "no such conversation")
    return ConversationDetail(c.id, c.title, c.session_id, c.created_at, c.updated_at,
                              await store.list_messages(db, c.id))


@delete("/api/chat/conversations/{conversation_id:uuid}", tags=["chat"], status_code=204,
        summary="Delete a conversation")
async def delete_conversation(caller: CallerDep, db: TenantDb, conversation_id: FromPath[uuid.UUID]) -> None:
    if not await store.delete_conversation(db, conversation_id):
        raise ApiError(404, "not_found", "no such conversation")
