"""The persona's speech: a reply cut into sentences, voiced and paced out, and how much of it was heard."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence

from coaching.audio.pcm import Resampler, frame_bytes
from coaching.persona import Voices
from coaching.providers.tts.base import TextToSpeech

__all__ = ["OUTPUT_RATE", "SentenceSplitter", "Speech", "Voice", "first_audio_chunks", "spoken_prefix"]

OUTPUT_RATE = 24000  # persona audio to clients: 24 kHz mono PCM16
_CHUNK_MS = 100
_SENTENCE = re.compile(r"(.+?[.!?]+)(?:\s+|$)", re.S)
_FIRST_CLAUSE_CHARS = 60
_SPEECH_MS_PER_CHAR = 65.0  # about 15 characters a second


class Speech:
    """The reply being spoken: its sentences with their audio lengths, when audio began and how
    much of it was sent."""

    def __init__(self, reply_id: str) -> None:
        self.reply_id = reply_id
        self.text = ""
        self.sentences: list[tuple[str, float]] = []
        self.audio_started_at: float | None = None
        self.sent_ms = 0.0
        self.reply_sent = False
        self.voicing = False  # the last of `sentences` is still being synthesized

    def heard(self, now: float) -> str:
        """What the listener has heard of the reply by `now` (the clock of `audio_started_at`): no
        more than the audio sent, so a wait for the provider is not counted as speech."""
        heard_ms = 0.0 if self.audio_started_at is None else min((now - self.audio_started_at) * 1000, self.sent_ms)
        return spoken_prefix(self.sentences, heard_ms, last_open=self.voicing)


class SentenceSplitter:
    """Cuts a reply's streamed text into the pieces to synthesize, in order: each sentence as it
    completes (the first one split at its first clause), then whatever is left at the end."""

    def __init__(self) -> None:
        self._buffered = ""
        self._sentences = 0

    def feed(self, delta: str) -> list[str]:
        self._buffered += delta
        pieces: list[str] = []
        while (match := _SENTENCE.match(self._buffered)) is not None:
            pieces += self._pieces(match.group(1).strip())
            self._buffered = self._buffered[match.end():]
        return pieces

    def flush(self) -> list[str]:
        rest, self._buffered = self._buffered.strip(), ""
        return self._pieces(rest) if rest else []

    def _pieces(self, sentence: str) -> list[str]:
        self._sentences += 1
        return first_audio_chunks(sentence) if self._sentences == 1 else [sentence]


class Voice:
    """Args:
        tts, voices: what synthesizes the persona's speech, and in which voice.
        send_audio: where the audio goes (24 kHz mono PCM16).
        clock: monotonic seconds.
        lead_ms: how far the audio may run ahead of real time.
    """

    def __init__(self, *, tts: TextToSpeech, voices: Voices, send_audio: Callable[[bytes], Awaitable[None]],
                 clock: Callable[[], float], lead_ms: int) -> None:
        self._tts, self._voices, self._send_audio = tts, voices, send_audio
        self._clock, self._lead_ms = clock, lead_ms

    async def speak(self, speech: Speech, sentences: asyncio.Queue[str | None],
                    started: Callable[[], Awaitable[None]]) -> None:
        """Synthesizes sentences in order, up to a None, and sends their audio paced near real time;
        `started` runs as the first audio goes out.

        The reply's first piece is synthesized alone, so it is heard soonest. With a streaming
        provider every later request takes the sentences queued by then along: one request for
        the rest of a reply that is already written, not one a sentence, so the voice does not
        wait for a new request at every sentence boundary."""
        chunk_bytes = frame_bytes(OUTPUT_RATE, _CHUNK_MS)
        last = False
        while not last and (sentence := await sentences.get()) is not None:
            if self._tts.streams and speech.sentences:
                sentence, last = _with_queued(sentence, sentences)
            resampler = Resampler(self._tts.sample_rate_hz, OUTPUT_RATE)
            # The sentence's audio length grows as it is synthesized; a barge-in measures
            # what was heard against it.
            speech.sentences.append((sentence, 0.0))
            speech.voicing = True
            audio = bytearray()
            async for pcm in self._tts.synthesize(sentence, self._voices):
                produced = resampler.feed(pcm)
                audio += produced
                speech.sentences[-1] = (sentence, speech.sentences[-1][1] + _audio_ms(produced))
                while len(audio) >= chunk_bytes:
                    await self._send_paced(speech, bytes(audio[:chunk_bytes]), started)
                    del audio[:chunk_bytes]
            produced = resampler.feed(b"", last=True)
            audio += produced
            speech.sentences[-1] = (sentence, speech.sentences[-1][1] + _audio_ms(produced))
            speech.voicing = False
            if audio:
                await self._send_paced(speech, bytes(audio), started)

    async def _send_paced(self, speech: Speech, chunk: bytes, started: Callable[[], Awaitable[None]]) -> None:
        if speech.audio_started_at is None:
            speech.audio_started_at = self._clock()
            await started()
        ahead_s = speech.audio_started_at + (speech.sent_ms - self._lead_ms) / 1000 - self._clock()
        if ahead_s > 0:
            await asyncio.sleep(ahead_s)
        await self._send_audio(chunk)
        speech.sent_ms += _audio_ms(chunk)


def _with_queued(sentence: str, sentences: asyncio.Queue[str | None]) -> tuple[str, bool]:
    """The sentence joined by those already queued behind it, and whether the reply's end (None) was among them."""
    pieces = [sentence]
    while not sentences.empty():
        queued = sentences.get_nowait()
        if queued is None:
            return " ".join(pieces), True
        pieces.append(queued)
    return " ".join(pieces), False


def first_audio_chunks(sentence: str) -> list[str]:
    """Splits a long opening sentence at its first comma, so its first words are synthesized
    (and heard) sooner."""
    cut = sentence.find(", ", 20)
    if len(sentence) > _FIRST_CLAUSE_CHARS and 0 < cut < len(sentence) - 15:
        return [sentence[: cut + 1], sentence[cut + 2:]]
    return [sentence]


def spoken_prefix(sentences: Sequence[tuple[str, float]], heard_ms: float, *, last_open: bool = False) -> str:
    """What the listener heard of a reply after `heard_ms` of its audio: whole texts, then the
    words of the current one in proportion to how much of its audio played.

    `last_open`: the last text is still being synthesized, so its audio so far is not its length;
    it is taken to last as long a character as the finished texts did (about 15 characters a
    second before any has finished), and is never heard whole before its audio is all there."""
    spoken: list[str] = []
    for i, (text, audio_ms) in enumerate(sentences):
        if last_open and i == len(sentences) - 1:
            audio_ms = max(audio_ms, len(text) * _ms_per_char(sentences[:i]))
        elif heard_ms >= audio_ms:
            spoken.append(text)
            heard_ms -= audio_ms
            continue
        words = text.split()
        count = min(len(words), int(len(words) * heard_ms / audio_ms)) if audio_ms > 0 else 0
        if count:
            spoken.append(" ".join(words[:count]))
        break
    return " ".join(spoken).strip()


def _ms_per_char(finished: Sequence[tuple[str, float]]) -> float:
    chars = sum(len(text) for text, _ in finished)
    audio_ms = sum(ms for _, ms in finished)
    return audio_ms / chars if chars and audio_ms > 0 else _SPEECH_MS_PER_CHAR


def _audio_ms(pcm: bytes) -> float:
    return len(pcm) / (OUTPUT_RATE * 2) * 1000
