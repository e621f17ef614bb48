"""One call over WebRTC in real Chromium (fake microphone from a WAV), against the running app
with WebRTC on and ICE on loopback only: the page says which transport it uses and shows the
rep's spoken line and the buyer's answer."""

import httpx
import pytest
from playwright.async_api import expect

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.gateway.accounts_helpers import signup, unique_email
from tests.servers import run_asgi
from tests.web.conftest import CHROMIUM, fake_microphone_args
from tests.web.test_browser import TIMEOUT, log_in


@pytest.fixture(scope="module")
def base_url(module_database_url):
    settings = make_settings(module_database_url, stt_provider="local", tts_provider="local", llm_provider="scripted",
                             hints_llm="off", webrtc_calls="true", webrtc_host_addresses="127.0.0.1")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


@pytest.fixture(scope="module")
async def browser(playwright_driver, microphone_wav):
    browser = await playwright_driver.chromium.launch(executable_path=CHROMIUM, args=[
        *fake_microphone_args(microphone_wav),
        # Loopback host candidates (Chromium leaves them out by default); the gateway pairs only those.
        "--allow-loopback-in-peer-connection",
    ])
    yield browser
    await browser.close()


async def test_a_call_over_webrtc_shows_the_transport_and_the_spoken_transcript(pages, browser, base_url):
    async with httpx.AsyncClient(base_url=base_url) as api:
        rep = await signup(api, email=unique_email())
    page = await pages.open(browser, "rep")
    await log_in(page, rep["user"]["email"])
    await page.get_by_role("button", name="Start call").click()
    await expect(page.get_by_role("status")).to_have_text("Live", timeout=TIMEOUT)
    await expect(page.get_by_label("Connection")).to_have_text("via WebRTC")
    # The microphone (the WAV, on the Opus track) asks about the month end close; the buyer answers.
    await expect(page.locator(".line.final.rep .text").first).to_contain_text("close", timeout=TIMEOUT,
                                                                             ignore_case=True)
    await expect(page.locator(".line.final.persona")).to_have_count(2, timeout=TIMEOUT)
    assert await page.evaluate("window.sparring.link.transport") == "webrtc", "the call stayed on WebRTC"
    await expect(page.get_by_label("Connection")).to_have_text("via WebRTC")
    await page.get_by_role("button", name="End call").click()
    await expect(page.get_by_role("status")).to_have_text("Call ended", timeout=TIMEOUT)


async def test_without_rtcpeerconnection_the_page_falls_back_to_the_live_socket(pages, browser, base_url):
    async with httpx.AsyncClient(base_url=base_url) as api:
        rep = await signup(api, email=unique_email())
    page = await pages.open(browser, "rep")
    await page.add_init_script("delete window.RTCPeerConnection;")  # a browser without WebRTC
    await log_in(page, rep["user"]["email"])
    await page.get_by_role("button", name="Start call").click()
    await expect(page.get_by_role("status")).to_have_text("Live", timeout=TIMEOUT)
    await expect(page.get_by_label("Connection")).to_have_text("via WebSocket")
    assert await page.evaluate("window.sparring.live.ws instanceof WebSocket")
    await expect(page.locator(".line.final.persona")).to_have_count(1, timeout=TIMEOUT)  # the greeting
    await page.get_by_role("button", name="End call").click()
    await expect(page.get_by_role("status")).to_have_text("Call ended", timeout=TIMEOUT)
