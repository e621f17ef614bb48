"""The live LLM hints retrieve from the knowledge base with the same search as the API: the
passages for the buyer's latest turn reach the hint prompt (the fake OpenAI server records it)."""

from __future__ import annotations

import httpx
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.gateway.accounts_helpers import bearer, eventually, signup
from tests.gateway.knowledge.helpers import add_document, search
from tests.gateway.live_client import LiveClient
from tests.servers import run_asgi

OBJECTION = "Honestly, the price is far too high for a tool like this."
PASSAGE = "When the buyer says the price is too high, ask what a late close costs them each month."


@pytest.fixture(scope="module")
def fake():
    fake = FakeOpenAI(reply=OBJECTION)
    fake.structured = {"stage": "objection_handling", "hint": "Ask what a late close costs them.",
                       "severity": "info"}
    with run_asgi(fake.app()) as url:
        fake.url = url + "/v1"
        yield fake


@pytest.fixture(scope="module")
def base_url(module_database_url, fake):
    settings = make_settings(module_database_url, openai_api_key="sk-test", openai_base_url=fake.url,
                             llm_provider="openai", stt_provider="local", tts_provider="local",
                             hints_llm="on", hints_llm_interval_seconds="60", scorer="heuristic",
                             knowledge_starter="false")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


async def hint_prompt(base_url: str, auth: dict, fake: FakeOpenAI) -> str:
    """A call in which the buyer raises the objection; the first hint prompt sent after it."""
    asked = len(fake.structured_chats())
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(auth)) as api:
        session = (await api.post("/api/sessions", json={"persona_id": "skeptical-cfo"})).json()
    call = await LiveClient(base_url, session["id"], auth["access_token"]).open()
    try:
        await call.greeting(timeout=60)
        await call.talk("Hi Dana, thanks for taking the call.", timeout=60)  # the buyer answers with the objection

        async def prompts():
            return [c["messages"][-1]["content"] for c in fake.structured_chats()[asked:]
                    if f"BUYER: {OBJECTION}" in c["messages"][-1]["content"]]

        found = await eventually(prompts, timeout=30)
    finally:
        await call.close()
    assert found, "no hint was asked for after the buyer's objection"
    return found[0]


async def test_llm_hint_prompt_carries_the_passage_retrieved_for_the_buyers_objection(client, base_url, fake):
    admin = await signup(client)
    await add_document(client, admin, "Price objections", f"# Price\n\n{PASSAGE}")
    await add_document(client, admin, "Opening", "Open a cold call with a reason for calling and a question.")
    expected = (await search(client, admin, OBJECTION, limit=3))["items"][0]
    assert expected["title"] == "Price objections"
    prompt = await hint_prompt(base_url, admin, fake)
    assert f"BUYER: {OBJECTION}" in prompt
    assert "From the team's playbook, on the buyer's latest point" in prompt
    # The search API's best chunk, word for word, as citation [1].
    assert f"[1] Price objections: {' '.join(expected['text'].split())}\n" in prompt and PASSAGE in prompt


async def test_llm_hint_prompt_never_carries_another_orgs_passages(client, base_url, fake):
    other = await signup(client)
    await add_document(client, other, "Secret pricing", "When the buyer says the price is too high, offer 90% off.")
    rep = await signup(client)
    prompt = await hint_prompt(base_url, rep, fake)
    assert f"BUYER: {OBJECTION}" in prompt
    assert "90% off" not in prompt and "From the team's playbook" not in prompt
