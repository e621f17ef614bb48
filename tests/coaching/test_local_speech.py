"""Local speech-to-text on utterances the local voice speaks (real models, no network)."""

import pytest

from coaching.providers.inference import InferencePool
from coaching.providers.stt.local import WhisperSTT
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
