"""What a rep and a coach do in the browser, in real Chromium against the running app."""

import re

import httpx
from playwright.async_api import expect

from tests.gateway.accounts_helpers import PASSWORD, invite, signup, unique_email

TIMEOUT = 60_000  # local speech models on two cores


async def log_in(page, email: str) -> None:
    await page.goto("/")
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Practice a call")).to_be_visible()


async def start_call(page) -> None:
    first = page.locator(".persona").first
    await expect(first).to_have_attribute("aria-checked", "true")
    await page.get_by_role("button", name="Start call").click()
    await expect(page.get_by_role("status")).to_have_text("Live", timeout=TIMEOUT)


async def say(page, text: str) -> None:
    await page.get_by_label("Type instead").fill(text)
    await page.get_by_role("button", name="Send").click()


async def test_a_rep_signs_up_talks_to_a_buyer_and_reviews_the_call(pages, browser):
    page = await pages.open(browser, "rep")
    await page.goto("/")
    await page.get_by_role("link", name="Sign up").click()
    await page.get_by_label("Name").fill("Riley Rep")
    await page.get_by_label("Email").fill(unique_email())
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Organization").fill("Browser Co")
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.get_by_role("heading", name="Practice a call")).to_be_visible()
    await expect(page.locator("#who")).to_contain_text("Riley Rep")
    await expect(page.locator("#who")).to_contain_text("Browser Co")
    await start_call(page)
    # The microphone (the WAV) asks about the month end close; the buyer answers in voice.
    rep_line = page.locator(".line.final.rep .text").first
    await expect(rep_line).to_contain_text("close", timeout=TIMEOUT, ignore_case=True)
    await expect(page.locator(".line.final.persona")).to_have_count(2, timeout=TIMEOUT)
    assert await page.evaluate("window.sparring.player.frames") > 0, "the buyer's audio arrived"
    await page.get_by_role("button", name="End call").click()
    await expect(page.get_by_role("status")).to_have_text("Call ended", timeout=TIMEOUT)
    await page.get_by_role("link", name="Review this call").click()
    await expect(page.get_by_role("heading", name="Review: Riley Rep with Dana Whitfield")).to_be_visible()
    await expect(page.locator(".line.final.rep .text").first).to_contain_text("close", ignore_case=True)
    await expect(page.locator(".metrics")).to_contain_text("Talk ratio")
    await expect(page.locator(".metrics")).to_contain_text("Questions")
    await expect(page.locator("audio")).to_have_count(1)


async def test_a_coach_sees_the_call_live_watches_it_and_whispers_to_the_rep(pages, browser, base_url):
    async with httpx.AsyncClient(base_url=base_url) as api:
        admin = await signup(api)
        coach = await signup(api, invite_code=await invite(api, admin, "coach"), name="Coach Kim",
                             email=unique_email("coach"))
        rep = await signup(api, invite_code=await invite(api, admin, "trainee"), name="Robin Rep",
                           email=unique_email("rep"))
    rep_page = await pages.open(browser, "rep")
    await log_in(rep_page, rep["user"]["email"])
    await start_call(rep_page)
    coach_page = await pages.open(browser, "coach")
    await log_in(coach_page, coach["user"]["email"])
    await coach_page.get_by_role("link", name="Coach console").click()
    call_link = coach_page.get_by_role("link", name="Robin Rep with Dana Whitfield")
    await expect(call_link).to_be_visible(timeout=10_000)
    await call_link.click()
    await expect(coach_page.get_by_role("status")).to_have_text("Live")
    await say(rep_page, "What does a late close cost your team?")
    await expect(coach_page.locator(".line.final.rep .text").last).to_have_text(
        "What does a late close cost your team?", timeout=TIMEOUT)
    await expect(coach_page.locator(".metrics")).to_contain_text("Talk ratio")
    await coach_page.get_by_label("Whisper to the rep").fill("Ask who else feels the pain.")
    await coach_page.get_by_role("button", name="Whisper").click()
    await expect(rep_page.locator(".whisper-card")).to_contain_text("Coach Kim whispers: Ask who else feels the pain.")
    await expect(rep_page.locator(".line.whisper")).to_have_count(1)


async def new_rep_in_a_call(pages, browser, base_url):
    """A rep (signed up through the API) logged in on a page of `browser`, in a call."""
    async with httpx.AsyncClient(base_url=base_url) as api:
        rep = await signup(api, email=unique_email())
    page = await pages.open(browser, "rep")
    await log_in(page, rep["user"]["email"])
    await start_call(page)
    return page


async def test_with_the_microphone_blocked_the_rep_types_instead(pages, browser_without_microphone, base_url):
    page = await new_rep_in_a_call(pages, browser_without_microphone, base_url)
    await expect(page.get_by_role("alert")).to_contain_text("type instead")
    await expect(page.get_by_role("link", name="Review this call")).to_be_hidden()
    await expect(page.locator(".line.final.persona")).to_have_count(1, timeout=TIMEOUT)  # the greeting
    await say(page, "How does your month end close work today?")
    await expect(page.locator(".line.final.rep .text")).to_have_text(["How does your month end close work today?"],
                                                                    timeout=TIMEOUT)
    await expect(page.locator(".line.final.persona")).to_have_count(2, timeout=TIMEOUT)


async def test_a_dropped_socket_reconnects_without_losing_transcript_lines(pages, browser_without_microphone, base_url):
    page = await new_rep_in_a_call(pages, browser_without_microphone, base_url)
    await expect(page.locator(".line.final.persona")).to_have_count(1, timeout=TIMEOUT)  # the greeting
    await say(page, "How does your month end close work today?")
    await page.evaluate("window.sparring.live.ws.close(4000, 'network drop')")  # before the answer arrives
    await expect(page.get_by_role("status")).to_have_text("Live", timeout=TIMEOUT)
    await expect(page.locator(".line.final.persona")).to_have_count(2, timeout=TIMEOUT)
    await expect(page.locator(".line.final.rep")).to_have_count(1)
    seqs = await page.locator(".line[data-seq]").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    assert seqs == sorted(set(seqs)), "each event shown once, in order"


async def test_history_lists_past_calls_and_pages_fit_a_phone(pages, browser, base_url):
    async with httpx.AsyncClient(base_url=base_url) as api:
        rep = await signup(api, email=unique_email())
    page = await pages.open(browser, "rep")
    await page.set_viewport_size({"width": 390, "height": 800})
    await log_in(page, rep["user"]["email"])
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scrolling"
    await page.get_by_role("button", name="Test microphone").click()
    # The test reports what it heard (tests/web/test_product_fixes_browser.py checks each verdict).
    await expect(page.locator(".mic-verdict")).to_have_attribute("data-verdict", re.compile("^(fine|quiet)$"),
                                                                  timeout=15_000)
    assert await page.evaluate("window.sparring.echo.frames") > 0, "the rep heard themselves back"
    await start_call(page)
    await page.get_by_role("button", name="End call").click()
    await expect(page.get_by_role("status")).to_have_text("Call ended", timeout=TIMEOUT)
    await page.get_by_role("link", name="History").click()
    await expect(page.get_by_role("heading", name="Your team's calls")).to_be_visible()  # they signed up as admin
    await expect(page.locator(".history li")).to_have_count(1)
    await expect(page.locator(".history li a")).to_have_text("Dana Whitfield · Pat Rep")
    await page.get_by_label("Persona").select_option(label="Marcus Chen")
    await expect(page.locator(".history li")).to_have_text(["No calls yet."])
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
