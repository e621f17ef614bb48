"""Uploading a recorded call in real Chromium: pick the file, watch the progress bar move through
its stages, land on the review (recording, transcript with speakers, scorecard), swap the
speakers (the scorecard is made again), and find the upload in History."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.fixtures.recordings import dialogue, mix, write_audio
from tests.gateway.accounts_helpers import signup, unique_email
from tests.web.test_browser import TIMEOUT, log_in

RECORD_STAGES = """() => {
  window.stages = [];
  new MutationObserver(() => {
    const el = document.querySelector('.upload-progress');
    if (el && el.dataset.stage && window.stages[window.stages.length - 1] !== el.dataset.stage)
      window.stages.push(el.dataset.stage);
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-stage'], childList: true });
}"""


async def _rep_on_the_upload_page(pages, browser, base_url, path, name):
    """A synthesized two-voice MP3 call at `path`, and a new rep logged in on the upload page."""
    rep, buyer, _ = dialogue()
    path = write_audio(path, mix(rep, buyer), "mp3")
    async with httpx.AsyncClient(base_url=base_url) as api:
        account = await signup(api, email=unique_email(), name=name)
    page = await pages.open(browser, "rep")
    await log_in(page, account["user"]["email"])
    await page.get_by_role("link", name="Upload a call").click()
    await expect(page.get_by_role("heading", name="Upload a call")).to_be_visible()
    return path, page


async def test_a_rep_uploads_a_call_follows_its_progress_and_reviews_it(pages, browser_without_microphone, base_url,
                                                                       tmp_path):
    path, page = await _rep_on_the_upload_page(pages, browser_without_microphone, base_url,
                                               tmp_path / "dana-call.mp3", "Uma Upload")
    await page.evaluate(RECORD_STAGES)
    await page.locator("#upload-file").set_input_files(str(path))
    await expect(page.locator(".chosen-file")).to_contain_text("dana-call.mp3")
    await page.get_by_label("Title (optional)").fill("Dana discovery")
    await page.get_by_role("button", name="Upload and analyze").click()

    await expect(page.get_by_role("heading", name="Review: Dana discovery")).to_be_visible(timeout=3 * TIMEOUT)
    stages = await page.evaluate("window.stages")
    assert stages[0] == "uploading" and "transcribing" in stages and "scoring" in stages, stages
    await expect(page.locator(".scorecard .overall-value")).to_be_visible(timeout=TIMEOUT)
    await expect(page.locator(".scorecard .dimension")).to_have_count(6)
    await expect(page.locator("audio")).to_have_attribute("src", re.compile(r"/api/uploads/.+/recording"))
    lines = page.locator(".upload-transcript .line")
    await expect(lines.first).to_be_visible()
    await expect(page.locator(".speakers-note")).to_contain_text("guessed from the audio")
    first = await lines.first.get_attribute("data-speaker")
    score_id = await page.locator(".scorecard").get_attribute("data-score-id")

    await page.get_by_role("button", name="Swap rep and buyer").click()
    await expect(lines.first).to_have_attribute("data-speaker", "rep" if first == "buyer" else "buyer")
    await expect(page.locator(".speakers-note")).to_have_text("Speakers confirmed.")
    await expect(page.locator(".scorecard")).not_to_have_attribute("data-score-id", score_id or "", timeout=TIMEOUT)
    await expect(page.locator(".scorecard .overall-value")).to_be_visible(timeout=TIMEOUT)

    await page.get_by_role("link", name="History").click()
    await expect(page.locator(".upload-row")).to_have_count(1)
    await expect(page.locator(".upload-row a")).to_contain_text("Dana discovery")
    await page.locator(".upload-row a").click()
    await expect(page.get_by_role("heading", name="Review: Dana discovery")).to_be_visible()


DROP = """async ([selector, bytes, name]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([new Uint8Array(bytes)], name, { type: "audio/mpeg" }));
  const zone = document.querySelector(selector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
  }
  return transfer;
}"""


async def test_a_recording_dropped_on_the_drop_zone_is_uploaded_and_reviewed(pages, browser_without_microphone,
                                                                           base_url, tmp_path):
    path, page = await _rep_on_the_upload_page(pages, browser_without_microphone, base_url,
                                               tmp_path / "dropped-call.mp3", "Drew Dropper")

    transfer = await page.evaluate_handle(DROP, [".drop-zone", list(path.read_bytes()), "dropped-call.mp3"])
    await transfer.dispose()
    await expect(page.locator(".chosen-file")).to_contain_text("dropped-call.mp3")
    await expect(page.locator(".drop-zone")).not_to_have_class(re.compile(r"\bover\b"))
    await page.get_by_label("Title (optional)").fill("Dropped discovery")
    await page.get_by_role("button", name="Upload and analyze").click()

    await expect(page.get_by_role("heading", name="Review: Dropped discovery")).to_be_visible(timeout=3 * TIMEOUT)
    await expect(page.locator(".scorecard .overall-value")).to_be_visible(timeout=TIMEOUT)
    await expect(page.locator(".upload-transcript .line").first).to_be_visible()

    await page.get_by_role("link", name="Progress").click()
    row = page.locator(".trend-table tbody tr")
    await expect(row).to_have_count(1)
    await expect(row.locator(".badge.upload")).to_have_text("upload")
    await expect(row).to_contain_text("Dropped discovery")
    await page.get_by_text("Show the scores as a table").click()
    await row.locator("a").click()
    await expect(page.get_by_role("heading", name="Review: Dropped discovery")).to_be_visible()
