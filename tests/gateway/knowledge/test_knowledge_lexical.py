"""With no embedding model (EMBEDDINGS=off) and no LLM key: full-text retrieval alone, and the
chat's extractive answer, labelled, with citations."""

from __future__ import annotations

import json

import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.gateway.accounts_helpers import bearer, signup
from tests.gateway.knowledge.corpus import DOCUMENTS, OVERLAPPING
from tests.gateway.knowledge.helpers import add_document, search
from tests.servers import run_asgi


@pytest.fixture(scope="module")
def base_url(module_database_url):
    settings = make_settings(module_database_url, embeddings="off")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


async def test_questions_sharing_words_find_their_document_in_the_top_three_by_full_text(client):
    admin = await signup(client)
    ids = {t: (await add_document(client, admin, t, text, source="lexical"))["id"] for t, text in DOCUMENTS.items()}
    for question, title in OVERLAPPING.items():
        found = await search(client, admin, question, source="lexical", limit=3)
        assert found["mode"] == "lexical" and found["model"] is None
        assert ids[title] in [i["document_id"] for i in found["items"]], (question, found["items"])


async def test_without_an_llm_key_the_chat_answers_extractively_with_citations(client):
    admin = await signup(client)
    doc = await add_document(client, admin, "Renewals", "Offer a multi-year renewal discount. Ask for the signature"
                             " before the quarter ends. Thank them for their loyalty.")
    body = {"messages": [{"role": "user", "content": "What discount should I offer at renewal?"}]}
    response = await client.post("/api/chat", json=body, headers=bearer(admin))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events, event = [], None
    for line in response.text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event:
            events.append((event, json.loads(line.split(":", 1)[1])))
    text = "".join(d["text"] for e, d in events if e == "delta")
    assert text.startswith("No AI model is configured") and "renewal discount" in text and "[1]" in text
    sources = next(d for e, d in events if e == "sources")["items"]
    assert sources[0]["n"] == 1 and sources[0]["document_id"] == doc["id"]
    assert events[-1][0] == "done" and events[-1][1]["answer"] == "extractive"
