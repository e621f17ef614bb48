"""Local speech-to-text on utterances the local voice speaks (real models, no network)."""

import asyncio
import threading

import pytest

from coaching.errors import Overloaded
from coaching.providers.inference import InferencePool
from coaching.providers.stt.local import WhisperSTT
from tests.coaching.test_inference_pool import started
from tests.fixtures.speech import silence, speech_pcm, word_error_rate


@pytest.fixture(scope="module")
def stt():
    pool = InferencePool()
    yield WhisperSTT(pool)
    pool.close()


@pytest.mark.parametrize("text", [
    "What does it cost you when invoices are wrong?",
    "Can we book a meeting on Thursday afternoon with your finance team?",
    "I understand. Many of our customers felt the same way before they saw the payback numbers.",
    "Yes.",
])
async def test_local_stt_transcribes_utterances_within_20_percent_wer(stt, text):
    heard = await stt.transcribe(silence(300) + speech_pcm(text) + silence(200))
    assert word_error_rate(text, heard) <= 0.2, heard


async def test_local_stt_hears_nothing_in_silence(stt):
    assert await stt.transcribe(silence(1500)) == ""


async def test_a_partial_is_skipped_while_every_thread_is_busy_and_the_final_waits_its_turn():
    pool = InferencePool(max_workers=1, max_waiting=2)
    stt = WhisperSTT(pool)
    text = "Can we book a meeting on Thursday afternoon with your finance team?"
    pcm = silence(300) + speech_pcm(text) + silence(200)
    release = threading.Event()
    try:
        busy = asyncio.ensure_future(pool.run(release.wait, 10))
        await started(pool, 1)
        with pytest.raises(Overloaded):
            await stt.transcribe(pcm, partial=True)
        final = asyncio.ensure_future(stt.transcribe(pcm))
        release.set()
        assert await busy is True
        assert word_error_rate(text, await final) <= 0.2
    finally:
        release.set()
        pool.close()
