"""The knowledge base and the coach chat in real Chromium: a coach uploads, finds, searches and
deletes a playbook document; a rep asks the coach, watches the answer stream in and opens the
passage a citation names; "Ask about this call" on a review sends that call along. The LLM and the
embeddings are the in-process fake OpenAI server."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.gateway.accounts_helpers import bearer, invite, signup, unique_email
from tests.gateway.knowledge.helpers import add_document, scored_call
from tests.servers import run_asgi
from tests.web.test_browser import TIMEOUT, log_in

PRICE = ("# Price objections\n\nWhen the buyer says the price is too high, do not discount. Anchor on value and"
         " ask what doing nothing costs them each month.")
QUESTION = "What do I say when the buyer says the price is too high?"
ANSWER = "Anchor on value before you talk about discounts [1]. Ask what a late close costs them [1]."


@pytest.fixture(scope="module")
def fake():
    fake = FakeOpenAI(reply=ANSWER)
    with run_asgi(fake.app()) as url:
        fake.url = url + "/v1"
        yield fake


@pytest.fixture(scope="module")
def base_url(module_database_url, fake):
    settings = make_settings(module_database_url, openai_api_key="sk-test", openai_base_url=fake.url,
                             llm_provider="scripted", stt_provider="local", tts_provider="local", hints_llm="off",
                             scorer="heuristic", knowledge_starter="false")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


async def team(base_url: str) -> tuple[dict, dict, dict]:
    """An org's admin, a coach and a rep."""
    async with httpx.AsyncClient(base_url=base_url) as api:
        admin = await signup(api, email=unique_email("admin"), name="Ada Admin")
        coach = await signup(api, invite_code=await invite(api, admin, "coach"), email=unique_email("coach"),
                             name="Casey Coach")
        rep = await signup(api, invite_code=await invite(api, admin, "trainee"), email=unique_email(), name="Robin Rep")
    return admin, coach, rep


async def test_a_coach_uploads_a_document_finds_it_by_search_and_deletes_it(pages, browser, base_url, tmp_path):
    _, coach, _ = await team(base_url)
    page = await pages.open(browser, "coach")
    await log_in(page, coach["user"]["email"])
    await page.get_by_role("link", name="Knowledge").click()
    await expect(page.get_by_role("heading", name="Knowledge", exact=True)).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text("No documents yet.")

    path = tmp_path / "pricing-playbook.md"
    path.write_text(PRICE, encoding="utf-8")
    upload = page.get_by_role("form", name="Upload a file")
    await upload.get_by_label("File").set_input_files(str(path))
    await upload.get_by_label("Title").fill("Pricing playbook")
    await upload.get_by_role("button", name="Upload").click()
    await expect(page.get_by_role("status")).to_contain_text("Added “Pricing playbook”: 1 passage")
    row = page.locator(".document-row")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Pricing playbook")
    await expect(row).to_contain_text("Markdown")
    await expect(row.locator("td").nth(2)).to_have_text("1")  # chunks
    await expect(row).to_contain_text("text-embedding-3-small")
    await expect(row).to_contain_text("Casey Coach")

    paste = page.get_by_role("form", name="Paste text")
    await paste.get_by_label("Title").fill("Openers")
    await paste.get_by_label("Text").fill("Open a cold call with a reason for calling and one good question.")
    await paste.get_by_role("button", name="Add text").click()
    await expect(page.locator(".document-row")).to_have_count(2)

    # A file the knowledge base cannot read: the API's reason, in words.
    bad = tmp_path / "deck.exe"
    bad.write_bytes(b"MZ\x90\x00 not a document")
    await upload.get_by_label("File").set_input_files(str(bad))
    await upload.get_by_role("button", name="Upload").click()
    await expect(upload.get_by_role("alert")).to_contain_text("that file is")
    pages.errors[:] = [e for e in pages.errors if "status of 4" not in e]  # Chromium logs the refused upload

    await page.get_by_label("Search the knowledge base").fill("the buyer thinks it is too expensive, price too high")
    await page.get_by_role("button", name="Search", exact=True).click()
    results = page.locator(".knowledge-results .result")
    await expect(results.first).to_contain_text("Pricing playbook")
    await expect(results.first).to_contain_text("passage 1 of 1")
    await expect(results.first.locator(".hint")).to_contain_text("score 0.")
    await expect(results.first).to_contain_text("Anchor on value")
    await expect(page.locator(".search-mode")).to_contain_text("text-embedding-3-small")

    await page.get_by_role("button", name="Delete Pricing playbook").click()
    await expect(page.locator(".document-row")).to_have_count(1)
    await expect(page.locator(".document-row")).not_to_contain_text("Pricing playbook")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.locator(".knowledge-results")).not_to_contain_text("Pricing playbook")
    await page.set_viewport_size({"width": 390, "height": 800})
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "fits a phone"


async def test_the_knowledge_page_is_for_coaches_and_admins(pages, browser, base_url):
    _, _, rep = await team(base_url)
    page = await pages.open(browser, "rep")
    await log_in(page, rep["user"]["email"])
    await expect(page.get_by_role("link", name="Coach chat")).to_be_visible()
    await expect(page.get_by_role("link", name="Knowledge")).to_have_count(0)
    await page.goto("/#/knowledge")
    await expect(page.get_by_role("alert")).to_have_text("The knowledge base is managed by coaches and admins.")
    await page.locator("#app").get_by_role("link", name="coach chat").click()
    await expect(page.get_by_role("heading", name="Coach chat")).to_be_visible()


async def test_a_rep_asks_the_coach_and_a_citation_opens_its_passage(pages, browser, base_url, fake):
    admin, _, rep = await team(base_url)
    async with httpx.AsyncClient(base_url=base_url) as api:
        await add_document(api, admin, "Price objections", PRICE)
    page = await pages.open(browser, "rep")
    await log_in(page, rep["user"]["email"])
    await page.get_by_role("link", name="Coach chat").click()
    await expect(page.get_by_role("heading", name="Coach chat")).to_be_visible()
    await expect(page.locator(".conversations")).to_contain_text("No conversations yet.")
    await page.get_by_label("Your question").fill(QUESTION)
    await page.get_by_role("button", name="Ask", exact=True).click()

    answer = page.locator(".chat-message.assistant")
    await expect(answer).to_have_attribute("data-state", "done", timeout=TIMEOUT)
    await expect(answer.locator(".chat-text")).to_contain_text(ANSWER)
    # It came in as it was written: one delta event per word of the fake model's reply.
    assert int(await answer.get_attribute("data-deltas")) == len(ANSWER.split())
    await expect(answer.locator(".answer-mode")).to_be_hidden()
    citations = answer.locator("a.citation")
    await expect(citations).to_have_count(2)
    passage = answer.locator(".chat-sources li[data-n='1'] details")
    await expect(passage.locator(".source-text")).to_be_hidden()
    await citations.first.click()
    await expect(passage.locator(".source-text")).to_be_visible()
    await expect(passage.locator(".source-text")).to_contain_text("Anchor on value and ask what doing nothing costs")
    await expect(passage.locator("summary")).to_contain_text("[1] Price objections")
    assert "#/chat/" in page.url

    # The conversation is saved: listed, reopened after a reload with its citations, deleted.
    item = page.locator(".conversations .conversation")
    await expect(item).to_have_count(1)
    await expect(item.locator("a")).to_have_text(QUESTION)
    await page.reload()
    await expect(page.locator(".chat-message")).to_have_count(2)
    await expect(page.locator(".chat-message.assistant a.citation")).to_have_count(2)

    # With the LLM failing, the answer is the extractive one, labelled as the server labels it.
    fake.stream_failures = 1
    await page.get_by_label("Your question").fill("How do I handle the price objection?")
    await page.get_by_role("button", name="Ask", exact=True).click()
    extractive = page.locator(".chat-message.assistant").nth(1)
    await expect(extractive).to_have_attribute("data-answer", "extractive", timeout=TIMEOUT)
    await expect(extractive.locator(".answer-mode")).to_have_text(
        "No AI model is configured, so here are the most relevant passages from your playbook:")
    await expect(extractive.locator("a.citation").first).to_have_text("[1]")
    await page.set_viewport_size({"width": 390, "height": 800})
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "fits a phone"

    await page.get_by_role("button", name=f"Delete conversation: {QUESTION}").click()
    await expect(page.get_by_role("heading", name="Coach chat")).to_be_visible()
    await expect(page.locator(".conversations")).to_contain_text("No conversations yet.")
    await expect(page.locator(".chat-message")).to_have_count(0)


async def test_ask_about_this_call_from_a_review_sends_the_call_along(pages, browser, base_url, fake):
    _, _, rep = await team(base_url)
    line = "How does your month end close work today, and what happens when it slips?"
    session_id = await scored_call(base_url, rep, [line])
    page = await pages.open(browser, "rep")
    await log_in(page, rep["user"]["email"])
    await page.goto(f"/#/review/{session_id}")
    await expect(page.get_by_role("heading", name="Review: Robin Rep with Dana Whitfield")).to_be_visible()
    await page.get_by_role("link", name="Ask about this call").click()
    await expect(page.get_by_role("heading", name="Coach chat")).to_be_visible()
    await expect(page.locator(".about-call")).to_contain_text("About your call with Dana Whitfield")
    asked = len(fake.persona_chats())
    await page.get_by_label("Your question").fill("What should I have asked next?")
    await page.get_by_role("button", name="Ask", exact=True).click()
    await expect(page.locator(".chat-message.assistant")).to_have_attribute("data-state", "done", timeout=TIMEOUT)

    prompt = fake.persona_chats()[asked]["messages"][0]["content"]
    assert "The rep is asking about one of their practice calls, with Dana Whitfield." in prompt
    assert f"Rep: {line}" in prompt and "Scorecard:" in prompt
    async with httpx.AsyncClient(base_url=base_url) as api:
        listed = (await api.get("/api/chat/conversations", headers=bearer(rep))).json()["items"]
    assert [c["session_id"] for c in listed] == [session_id]
    await expect(page.locator(".conversations .conversation")).to_contain_text("about a call")
    # A follow-up in the reopened conversation still sends the call.
    await page.reload()
    await expect(page.locator(".about-call")).to_be_visible()
    await page.get_by_label("Your question").fill("And how do I close?")
    await page.get_by_role("button", name="Ask", exact=True).click()
    await expect(page.locator(".chat-message.assistant").nth(1)).to_have_attribute("data-state", "done",
                                                                                     timeout=TIMEOUT)
    assert f"Rep: {line}" in fake.persona_chats()[-1]["messages"][0]["content"]
