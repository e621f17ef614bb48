"""The knowledge base with the local embedding model (no API key): ingest, hybrid relevance, org
isolation, documents in every format, bad files, the starter playbook, the VAPI tool."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.gateway.accounts_helpers import bearer, eventually, invite, signup
from tests.gateway.knowledge.corpus import DOCUMENTS, PARAPHRASED
from tests.gateway.knowledge.documents import docx_with, pdf_with_text
from tests.gateway.knowledge.helpers import add_document, search
from tests.gateway.vapi_helpers import SECRET, deliver, payload
from tests.servers import run_asgi


@pytest.fixture(scope="module")
def base_url(module_database_url):
    with run_asgi(serve_app(create_app(make_settings(module_database_url, vapi_webhook_secret=SECRET,
                                                        site_url="http://sparring.test")))) as url:
        yield url


@pytest.fixture
async def client(base_url):
    # Local embedding shares the machine's CPU: ingest may take a while on a busy machine.
    async with httpx.AsyncClient(base_url=base_url, timeout=180) as client:
        yield client


async def _corpus(client, admin, source: str) -> dict[str, str]:
    ids = {}
    for title, text in DOCUMENTS.items():
        ids[title] = (await add_document(client, admin, title, text, source=source))["id"]
    return ids


async def test_paraphrased_questions_find_their_document_in_the_top_three_with_the_local_model(client):
    admin = await signup(client)
    ids = await _corpus(client, admin, "relevance")
    misses = []
    for question, title in PARAPHRASED.items():
        found = await search(client, admin, question, source="relevance", limit=3)
        assert found["mode"] == "hybrid" and found["model"] == "all-MiniLM-L6-v2"
        if ids[title] not in [item["document_id"] for item in found["items"]]:
            misses.append((question, [item["title"] for item in found["items"]]))
    assert not misses


async def test_ingest_answers_chunks_and_the_list_shows_model_size_and_author(client):
    admin = await signup(client, name="Casey Coach")
    text = "# Pricing\n\n" + "Anchor on value before discussing discounts. " * 120 + "\n\n# Closing\n\nAsk for a date."
    created = await add_document(client, admin, "Long playbook", text)
    assert created["chunks"] >= 2 and created["model"] == "all-MiniLM-L6-v2"
    listed = (await client.get("/api/knowledge", headers=bearer(admin))).json()["items"]
    mine = next(d for d in listed if d["id"] == created["id"])
    assert mine["chunks"] == created["chunks"] and mine["models"] == ["all-MiniLM-L6-v2"]
    assert mine["created_by_name"] == "Casey Coach" and mine["size_bytes"] == len(text.encode()) and not mine["shared"]
    detail = (await client.get(f"/api/knowledge/{created['id']}", headers=bearer(admin))).json()
    assert [c["chunk_index"] for c in detail["chunk_texts"]] == list(range(created["chunks"]))
    assert detail["chunk_texts"][-1]["text"].startswith("Closing")


async def test_search_never_returns_another_orgs_documents(client):
    ours, theirs = await signup(client), await signup(client)
    secret = f"zebra-{uuid.uuid4().hex[:6]}"
    doc = await add_document(client, theirs, "Their pricing", f"The {secret} discount is 40 percent.")
    assert (await search(client, theirs, secret))["items"][0]["document_id"] == doc["id"]
    found = await search(client, ours, f"{secret} discount 40 percent", limit=50)
    assert doc["id"] not in [i["document_id"] for i in found["items"]]
    assert (await client.get(f"/api/knowledge/{doc['id']}", headers=bearer(ours))).status_code == 404
    assert (await client.delete(f"/api/knowledge/{doc['id']}", headers=bearer(ours))).status_code == 404


async def test_pdf_and_docx_uploads_are_searchable(client):
    admin = await signup(client)
    pdf = pdf_with_text(["Security review checklist", "Our quokka-grade encryption passes every audit."])
    response = await client.post("/api/knowledge", files={"file": ("security.pdf", pdf, "application/pdf")},
                                 data={"title": "Security", "source": "formats"}, headers=bearer(admin))
    assert response.status_code == 201, response.text
    docx = docx_with([("Heading1", "Renewals"), (None, "Offer the wombat bundle at renewal time.")])
    response2 = await client.post("/api/knowledge", files={"file": ("renewals.docx", docx, "application/octet-stream")},
                                  data={"source": "formats"}, headers=bearer(admin))
    assert response2.status_code == 201, response2.text
    found = await search(client, admin, "quokka encryption", source="formats")
    assert found["items"][0]["document_id"] == response.json()["id"] and "audit" in found["items"][0]["text"]
    found = await search(client, admin, "wombat bundle", source="formats")
    assert found["items"][0]["document_id"] == response2.json()["id"]
    assert found["items"][0]["text"].startswith("Renewals")
    docs = {d["id"]: d for d in (await client.get("/api/knowledge", headers=bearer(admin))).json()["items"]}
    assert docs[response.json()["id"]]["kind"] == "pdf" and docs[response2.json()["id"]]["kind"] == "docx"
    assert docs[response2.json()["id"]]["title"] == "renewals"


async def test_bad_documents_are_refused_with_a_message(client):
    admin = await signup(client)

    async def send(name: str, data: bytes) -> tuple[int, dict]:
        r = await client.post("/api/knowledge", files={"file": (name, data, "application/octet-stream")},
                              headers=bearer(admin))
        return r.status_code, r.json()["error"]

    status, error = await send("broken.pdf", b"%PDF-1.4\nthis is not really a pdf")
    assert status == 400 and "PDF" in error["message"]
    status, error = await send("image.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    assert status == 415 and error["code"] == "unsupported_document"
    not_docx = docx_with([(None, "x")]).replace(b"word/document.xml", b"word/other.xmlx")
    status, error = await send("archive.zip", not_docx)
    assert status in (400, 415)
    status, error = await send("big.txt", b"a" * (8 * 1024 * 1024 + 1))
    assert status == 413 and "MB" in error["message"]
    status, error = await send("empty.txt", b"   \n  ")
    assert status == 400 and error["code"] == "empty_document"
    r = await client.post("/api/knowledge", content=b"hello", headers={**bearer(admin), "content-type": "text/plain"})
    assert r.status_code == 415
    r = await client.post("/api/knowledge", json={"title": "", "text": "x"}, headers=bearer(admin))
    assert r.status_code == 400


async def test_trainees_read_and_search_but_cannot_add_or_delete(client):
    admin = await signup(client)
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    doc = await add_document(client, admin, "Team notes", "Always confirm the platypus timeline.")
    r = await client.post("/api/knowledge", json={"title": "t", "text": "x"}, headers=bearer(rep))
    assert r.status_code == 403
    assert (await client.delete(f"/api/knowledge/{doc['id']}", headers=bearer(rep))).status_code == 403
    assert (await search(client, rep, "platypus timeline"))["items"][0]["document_id"] == doc["id"]
    assert (await client.delete(f"/api/knowledge/{doc['id']}", headers=bearer(admin))).status_code == 204
    assert (await client.get(f"/api/knowledge/{doc['id']}", headers=bearer(admin))).status_code == 404


async def test_the_starter_playbook_is_shared_embedded_and_answers_objection_questions(client):
    admin = await signup(client)

    async def embedded():
        items = (await client.get("/api/knowledge", headers=bearer(admin))).json()["items"]
        starter = [d for d in items if d["source"] == "sparring-starter-playbook"]
        return starter if starter and starter[0]["models"] == ["all-MiniLM-L6-v2"] else None

    starter = await eventually(embedded, timeout=120)
    assert starter and starter[0]["shared"] and starter[0]["chunks"] >= 10
    found = await search(client, admin, "how do I handle 'we already have a vendor'?", limit=3)
    assert found["items"][0]["source"] == "sparring-starter-playbook"
    assert "incumbent" in found["items"][0]["text"].lower() or "vendor" in found["items"][0]["text"].lower()
    r = await client.delete(f"/api/knowledge/{starter[0]['id']}", headers=bearer(admin))
    assert r.status_code == 403


async def test_vapi_tool_returns_the_same_top_result_as_the_search_api(client):
    admin = await signup(client)
    await _corpus(client, admin, "vapi")
    session = await client.post("/api/sessions", json={"persona_id": "skeptical-cfo", "transport": "vapi"},
                                headers=bearer(admin))
    assert session.status_code == 201, session.text
    question = "Is my information kept safe and private?"
    top = (await search(client, admin, question, limit=3))["items"][0]
    body = payload("tool-calls-parameters", session_id=session.json()["id"]).replace(
        b'"onboarding time"', json.dumps(question).encode())
    answer = await deliver(client, body, path="/api/vapi/tools/knowledge-base")
    assert answer.status_code == 200, answer.text
    result = answer.json()["results"][0]["result"]
    assert result.startswith(f"{top['title']}: {' '.join(top['text'].split())[:60]}")
