"""The browser app in real Chromium (Debian's, driven by Playwright), against the running app.

The rep's microphone is a WAV the local TTS speaks, fed by Chromium's fake capture device. Every
page must stay free of console errors; a failing test leaves a screenshot of each of its pages in
`test-artifacts/`."""

from __future__ import annotations

import re
import shutil
import wave
from pathlib import Path

import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fixtures.speech import silence, speech_pcm
from tests.servers import run_asgi

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
SPOKEN = "How does your month end close process work today?"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def microphone_wav(tmp_path_factory) -> Path:
    """Four seconds of quiet (the buyer greets first), the rep's question, then quiet."""
    path = tmp_path_factory.mktemp("mic") / "rep.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(silence(4000) + speech_pcm(SPOKEN) + silence(6000))
    return path


@pytest.fixture(scope="module")
def base_url(module_database_url):
    settings = make_settings(module_database_url, stt_provider="local", tts_provider="local", llm_provider="scripted",
                             hints_llm="off")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


@pytest.fixture(scope="module")
async def playwright_driver():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (.ci/run installs Debian's chromium package)")
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        yield driver


def fake_microphone_args(wav: Path) -> list[str]:
    """Chromium's flags for a microphone that plays `wav` once, granted without a prompt."""
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
async def browser(playwright_driver, microphone_wav):
    browser = await playwright_driver.chromium.launch(executable_path=CHROMIUM,
                                                      args=fake_microphone_args(microphone_wav))
    yield browser
    await browser.close()


@pytest.fixture(scope="module")
async def browser_without_microphone(playwright_driver):
    """No fake permission UI: the microphone prompt is refused, as when a rep clicks Block."""
    browser = await playwright_driver.chromium.launch(executable_path=CHROMIUM,
                                                      args=["--autoplay-policy=no-user-gesture-required"])
    yield browser
    await browser.close()


class Pages:
    """Opens pages that record console errors; screenshots them if the test fails."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opened: list[tuple[str, object]] = []
        self.errors: list[str] = []

    async def open(self, browser, name: str):
        context = await browser.new_context(base_url=self.base_url, viewport={"width": 1200, "height": 900})
        page = await context.new_page()
        page.on("console", lambda m: self.errors.append(f"{name}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"{name}: {e}"))
        self.opened.append((name, page))
        return page


@pytest.fixture
async def pages(request, base_url):
    opened = Pages(base_url)
    yield opened
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        test = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
        for name, page in opened.opened:
            shot = ARTIFACTS / f"{test}-{name}.png"
            try:
                await page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the {name} page: {shot}")
            except Exception as exc:
                print(f"no screenshot of the {name} page: {exc}")
    for _, page in opened.opened:
        await page.context.close()
    if not failed:
        assert opened.errors == [], f"console errors on the pages: {opened.errors}"
