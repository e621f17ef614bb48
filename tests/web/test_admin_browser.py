"""Issue 16's pages in real Chromium against the running app: the scenario brief on the persona card and
the call page, the admin page (members, invites with a link that opens sign-up with the code filled in,
VAPI and scoring settings), and the persona builder (duplicate, errors next to the field, preview the
opening, try a typed call). Screenshots on failure (tests/web/conftest.py)."""

import asyncio

import httpx
from playwright.async_api import expect

from tests.gateway.accounts_helpers import PASSWORD, bearer, invite, signup, unique_email
from tests.web.test_browser import log_in

TIMEOUT = 60_000


async def no_sideways_scroll(page) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scrolling"


async def test_a_rep_sees_the_brief_on_the_card_and_the_call_page_but_not_the_hidden_persona(
        pages, browser_without_microphone, base_url):
    async with httpx.AsyncClient(base_url=base_url) as api:
        admin = await signup(api)
        rep = await signup(api, invite_code=await invite(api, admin, "trainee"), email=unique_email())
    page = await pages.open(browser_without_microphone, "rep")
    bodies: list[str] = []

    async def keep(response):
        if "/api/personas" in response.url or "/api/sessions/" in response.url:
            try:
                bodies.append(await response.text())
            except Exception:
                pass
    page.on("response", keep)
    await log_in(page, rep["user"]["email"])
    card = page.locator('.persona[data-id="skeptical-cfo"]')
    await expect(card).to_contain_text("Cold call")
    await expect(card).to_contain_text("Freight-invoice audit software")
    await page.get_by_role("button", name="Start call").click()
    brief = page.get_by_role("region", name="Your brief")
    await expect(brief).to_be_visible(timeout=TIMEOUT)
    await expect(brief).to_contain_text("Your goal")
    await expect(brief).to_contain_text("earn a follow-up meeting")
    await expect(brief).to_contain_text("A good outcome")
    await expect(page.get_by_role("status")).to_have_text("Live", timeout=TIMEOUT)
    assert bodies and not any("payback" in b or "eight days" in b for b in bodies), "hidden persona reached the rep"
    await page.set_viewport_size({"width": 390, "height": 800})
    await no_sideways_scroll(page)
    await page.get_by_role("button", name="End call").click()


async def test_an_admin_manages_members_invites_and_settings(pages, browser, base_url):
    async with httpx.AsyncClient(base_url=base_url) as api:
        admin = await signup(api, name="Ada Admin", org_name="Admin Co")
        rep = await signup(api, invite_code=await invite(api, admin, "trainee"), name="Robin Rep",
                           email=unique_email())
        await signup(api, invite_code=await invite(api, admin, "trainee"), name="Sasha Staff",
                             email=unique_email())
    page = await pages.open(browser, "admin")
    await log_in(page, admin["user"]["email"])
    await page.get_by_role("link", name="Admin").click()
    await expect(page.get_by_role("heading", name="Admin: Admin Co")).to_be_visible()
    members = page.get_by_role("region", name="Members")
    await expect(members.locator("tbody tr")).to_have_count(3)
    # Role change and removal.
    await page.get_by_label("Role for Sasha Staff").select_option("coach")
    await expect(members.get_by_role("status")).to_have_text("Sasha Staff is now coach.")
    page.once("dialog", lambda d: d.accept())
    await page.get_by_role("button", name="Remove Robin Rep").click()
    await expect(members.get_by_role("status")).to_have_text("Robin Rep was removed.")
    await expect(members.locator("tbody tr")).to_have_count(2)
    async with httpx.AsyncClient(base_url=base_url) as api:
        listed = (await api.get("/api/orgs/members", headers=bearer(admin))).json()["items"]
        assert {m["name"]: m["role"] for m in listed} == {"Ada Admin": "admin", "Sasha Staff": "coach"}
        assert rep["user"]["id"] not in {m["user_id"] for m in listed}
    # Invites: create, see pending, copy the link, revoke one.
    invites = page.get_by_role("region", name="Invites")
    await expect(invites.locator("tbody")).to_contain_text("No pending invites.")
    await invites.get_by_label("Role").select_option("coach")
    await invites.get_by_role("button", name="Create invite").click()
    link = invites.get_by_label("Invite link")
    await expect(link).to_be_focused()
    url = await link.input_value()
    assert "#/signup?invite=" in url
    await expect(invites.locator("tbody tr")).to_have_count(1)
    await expect(invites.locator("tbody tr")).to_contain_text("Coach")
    await invites.get_by_label("Role").select_option("trainee")
    await invites.get_by_role("button", name="Create invite").click()
    await expect(invites.locator("tbody tr")).to_have_count(2)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await invites.get_by_role("button", name="Copy link").click()
    await expect(invites.get_by_role("status")).to_have_text("Link copied.")
    await invites.get_by_role("button", name="Revoke the rep (trainee) invite", exact=False).click()
    await expect(invites.get_by_role("status")).to_contain_text("Invite revoked")
    await expect(invites.locator("tbody tr")).to_have_count(1)
    # The link opens sign-up with the code filled in; signing up joins the team as a coach.
    newcomer = await pages.open(browser, "newcomer")
    await newcomer.goto(url.replace(base_url, ""))
    await expect(newcomer.get_by_role("heading", name="Sign up")).to_be_visible()
    assert await newcomer.get_by_label("Invite code").input_value() == url.split("invite=")[1]
    await expect(newcomer.get_by_label("Organization")).to_have_count(0)
    await newcomer.get_by_label("Name").fill("Nico New")
    await newcomer.get_by_label("Email").fill(unique_email("new"))
    await newcomer.get_by_label("Password").fill(PASSWORD)
    await newcomer.get_by_role("button", name="Sign up").click()
    await expect(newcomer.locator("#who")).to_contain_text("Admin Co · coach")
    await page.reload()
    await expect(page.get_by_role("region", name="Invites").locator("tbody")).to_contain_text("No pending invites.")
    # Organization settings: VAPI and scoring.
    await page.get_by_label("Default persona").select_option("busy-it-director")
    await page.get_by_label("Phone numbers").fill("+15551230000 = skeptical-cfo")
    await page.get_by_role("button", name="Save VAPI settings").click()
    await expect(page.locator(".vapi-form").get_by_role("status")).to_have_text("Saved.")
    await page.get_by_label("Pass mark").fill("70")
    await page.get_by_role("button", name="Save scoring").click()
    await expect(page.locator(".org-scoring").get_by_role("status")).to_have_text("Saved.")
    async with httpx.AsyncClient(base_url=base_url) as api:
        vapi = (await api.get("/api/orgs/vapi", headers=bearer(admin))).json()
        assert vapi["default_persona_id"] == "busy-it-director"
        assert vapi["phone_numbers"] == {"+15551230000": "skeptical-cfo"}
        assert (await api.get("/api/orgs/scoring", headers=bearer(admin))).json()["pass_mark"] == 70
    await page.set_viewport_size({"width": 390, "height": 800})
    await no_sideways_scroll(page)


async def test_the_admin_page_is_for_admins_only(pages, browser, base_url):
    async with httpx.AsyncClient(base_url=base_url) as api:
        admin = await signup(api)
        coach = await signup(api, invite_code=await invite(api, admin, "coach"), email=unique_email("coach"))
    page = await pages.open(browser, "coach")
    await log_in(page, coach["user"]["email"])
    await expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    await expect(page.get_by_role("link", name="Personas")).to_be_visible()
    await page.goto("/#/admin")
    await expect(page.get_by_role("alert")).to_contain_text("for your organization's admins")


async def test_a_coach_duplicates_a_built_in_fixes_an_error_next_to_the_field_and_tries_a_typed_call(
        pages, browser_without_microphone, base_url):
    async with httpx.AsyncClient(base_url=base_url) as api:
        admin = await signup(api)
        coach = await signup(api, invite_code=await invite(api, admin, "coach"), name="Casey Coach",
                             email=unique_email("coach"))
    page = await pages.open(browser_without_microphone, "coach")
    await log_in(page, coach["user"]["email"])
    await page.get_by_role("link", name="Personas").click()
    await expect(page.get_by_role("heading", name="Personas", exact=True)).to_be_visible()
    await page.get_by_role("link", name="Duplicate Dana Whitfield").click()
    await expect(page.get_by_role("heading", name="Duplicate Dana Whitfield")).to_be_visible()
    await expect(page.get_by_label("Name", exact=True)).to_have_value("Dana Whitfield (copy)")
    await expect(page.get_by_label("Call type")).to_have_value("cold call")
    # An empty opening line: the server's rules answer 400 naming it; the error sits next to the field.
    await page.get_by_label("Opening line").fill("")
    await page.get_by_role("button", name="Save persona").click()
    opening = page.get_by_label("Opening line")
    await expect(opening).to_have_attribute("aria-invalid", "true")
    await expect(opening).to_be_focused()
    error = page.locator(".field", has=opening).locator(".field-error")
    await expect(error).to_have_text("This can't be empty.")
    assert await error.get_attribute("id") in (await opening.get_attribute("aria-describedby") or "")
    # An objection without triggers: the error is next to that objection's Triggers box.
    triggers = page.locator('[data-field="objections[1].triggers"]')
    await triggers.fill("")
    await opening.fill("Dana here. You have two minutes.")
    await page.get_by_role("button", name="Save persona").click()
    await expect(triggers).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(".field", has=triggers).locator(".field-error")).to_have_text("Add at least one.")
    await expect(opening).not_to_have_attribute("aria-invalid", "true")
    # Chromium logs each answered 400 as a console error: these two were asked for, any other still fails the test.
    for _ in range(50):  # the console message can trail the page's own handling of the answer
        expected = [e for e in pages.errors if "status of 400" in e]
        if len(expected) >= 2:
            break
        await page.wait_for_timeout(100)
    assert len(expected) == 2, pages.errors
    pages.errors[:] = [e for e in pages.errors if e not in expected]
    await triggers.fill("implement, rollout")
    await page.get_by_label("What the rep sells").fill("Carrier invoice audits")
    await page.get_by_role("button", name="Preview the opening").click()
    await expect(page.locator(".opening-preview")).to_contain_text("Dana here. You have two minutes.")
    await page.get_by_role("button", name="Save persona").click()
    await expect(page.locator(".persona-form").get_by_role("status")).to_contain_text("Saved Dana Whitfield (copy)")
    assert "#/personas/edit/" in page.url
    # Edit it once more (PUT), then try a typed call with it.
    await page.get_by_label("Name", exact=True).fill("Dana Copy")
    await page.get_by_role("button", name="Save persona").click()
    await expect(page.locator(".persona-form").get_by_role("status")).to_contain_text("Saved Dana Copy")
    await page.get_by_role("button", name="Try a typed call").click()
    await expect(page.get_by_role("heading", name="Call with Dana Copy")).to_be_visible(timeout=TIMEOUT)
    await expect(page.get_by_role("region", name="Your brief")).to_contain_text("Carrier invoice audits")
    await expect(page.locator(".line.final.persona .text").first).to_have_text(
        "Dana here. You have two minutes.", timeout=TIMEOUT)
    await page.get_by_label("Type instead").fill("It's forty-nine dollars per seat per month.")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator(".line.final.persona")).to_have_count(2, timeout=TIMEOUT)
    await expect(page.locator(".line.final.persona .text").last).to_contain_text("payback period")
    await page.get_by_role("button", name="End call").click()
    # Until the end is confirmed the call is live, and leaving a live call asks first.
    await expect(page.get_by_text("You ended the call.")).to_be_visible(timeout=TIMEOUT)
    await page.goto("/#/personas")
    await expect(page.locator(".persona-list.own")).to_contain_text("Dana Copy", timeout=20_000)
    await page.set_viewport_size({"width": 390, "height": 800})
    await no_sideways_scroll(page)


async def test_a_page_that_finishes_loading_late_does_not_replace_the_page_navigated_to_since(
        pages, browser_without_microphone, base_url):
    """The practice page is still loading (its module held back) when the admin goes to the admin
    page; when the practice page's module does arrive, the admin page stays on screen."""
    async with httpx.AsyncClient(base_url=base_url) as api:
        admin = await signup(api, name="Ada Admin", org_name="Slow Co")
    page = await pages.open(browser_without_microphone, "admin")
    await log_in(page, admin["user"]["email"])
    held = asyncio.Event()
    requested = asyncio.Event()

    async def hold(route):
        requested.set()
        await held.wait()
        await route.continue_()
    await page.route("**/pages/practice.js", hold)
    await page.reload()  # a fresh document: the router imports the practice page again
    await asyncio.wait_for(requested.wait(), 30)
    await page.evaluate("location.hash = '#/admin'")
    await expect(page.get_by_role("heading", name="Admin: Slow Co")).to_be_visible(timeout=TIMEOUT)
    await expect(page.locator("section.sso-settings")).to_be_visible(timeout=TIMEOUT)
    async with page.expect_request_finished(lambda r: r.url.endswith("/pages/practice.js")):
        held.set()
    await page.wait_for_load_state("networkidle")
    await page.evaluate("new Promise((done) => setTimeout(done, 200))")
    await expect(page.get_by_role("heading", name="Admin: Slow Co")).to_be_visible()
    await expect(page.locator("section.sso-settings")).to_be_visible()
    await expect(page.get_by_role("heading", name="Practice a call")).to_have_count(0)
    assert page.url.endswith("#/admin")
    assert await page.title() == "Admin: Slow Co · Sparring"
