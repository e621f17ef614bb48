"""Issue 16, "found when tried as a new user would", in real Chromium: the call's own page survives a
reload and Back/Forward, leaving a live call asks first, stray live calls are listed and ended, the
live-call limit is said before a call screen shows, "not found" and failed loads are pages, coach
notes say what they are, end reasons are words, /schema works offline, the microphone test says what
it heard, and the landing page says what Sparring is."""

from __future__ import annotations

import re
import uuid
import wave

import httpx
import numpy as np
import pytest
from playwright.async_api import expect

from tests.fixtures.speech import silence, speech_pcm
from tests.gateway.accounts_helpers import bearer, invite, signup, unique_email
from tests.gateway.live_client import LiveClient
from tests.web.conftest import CHROMIUM
from tests.web.test_browser import TIMEOUT, log_in, say, start_call

CALL_URL = re.compile(r"#/call/[0-9a-f-]{36}$")
# docs/protocol.md, `session.ended.reason`
END_REASONS = ["rep_ended", "persona_ended", "idle_timeout", "max_duration", "client_disconnected", "deleted",
               "owner_lost", "access_revoked", "vapi_timeout"]


async def new_rep(base_url, **kwargs) -> dict:
    async with httpx.AsyncClient(base_url=base_url) as api:
        return await signup(api, email=unique_email(), **kwargs)


async def shown_lines(page) -> list[tuple[int, str]]:
    return await page.locator(".line.final[data-seq]").evaluate_all(
        "els => els.map(e => [Number(e.dataset.seq), e.querySelector('.text').textContent])")


async def test_a_reload_or_back_and_forward_rejoins_the_call_with_every_line(pages, browser_without_microphone,
                                                                             base_url):
    rep = await new_rep(base_url)
    page = await pages.open(browser_without_microphone, "rep")
    dialogs: list[str] = []

    async def answer(dialog):
        dialogs.append(dialog.type)
        await dialog.accept()

    page.on("dialog", answer)
    await log_in(page, rep["user"]["email"])
    await start_call(page)
    await expect(page).to_have_url(CALL_URL)
    call_url = page.url
    await expect(page.locator(".line.final.persona")).to_have_count(1, timeout=TIMEOUT)  # the greeting
    await say(page, "How does your month end close work today?")
    await expect(page.locator(".line.final.persona")).to_have_count(2, timeout=TIMEOUT)
    before = await shown_lines(page)

    await page.reload()
    assert "beforeunload" in dialogs, "leaving a live call by reloading asks first"
    await expect(page).to_have_url(call_url)
    await expect(page.get_by_role("status")).to_have_text("Live", timeout=TIMEOUT)
    await expect(page.locator(".line.final")).to_have_count(len(before), timeout=TIMEOUT)
    assert await shown_lines(page) == before, "every line is back, once, in order"
    await say(page, "What does a late close cost your team?")
    await expect(page.locator(".line.final.persona")).to_have_count(3, timeout=TIMEOUT)
    before = await shown_lines(page)

    # Back (confirmed), then Forward: the call page again, every line again.
    await page.go_back()
    await expect(page.get_by_role("heading", name="Practice a call")).to_be_visible()
    assert "confirm" in dialogs, "leaving a live call in the app asks first"
    await page.go_forward()
    await expect(page).to_have_url(call_url)
    await expect(page.get_by_role("status")).to_have_text("Live", timeout=TIMEOUT)
    await expect(page.locator(".line.final")).to_have_count(len(before), timeout=TIMEOUT)
    assert await shown_lines(page) == before
    seqs = await page.locator(".line[data-seq]").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    assert seqs == sorted(set(seqs))
    await page.get_by_role("button", name="End call").click()
    await expect(page.get_by_role("status")).to_have_text("Call ended", timeout=TIMEOUT)
    await expect(page.locator(".end-reason")).to_have_text("You ended the call.")


async def test_leaving_a_live_call_in_the_app_asks_and_staying_keeps_it(pages, browser_without_microphone, base_url):
    rep = await new_rep(base_url)
    page = await pages.open(browser_without_microphone, "rep")
    await log_in(page, rep["user"]["email"])
    await start_call(page)
    call_url = page.url
    questions: list[str] = []

    async def refuse(dialog):
        questions.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", refuse)
    await page.get_by_role("link", name="History").click()
    await expect(page).to_have_url(call_url)
    assert questions and "Leave this call?" in questions[0]
    await expect(page.get_by_role("status")).to_have_text("Live")
    await expect(page.get_by_role("button", name="End call")).to_be_enabled()
    await page.get_by_role("button", name="End call").click()
    await expect(page.get_by_role("status")).to_have_text("Call ended", timeout=TIMEOUT)
    await page.get_by_role("link", name="History").click()  # ended: no question any more
    await expect(page.get_by_role("heading", name="Your team's calls")).to_be_visible()
    assert len(questions) == 1
    await expect(page.locator(".history .end-reason")).to_have_text([" · You ended the call."])
    # The call's own page, once it has ended, says so and offers the review.
    await page.goto(call_url)
    await expect(page.locator(".end-reason")).to_contain_text("This call has ended. You ended the call.")
    await expect(page.get_by_role("link", name="Review this call")).to_be_visible()


async def test_stray_live_calls_are_listed_ended_and_the_limit_is_said_before_a_call_page(
        pages, browser_without_microphone, base_url):
    rep = await new_rep(base_url)
    windows: dict[str, LiveClient] = {}
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(rep)) as api:
        for _ in range(2):  # two calls left running in other windows
            session = (await api.post("/api/sessions", json={"persona_id": "skeptical-cfo"})).json()
            windows[session["id"]] = window = await LiveClient(base_url, session["id"], rep["access_token"]).open()
            await window.wait_for(lambda e: e["type"] == "session.started")
    try:
        page = await pages.open(browser_without_microphone, "rep")
        await log_in(page, rep["user"]["email"])
        strays = page.locator(".stray-call")
        await expect(page.get_by_role("heading", name="Your live calls")).to_be_visible()
        await expect(strays).to_have_count(2)
        await page.get_by_role("button", name="Start call").click()
        alert = page.locator(".card .error[role=alert]")
        await expect(alert).to_contain_text("You already have 2 live calls")
        await expect(page.get_by_role("heading", name="Practice a call")).to_be_visible()  # no call screen
        pages.errors.clear()  # the refused POST (409) is logged by Chromium as a failed resource
        stray = await strays.first.get_attribute("data-session")
        await strays.first.get_by_role("button", name=re.compile("^End the call with")).click()
        await expect(strays).to_have_count(1)
        ended = await windows[stray].wait_for(lambda e: e["type"] == "session.ended", timeout=30)
        assert ended["reason"] == "rep_ended"
        await page.get_by_role("button", name="Start call").click()
        await expect(page).to_have_url(CALL_URL)
        await expect(page.get_by_role("status")).to_have_text("Live", timeout=TIMEOUT)
        await page.get_by_role("button", name="End call").click()
        await expect(page.get_by_role("status")).to_have_text("Call ended", timeout=TIMEOUT)
    finally:
        for window in windows.values():
            await window.close()


async def test_a_review_that_is_missing_or_not_yours_and_a_failed_load_are_pages(pages, browser, base_url):
    async with httpx.AsyncClient(base_url=base_url) as api:
        admin = await signup(api, email=unique_email())
        rep = await signup(api, invite_code=await invite(api, admin, "trainee"), email=unique_email("rep"))
        other = await signup(api, invite_code=await invite(api, admin, "trainee"), email=unique_email("other"))
        theirs = (await api.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                                 headers=bearer(other))).json()["id"]
    page = await pages.open(browser, "rep")
    await log_in(page, rep["user"]["email"])
    for target in (f"#/review/{uuid.uuid4()}", f"#/review/{theirs}", f"#/call/{theirs}", "#/review/not-an-id"):
        await page.goto(f"/{target}")
        await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        await expect(page.get_by_role("alert")).to_contain_text("not yours to see")
        await expect(page.get_by_role("link", name="Go to practice")).to_be_visible()
    assert await page.title() == "Not found · Sparring"
    # The server cannot be reached while the history loads.
    await page.route("**/api/sessions?*", lambda route: route.abort())
    await page.get_by_role("link", name="History").click()
    await expect(page.get_by_role("heading", name="This page could not load")).to_be_visible()
    await expect(page.get_by_role("alert")).to_contain_text("can't be reached")
    await page.unroute("**/api/sessions?*")
    await page.get_by_role("button", name="Try again").click()
    await expect(page.get_by_role("heading", name="Your calls")).to_be_visible()
    pages.errors.clear()  # the 404s and the aborted request are logged by Chromium as failed resources


async def test_coach_notes_say_what_they_are_on_both_sides(pages, browser_without_microphone, base_url):
    async with httpx.AsyncClient(base_url=base_url) as api:
        admin = await signup(api)
        coach = await signup(api, invite_code=await invite(api, admin, "coach"), name="Coach Kim",
                             email=unique_email("coach"))
        rep = await signup(api, invite_code=await invite(api, admin, "trainee"), name="Robin Rep",
                           email=unique_email("rep"))
    rep_page = await pages.open(browser_without_microphone, "rep")
    await log_in(rep_page, rep["user"]["email"])
    await start_call(rep_page)
    session_id = rep_page.url.rsplit("/", 1)[1]
    coach_page = await pages.open(browser_without_microphone, "coach")
    await log_in(coach_page, coach["user"]["email"])
    await coach_page.get_by_role("link", name="Coach console").click()
    entry = coach_page.locator(f'.live-call[data-session="{session_id}"]')
    await expect(entry.locator("time.started")).to_have_text(re.compile(r"^started \d"), timeout=10_000)
    await entry.get_by_role("link").click()
    await expect(coach_page.get_by_role("status")).to_have_text("Live")
    await coach_page.get_by_label("Whisper to the rep").fill("Ask who else feels the pain.")
    await coach_page.get_by_role("button", name="Whisper").click()
    await expect(rep_page.locator(".line.whisper .speaker")).to_have_text(
        "Coach note from Coach Kim (only you see this)")
    await expect(coach_page.locator(".line.whisper .speaker")).to_have_text(
        "Coach note from Coach Kim (the rep sees this, the buyer does not)")
    for page in (rep_page, coach_page):
        assert "hear this" not in await page.locator("body").inner_text()
    await rep_page.get_by_role("button", name="End call").click()
    await expect(rep_page.get_by_role("status")).to_have_text("Call ended", timeout=TIMEOUT)
    await rep_page.get_by_role("link", name="Review this call").click()
    await expect(rep_page.locator(".line.whisper .speaker")).to_have_text(
        "Coach note from Coach Kim (the rep saw this during the call)")
    await expect(rep_page.locator(".card .end-reason").first).to_have_text("You ended the call.")
    assert "rep_ended" not in await rep_page.locator("body").inner_text()
    await coach_page.goto(f"/#/review/{session_id}")
    await expect(coach_page.locator(".card .end-reason").first).to_have_text("The rep ended the call.")


async def test_every_end_reason_is_said_in_words(pages, browser, base_url):
    page = await pages.open(browser, "anyone")
    await page.goto("/")
    said = await page.evaluate("""reasons => import('/words.js').then(m => reasons.map(r =>
        [m.endReason(r, { mine: true }), m.endReason(r)]))""", END_REASONS)
    for reason, (mine, theirs) in zip(END_REASONS, said, strict=True):
        for text in (mine, theirs):
            assert text and "_" not in text and not text.startswith("The call ended ("), (reason, text)
    assert await page.evaluate("import('/words.js').then(m => m.endReason('customer-ended-call'))") \
        == "The call ended (customer ended call)."


async def test_the_landing_page_says_what_sparring_is(pages, browser, base_url):
    page = await pages.open(browser, "visitor")
    await page.goto("/")
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    lead = page.locator(".intro .lead")
    await expect(lead).to_contain_text("Sparring is where sales reps practise calls")
    await expect(lead).to_contain_text("scorecard after every call")
    await page.set_viewport_size({"width": 390, "height": 800})
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_the_api_docs_work_offline(pages, browser, base_url):
    page = await pages.open(browser, "docs")
    outside: list[str] = []

    async def only_this_server(route):
        if route.request.url.startswith(base_url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_this_server)
    await page.goto("/schema")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Sparring", timeout=20_000)
    await expect(page.locator(".opblock-summary-path").filter(has_text="/api/sessions").first).to_be_visible()
    assert outside == [], f"the docs page asked for outside resources: {outside}"
    async with httpx.AsyncClient(base_url=base_url) as api:
        response = await api.get("/schema")
    assert "cdn" not in response.text.lower() and "<script>" not in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self';")


# --- The microphone test, with microphones that are silent, fine and far too loud ----------------
def _wav(path, pcm: bytes):
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(pcm)
    return path


def _scaled(pcm: bytes, gain: float) -> bytes:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64) * gain
    return np.clip(samples, -32768, 32767).astype(np.int16).tobytes()


@pytest.fixture(scope="module")
def microphones(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mics")
    speech = speech_pcm("How does your month end close process work today, and who feels it most?")
    return {
        "quiet": _wav(folder / "quiet.wav", silence(12_000)),
        "fine": _wav(folder / "fine.wav", (_scaled(speech, 0.5) + silence(300)) * 3),
        "clipping": _wav(folder / "clipping.wav", (_scaled(speech, 40) + silence(300)) * 3),
    }


SAID = {"quiet": "Too quiet", "fine": "Your microphone sounds fine", "clipping": "Too loud"}


@pytest.fixture(params=list(SAID))
async def mic_browser(request, playwright_driver, microphones):
    """Chromium whose microphone plays one of `microphones` (set up before `pages`, closed after it)."""
    kind = request.param
    browser = await playwright_driver.chromium.launch(executable_path=CHROMIUM, args=[
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphones[kind]}", "--autoplay-policy=no-user-gesture-required",
    ])
    yield kind, browser
    await browser.close()


async def test_the_microphone_test_meters_the_level_and_says_what_it_heard(mic_browser, pages, base_url):
    kind, browser = mic_browser
    rep = await new_rep(base_url)
    page = await pages.open(browser, f"mic-{kind}")
    await log_in(page, rep["user"]["email"])
    await page.get_by_role("button", name="Test microphone").click()
    meter = page.get_by_role("meter", name="Microphone test level")
    await expect(meter).to_be_visible()
    if kind != "quiet":
        await page.wait_for_function("() => document.querySelector('.test-level').value > 0.02", timeout=15_000)
    verdict = page.locator(".mic-verdict")
    await expect(verdict).to_have_attribute("data-verdict", re.compile(r"\w"), timeout=20_000)
    await expect(verdict).to_contain_text(SAID[kind])
    assert "done" not in (await verdict.text_content() or "")
