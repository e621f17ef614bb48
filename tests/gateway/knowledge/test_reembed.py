"""Switching the embedding model re-embeds in the background: the app started with the local
model ingests; restarted with text-embedding-3-small (the fake OpenAI server, through the real
OpenAIEmbedder), it queues a `reembed_knowledge` job the job runner works. Meanwhile search
compares like with like (the old vectors are not compared with the new query's); afterwards
every chunk is in the new model's space and search ranks by it again."""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.gateway.accounts_helpers import bearer, eventually, signup
from tests.gateway.knowledge.helpers import add_document, search
from tests.servers import run_asgi

PRICE = "When the buyer says the price is too high, anchor on value and the cost of doing nothing."
QUERY = "what do I say when the price is too high"
LOCAL, REMOTE = "all-MiniLM-L6-v2", "text-embedding-3-small"


@pytest.fixture
def fake():
    fake = FakeOpenAI()
    fake.embedding_hold = lambda inputs: any("anchor on value" in text for text in inputs)
    with run_asgi(fake.app()) as url:
        fake.url = url + "/v1"
        yield fake
    fake.embedding_release.set()


async def models_of(client: httpx.AsyncClient, auth: dict, doc_id: str) -> list[str]:
    response = await client.get(f"/api/knowledge/{doc_id}", headers=bearer(auth))
    assert response.status_code == 200, response.text
    return sorted({c["model"] for c in response.json()["chunk_texts"]})


async def reembed_jobs(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch("SELECT org_id, status, payload, progress FROM jobs WHERE kind = 'reembed_knowledge'")
    finally:
        await conn.close()


async def test_switching_the_embedding_model_reembeds_every_chunk_in_a_background_job(module_database_url, fake):
    common = {"llm_provider": "scripted", "stt_provider": "local", "tts_provider": "local", "hints_llm": "off",
              "scorer": "heuristic", "knowledge_starter": "false"}
    with run_asgi(serve_app(create_app(make_settings(module_database_url, embeddings="local", **common)))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=180) as client:
            admin = await signup(client)
            price = (await add_document(client, admin, "Price objections", PRICE))["id"]
            opening = (await add_document(client, admin, "Opening",
                                          "Open a cold call with a reason for calling and one question."))["id"]
            assert await models_of(client, admin, price) == [LOCAL]
            assert (await search(client, admin, QUERY))["model"] == LOCAL
    assert await reembed_jobs(module_database_url) == []

    remote = make_settings(module_database_url, embeddings="openai", openai_api_key="sk-test",
                           openai_base_url=fake.url, **common)
    with run_asgi(serve_app(create_app(remote))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            async def held():
                return any("anchor on value" in t for _, inputs in fake.embedding_inputs for t in inputs)

            assert await eventually(held, timeout=60), "the re-embedding job never asked for the new vectors"
            # Mid-way: the query is in the new model's space and meets no old vector; full text still finds it.
            found = await search(client, admin, QUERY)
            assert found["mode"] == "hybrid" and found["model"] == REMOTE
            assert found["items"][0]["document_id"] == price
            assert all(item["vector_rank"] is None for item in found["items"]), found["items"]
            assert await models_of(client, admin, price) == [LOCAL]
            jobs = await reembed_jobs(module_database_url)
            assert [(j["status"], j["org_id"]) for j in jobs] == [("running", jobs[0]["org_id"])]
            fake.embedding_release.set()

            async def reembedded():
                return [await models_of(client, admin, d) for d in (price, opening)] == [[REMOTE], [REMOTE]]

            assert await eventually(reembedded, timeout=60)

            async def job_done():
                return [j["status"] for j in await reembed_jobs(module_database_url)] == ["done"]

            assert await eventually(job_done, timeout=30)
            found = await search(client, admin, QUERY)
            assert found["items"][0]["document_id"] == price and found["items"][0]["vector_rank"] == 1
            listed = (await client.get("/api/knowledge", headers=bearer(admin))).json()["items"]
            assert {d["id"]: d["models"] for d in listed} == {price: [REMOTE], opening: [REMOTE]}
    [job] = await reembed_jobs(module_database_url)
    assert json.loads(job["progress"]) == {"stage": "done", "model": REMOTE, "chunks": 2}
