"""The coaching chat over HTTP against in-process fake OpenAI-compatible servers (OpenRouter and
OpenAI): streamed answers with citations, the breaker, saved conversations, the extractive answer."""

from __future__ import annotations

import json

import httpx
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.gateway.accounts_helpers import bearer, eventually, invite, signup
from tests.gateway.knowledge.helpers import add_document, scored_call
from tests.servers import run_asgi


@pytest.fixture(scope="module")
def fakes():
    primary, fallback = FakeOpenAI(reply="Anchor on value first [1]."), FakeOpenAI(reply="From the fallback [1].")
    with run_asgi(primary.app()) as primary_url, run_asgi(fallback.app()) as fallback_url:
        yield {"openrouter": (primary, primary_url + "/v1"), "openai": (fallback, fallback_url + "/v1")}


@pytest.fixture(scope="module")
def base_url(module_database_url, fakes):
    settings = make_settings(module_database_url, openrouter_api_key="or-test",
                             openrouter_base_url=fakes["openrouter"][1], openai_api_key="sk-test",
                             openai_base_url=fakes["openai"][1], llm_provider="scripted",
                             stt_provider="local", tts_provider="local", hints_llm="off", scorer="heuristic",
                             chat_breaker_reset_seconds="0.5", knowledge_starter="false")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


async def ask(client: httpx.AsyncClient, auth: dict, question: str, **extra) -> tuple[int, list[tuple[str, dict]]]:
    """The answer's events as (event, data), in order."""
    events: list[tuple[str, dict]] = []
    body = {"messages": [{"role": "user", "content": question}], **extra}
    async with client.stream("POST", "/api/chat", json=body, headers=bearer(auth)) as response:
        if response.status_code != 200:
            await response.aread()
            return response.status_code, [("error", response.json())]
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event:
                events.append((event, json.loads(line.split(":", 1)[1])))
    return 200, events


def answer_of(events) -> str:
    return "".join(d["text"] for e, d in events if e == "delta")


async def test_chat_streams_an_answer_whose_citations_map_to_the_sources(client, fakes):
    admin = await signup(client)
    doc = await add_document(client, admin, "Price objections", "When the buyer says the price is too high,"
                             " anchor on value and the cost of doing nothing.")
    status, events = await ask(client, admin, "What do I do when the buyer says the price is too high?")
    assert status == 200
    assert [e for e, _ in events][-2:] == ["sources", "done"] and events[0][0] == "delta"
    assert answer_of(events).strip() == "Anchor on value first [1]."
    sources = next(d for e, d in events if e == "sources")["items"]
    assert sources[0]["n"] == 1 and sources[0]["document_id"] == doc["id"] and "anchor on value" in sources[0]["text"]
    done = events[-1][1]
    assert done["answer"] == "llm" and done["backend"] == "openrouter"
    prompt = fakes["openrouter"][0].persona_chats()[-1]["messages"][0]["content"]
    assert "[1] Price objections: " in prompt and "cite them as [n]" in prompt
    path = f"/api/chat/conversations/{done['conversation_id']}"
    conversation = (await client.get(path, headers=bearer(admin))).json()
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]
    assert conversation["messages"][1]["sources"][0]["document_id"] == doc["id"]


async def test_conversations_are_private_listed_exported_and_deleted(client):
    rep, other = await signup(client), await signup(client)
    _, events = await ask(client, rep, "How do I open a cold call?")
    conversation_id = events[-1][1]["conversation_id"]
    listed = (await client.get("/api/chat/conversations", headers=bearer(rep))).json()["items"]
    assert [c["id"] for c in listed] == [conversation_id] and listed[0]["title"] == "How do I open a cold call?"
    assert (await client.get(f"/api/chat/conversations/{conversation_id}", headers=bearer(other))).status_code == 404
    assert (await client.get("/api/chat/conversations", headers=bearer(other))).json()["items"] == []
    status, _ = await ask(client, other, "and then?", conversation_id=conversation_id)
    assert status == 404
    status, events = await ask(client, rep, "and then?", conversation_id=conversation_id)
    assert status == 200 and events[-1][1]["conversation_id"] == conversation_id
    export = (await client.post("/api/user/export", headers=bearer(rep))).json()
    roles = [m["role"] for m in export["chat_conversations"][0]["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert (await client.delete(f"/api/chat/conversations/{conversation_id}", headers=bearer(rep))).status_code == 204
    assert (await client.get("/api/chat/conversations", headers=bearer(rep))).json()["items"] == []


async def test_the_breaker_opens_on_repeated_5xx_falls_back_and_closes_after_recovery(client, fakes):
    admin = await signup(client)
    primary = fakes["openrouter"][0]
    primary.stream_failures = 3
    for _ in range(3):
        _, events = await ask(client, admin, "How do I close?")
        assert events[-1][1]["backend"] == "openai" and answer_of(events).strip() == "From the fallback [1]."
    health = (await client.get("/api/health")).json()
    assert health["breakers"]["chat.openrouter"] == "open" and health["breakers"]["chat.openai"] == "closed"
    calls = len(primary.persona_chats())
    _, events = await ask(client, admin, "How do I close?")
    assert events[-1][1]["backend"] == "openai" and len(primary.persona_chats()) == calls  # skipped while open

    async def half_open():
        return (await client.get("/api/health")).json()["breakers"]["chat.openrouter"] == "half_open"

    assert await eventually(half_open, timeout=10)
    _, events = await ask(client, admin, "How do I close?")
    assert events[-1][1]["backend"] == "openrouter"
    assert (await client.get("/api/health")).json()["breakers"]["chat.openrouter"] == "closed"


async def test_chat_refuses_a_bad_body_and_an_unknown_session(client):
    admin = await signup(client)
    r = await client.post("/api/chat", json={"messages": []}, headers=bearer(admin))
    assert r.status_code == 400
    r = await client.post("/api/chat", json={"messages": [{"role": "assistant", "content": "hi"}]},
                          headers=bearer(admin))
    assert r.status_code == 400
    status, events = await ask(client, admin, "hi", session_id="00000000-0000-0000-0000-000000000000")
    assert status == 404 and events[0][1]["error"]["field"] == "session_id"


async def test_asking_about_a_call_puts_its_transcript_metrics_and_scorecard_in_the_prompt(client, base_url, fakes):
    admin = await signup(client)
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    await add_document(client, admin, "Price objections", "When the buyer says the price is too high,"
                       " anchor on value and the cost of doing nothing.")
    session_id = await scored_call(base_url, rep, [
        "Hi Dana, this is Pat from Ledgerly. Finance teams tell us month end close drags on.",
        "How does your month end close work today, and what happens when it slips?",
    ])
    status, events = await ask(client, rep, "What should I have said when she raised price?", session_id=session_id)
    assert status == 200 and events[-1][1]["answer"] == "llm"
    prompt = fakes["openrouter"][0].persona_chats()[-1]["messages"][0]["content"]
    assert "The rep is asking about one of their practice calls, with Dana Whitfield." in prompt
    assert "Rep: How does your month end close work today, and what happens when it slips?" in prompt
    assert "Buyer: " in prompt
    assert "Metrics:" in prompt and "Talk ratio" in prompt
    assert "Scorecard:" in prompt and "Overall " in prompt and "(not scored yet)" not in prompt
    assert "[1] Price objections: " in prompt
    conversation_id = events[-1][1]["conversation_id"]
    stored = (await client.get(f"/api/chat/conversations/{conversation_id}", headers=bearer(rep))).json()
    assert stored["session_id"] == session_id
    # A follow-up in the same conversation keeps the call as context.
    status, events = await ask(client, rep, "And what next?", session_id=session_id, conversation_id=conversation_id)
    assert status == 200 and "Transcript:" in fakes["openrouter"][0].persona_chats()[-1]["messages"][0]["content"]


async def test_asking_about_a_call_of_another_user_or_org_is_refused(client, base_url, fakes):
    admin = await signup(client)
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    colleague = await signup(client, invite_code=await invite(client, admin, "trainee"))
    stranger = await signup(client)
    session_id = await scored_call(base_url, rep, ["How does your month end close work today?"])
    asked = len(fakes["openrouter"][0].persona_chats())
    for other in (colleague, stranger):
        status, events = await ask(client, other, "What went wrong in this call?", session_id=session_id)
        assert status == 404 and events[0][1]["error"]["field"] == "session_id"
    assert len(fakes["openrouter"][0].persona_chats()) == asked, "nothing reached the LLM"
    for other in (colleague, stranger):
        assert (await client.get("/api/chat/conversations", headers=bearer(other))).json()["items"] == []
