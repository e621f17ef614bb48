"""The persona's voice: which texts go to the speech provider, and what a listener heard of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from coaching.persona import Voices
from coaching.speech import OUTPUT_RATE, Speech, Voice, spoken_prefix

FIRST, SECOND, THIRD, FOURTH = ("Dana Whitfield.", "I have a few minutes.", "What is this about?",
                                "Go on, then.")


class RecordingTTS:
    """Says every text as 10 ms of audio a character, and records the texts it was asked for.
    `between` runs after each text's audio, before the next text is asked for."""

    sample_rate_hz = OUTPUT_RATE

    def __init__(self, *, streams: bool, between: Callable[[int], None] | None = None) -> None:
        self.streams = streams
        self.texts: list[str] = []
        self._between = between

    async def synthesize(self, text: str, voices: Voices) -> AsyncIterator[bytes]:
        self.texts.append(text)
        yield b"\0\0" * (OUTPUT_RATE // 100) * len(text)
        if self._between is not None:
            self._between(len(self.texts))


def queue_of(*items: str | None) -> asyncio.Queue[str | None]:
    sentences: asyncio.Queue[str | None] = asyncio.Queue()
    for item in items:
        sentences.put_nowait(item)
    return sentences


async def speak(tts: RecordingTTS, sentences: asyncio.Queue[str | None],
                speech: Speech | None = None) -> tuple[Speech, bytearray]:
    sent = bytearray()

    async def send_audio(chunk: bytes) -> None:
        sent.extend(chunk)

    async def started() -> None:
        pass

    speech = Speech("r1") if speech is None else speech
    # A lead far beyond the reply: nothing waits for real time, so the test sees every request at once.
    voice = Voice(tts=tts, voices=Voices(), send_audio=send_audio, clock=time.monotonic, lead_ms=10**9)
    await asyncio.wait_for(voice.speak(speech, sentences, started), 10)
    return speech, sent


async def test_a_streaming_provider_is_asked_for_the_first_sentence_alone_then_for_the_rest_at_once():
    tts = RecordingTTS(streams=True)
    speech, sent = await speak(tts, queue_of(FIRST, SECOND, THIRD, None))
    assert tts.texts == [FIRST, f"{SECOND} {THIRD}"]
    assert len(sent) == 2 * (OUTPUT_RATE // 100) * sum(map(len, tts.texts)), "every text's audio went out"


async def test_a_provider_that_returns_whole_sentences_is_asked_for_one_sentence_at_a_time():
    tts = RecordingTTS(streams=False)
    await speak(tts, queue_of(FIRST, SECOND, THIRD, None))
    assert tts.texts == [FIRST, SECOND, THIRD]


async def test_sentences_written_while_one_is_voiced_go_together_in_the_next_request():
    sentences = queue_of(FIRST)

    def more(asked: int) -> None:
        # The brain goes on writing while the voice speaks: two sentences during the first
        # request, the last one and the reply's end during the second.
        if asked == 1:
            sentences.put_nowait(SECOND)
            sentences.put_nowait(THIRD)
        elif asked == 2:
            sentences.put_nowait(FOURTH)
            sentences.put_nowait(None)

    tts = RecordingTTS(streams=True, between=more)
    await speak(tts, sentences)
    assert tts.texts == [FIRST, f"{SECOND} {THIRD}", FOURTH]


async def test_a_barge_in_hears_the_words_of_the_combined_request_in_proportion_to_its_audio():
    tts = RecordingTTS(streams=True)
    speech, _ = await speak(tts, queue_of(FIRST, SECOND, THIRD, None))
    assert speech.audio_started_at is not None
    rest = f"{SECOND} {THIRD}"
    assert [text for text, _ in speech.sentences] == [FIRST, rest]
    # Three quarters into the combined request's audio: three quarters of its nine words, though
    # "I have a few minutes." alone is more than half of that audio.
    heard = speech.heard(speech.audio_started_at + (10 * len(FIRST) + 0.75 * 10 * len(rest)) / 1000)
    assert heard == f"{FIRST} I have a few minutes. What"


async def test_a_barge_in_while_the_provider_has_not_yet_answered_hears_none_of_the_words_still_to_come():
    answer = asyncio.Event()

    class SlowAfterTheFirst(RecordingTTS):
        async def synthesize(self, text: str, voices: Voices) -> AsyncIterator[bytes]:
            self.texts.append(text)
            if len(self.texts) > 1:
                await answer.wait()
            yield b"\0\0" * (OUTPUT_RATE // 100) * len(text)

    tts = SlowAfterTheFirst(streams=True)
    speech = Speech("r1")
    speaking = asyncio.create_task(speak(tts, queue_of(FIRST, SECOND, THIRD, None), speech))
    while len(tts.texts) < 2:
        await asyncio.sleep(0.001)
    assert speech.audio_started_at is not None
    # Long after the first piece ended: the listener has heard it, and nothing of what is still being synthesized.
    assert speech.heard(speech.audio_started_at + 60) == FIRST
    answer.set()
    await speaking
    assert speech.heard(speech.audio_started_at + 60) == f"{FIRST} {SECOND} {THIRD}"


def test_a_text_still_being_synthesized_is_heard_against_its_expected_length_not_its_audio_so_far():
    # The first text took 100 ms a character; the second has 200 ms of audio so far.
    sentences = [("One two.", 800.0), ("Three four five six.", 200.0)]
    assert spoken_prefix(sentences, 800 + 200, last_open=True) == "One two."
    assert spoken_prefix(sentences, 800 + 1000, last_open=True) == "One two. Three four"
    assert spoken_prefix(sentences, 800 + 200) == "One two. Three four five six."  # once its audio is all there
