"""After the call, in real Chromium: the review page's scorecard streams in without a reload, the
progress page shows the curriculum and a score trend chart, and the team table sorts by a column."""

from __future__ import annotations

import asyncio
import re

import httpx
from playwright.async_api import expect

from tests.gateway.accounts_helpers import bearer, invite, signup, unique_email
from tests.gateway.live_client import LiveClient
from tests.web.test_browser import TIMEOUT, log_in, say, start_call

LINES = [
    "Hi Dana, this is Pat from Ledgerly. I'm calling because finance teams tell us month end close drags on.",
    "How does your month end close process work today, and what happens when it slips?",
    "What does a late close cost your team each month?",
    "Could we book thirty minutes next Tuesday at ten with your controller to walk through it?",
]


async def scored_call(base_url: str, rep: dict, lines: list[str] = LINES) -> str:
    """A call the rep makes over the live socket (typed turns), ended; returns its session id once scored."""
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(rep)) as api:
        session = (await api.post("/api/sessions", json={"persona_id": "skeptical-cfo"})).json()
        client = await LiveClient(base_url, session["id"], rep["access_token"]).open()
        try:
            await client.greeting(timeout=TIMEOUT / 1000)
            for line in lines:
                await client.talk(line, timeout=TIMEOUT / 1000)
            await client.send({"type": "end"})
            await client.wait_closed(timeout=30)
        finally:
            await client.close()
        for _ in range(300):  # scoring is a job: wait for its scorecard
            response = await api.get(f"/api/sessions/{session['id']}/score")
            if response.status_code == 200:
                return session["id"]
            assert response.json()["error"]["code"] in ("score_not_ready", "not_scored"), response.text
            await asyncio.sleep(0.2)
        raise AssertionError("the call was not scored within a minute")


async def test_the_review_page_streams_the_scorecard_in_after_a_call(pages, browser_without_microphone, base_url):
    async with httpx.AsyncClient(base_url=base_url) as api:
        rep = await signup(api, email=unique_email(), name="Sam Scored")
    page = await pages.open(browser_without_microphone, "rep")
    await log_in(page, rep["user"]["email"])
    await start_call(page)
    await expect(page.locator(".line.final.persona")).to_have_count(1, timeout=TIMEOUT)  # the greeting
    for count, line in enumerate(LINES[:3], start=2):
        await say(page, line)
        await expect(page.locator(".line.final.persona")).to_have_count(count, timeout=TIMEOUT)
    await page.evaluate("window.notReloaded = true")
    await page.get_by_role("button", name="End call").click()
    await expect(page.get_by_role("status")).to_have_text("Call ended", timeout=TIMEOUT)
    await page.get_by_role("link", name="Review this call").click()
    await expect(page.get_by_role("heading", name="Review: Sam Scored with Dana Whitfield")).to_be_visible()

    scorecard = page.locator(".scorecard")
    await expect(scorecard.locator(".overall-value")).to_have_text(re.compile(r"^\d+(\.\d)?$"), timeout=TIMEOUT)
    await expect(scorecard.locator(".verdict-badge")).to_contain_text("pass mark")
    await expect(scorecard.locator(".scorer")).to_contain_text("Scored by")
    dimensions = scorecard.locator(".dimension:not(.pending)")
    await expect(dimensions).to_have_count(6)
    await expect(scorecard.locator(".dimension .score-bar svg")).to_have_count(6)
    await expect(scorecard.locator(".dimension .bar-value").first).to_have_text(re.compile(r"^\d+ / 100$"))
    await expect(scorecard.locator(".dimension h3")).to_have_text(
        ["Opening & rapport", "Discovery & needs analysis", "Active listening", "Value articulation",
         "Objection handling", "Closing & next steps"])
    assert await scorecard.locator(".check").count() >= 6
    opening = scorecard.locator(".dimension details").first  # starts folded when at or above the pass mark
    if not await opening.evaluate("d => d.open"):
        await opening.locator("summary").click()
    quote = opening.locator(".check .quote").first
    await expect(quote).to_be_visible()
    await expect(quote.locator("time")).to_have_text(re.compile(r"^\d+:\d\d$"))
    if await scorecard.locator(".check.failed").count():
        await expect(scorecard.locator(".check.failed .feedback").first).to_contain_text("Try:")
    assert await page.evaluate("window.notReloaded === true"), "the scorecard came in without a reload"
    # The metrics come from the API with their reference bands and verdicts.
    await expect(page.locator(".metrics")).to_contain_text("Talk ratio")
    await expect(page.locator(".metrics .band").first).to_be_visible()
    await expect(page.locator(".metrics .verdict").first).to_have_text(
        re.compile(r"^(On target|Watch|Off target|Not measured)$"))
    await quote.click()  # seeks the recording (or marks the transcript line); must not throw

    # Rescore: the card goes back to scoring and a new scorecard streams in.
    first = await scorecard.get_attribute("data-score-id")
    assert first
    await page.get_by_role("button", name="Rescore", exact=True).click()
    await expect(scorecard).not_to_have_attribute("data-score-id", first, timeout=TIMEOUT)
    await expect(scorecard.locator(".dimension:not(.pending)")).to_have_count(6)
    await expect(scorecard.locator(".score-status")).to_be_hidden(timeout=TIMEOUT)
    await expect(scorecard.locator(".overall-value")).to_be_visible()

    # Try this persona again: a new call with the same buyer starts.
    await page.get_by_role("button", name="Try this persona again").click()
    await expect(page.get_by_role("heading", name="Call with Dana Whitfield")).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text("Live", timeout=TIMEOUT)
    await page.get_by_role("button", name="End call").click()
    await expect(page.get_by_role("status")).to_have_text("Call ended", timeout=TIMEOUT)


async def test_the_progress_page_shows_the_curriculum_and_a_trend_chart(pages, browser, base_url):
    async with httpx.AsyncClient(base_url=base_url) as api:
        rep = await signup(api, email=unique_email())
    await scored_call(base_url, rep)
    await scored_call(base_url, rep, LINES[1:])
    page = await pages.open(browser, "rep")
    await log_in(page, rep["user"]["email"])
    await page.get_by_role("link", name="Progress").click()
    await expect(page.get_by_role("heading", name="Your progress")).to_be_visible()
    modules = page.locator(".module")
    assert await modules.count() >= 1
    await expect(modules.first.locator(".badge")).to_have_text(re.compile(r"^(Not started|In progress|Completed)$"))
    await expect(modules.first).to_contain_text("Best on")
    chart = page.locator("svg.trend-chart")
    await expect(chart).to_be_visible()
    assert "scores per dimension" in (await chart.get_attribute("aria-label"))
    await expect(chart.locator(".series")).to_have_count(6)
    await expect(chart.locator(".series polyline")).to_have_count(6)  # two calls: a line per dimension
    await expect(chart.locator(".series-opening circle")).to_have_count(2)
    await expect(page.locator(".legend li")).to_have_text(
        ["Opening", "Discovery", "Listening", "Value", "Objections", "Closing"])
    await page.get_by_text("Show the scores as a table").click()
    await expect(page.locator(".trend-table tbody tr")).to_have_count(2)


async def test_the_team_page_sorts_by_a_column_and_opens_a_reps_history(pages, browser, base_url):
    async with httpx.AsyncClient(base_url=base_url) as api:
        admin = await signup(api, name="Ada Admin", email=unique_email("admin"))
        busy = await signup(api, invite_code=await invite(api, admin, "trainee"), name="Bo Busy",
                            email=unique_email("rep"))
        await signup(api, invite_code=await invite(api, admin, "trainee"), name="Cy Quiet", email=unique_email("rep"))
    await scored_call(base_url, busy)
    page = await pages.open(browser, "admin")
    await log_in(page, admin["user"]["email"])
    await page.get_by_role("link", name="Team", exact=True).click()
    await expect(page.get_by_role("heading", name="Team", exact=True)).to_be_visible()
    names = page.locator(".team-table tbody tr th a:not(.progress-link)")
    await expect(names).to_have_text(["Ada Admin", "Bo Busy", "Cy Quiet"])  # by name, A to Z
    rep_header = page.locator(".team-table th[data-key=name]")
    await expect(rep_header).to_have_attribute("aria-sort", "ascending")

    await page.get_by_role("button", name="Rep", exact=True).click()
    await expect(rep_header).to_have_attribute("aria-sort", "descending")
    await expect(names).to_have_text(["Cy Quiet", "Bo Busy", "Ada Admin"])

    await page.get_by_role("button", name="Scored", exact=True).click()  # most first
    await expect(page.locator(".team-table th[data-key=scored]")).to_have_attribute("aria-sort", "descending")
    await expect(rep_header).to_have_attribute("aria-sort", "none")
    await expect(names.first).to_have_text("Bo Busy")
    busy_row = page.locator(".team-table tbody tr").first
    await expect(busy_row.locator("td").nth(1)).to_have_text("1")  # scored
    await expect(busy_row.locator("td").nth(2)).to_have_text(re.compile(r"^\d+(\.\d)?$"))  # average
    await page.get_by_role("button", name="Average", exact=True).click()
    await expect(names.first).to_have_text("Bo Busy")  # the only one with an average; blanks last

    await page.get_by_role("button", name="This month", exact=True).click()
    await expect(page.get_by_role("button", name="This month", exact=True)).to_have_attribute("aria-pressed", "true")
    await expect(names.first).to_have_text("Bo Busy")

    await busy_row.locator("td").first.click()  # the row opens the rep's history
    await expect(page.get_by_role("heading", name="Your team's calls")).to_be_visible()
    await expect(page.get_by_label("Rep", exact=True)).to_have_value(busy["user"]["id"])
    await expect(page.locator(".history li")).to_have_count(1)
    await expect(page.locator(".history .call-score")).to_contain_text(re.compile(r"Passed|Below pass mark"))
    await page.get_by_label("Score", exact=True).select_option("passed")
    await page.get_by_label("Score", exact=True).select_option("below")
    await page.get_by_label("Score", exact=True).select_option("")
    await expect(page.locator(".history li a")).to_have_text(["Dana Whitfield · Bo Busy"])

    # A coach opens a rep's progress from the team table too.
    await page.get_by_role("link", name="Team", exact=True).click()
    await page.get_by_role("link", name="Bo Busy's progress").click()
    await expect(page.get_by_role("heading", name="Progress: Bo Busy")).to_be_visible()
    await expect(page.locator("svg.trend-chart .series-closing circle")).to_have_count(1)

    # Admins set the scoring weights and pass mark on the team page.
    await page.get_by_role("link", name="Team", exact=True).click()
    await page.get_by_label("Pass mark").fill("65")
    await page.get_by_role("button", name="Save scoring").click()
    await expect(page.get_by_text("Saved.")).to_be_visible()
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(admin)) as api:
        assert (await api.get("/api/orgs/scoring")).json()["pass_mark"] == 65
