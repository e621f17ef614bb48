"""One live call's conversation loop: VAD -> STT -> persona brain -> TTS, with barge-in.

Framework-free: audio and text come in through `feed_audio` / `rep_text`; everything that happens
leaves through the call's `CallSink`: events (seq 0: the call's session log numbers them), persona
audio, the rep's resampled audio (for the recording), activity (for the idle timeout) and the end
of the call when the persona ends it.

Events:
    transcript.partial {speaker, text, start_ms}: while the rep speaks, about every 500 ms.
    transcript.final {speaker, text, start_ms, end_ms, segment_id}: each rep turn, and what the
        persona actually said (cut at a barge-in).
    persona.reply.delta / persona.reply {reply_id, text}: the reply as it is generated, then whole.
    persona.audio.start / persona.audio.end {reply_id, interrupted}: around the persona's audio.
    error {code, message}: a provider failed; the call goes on.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import msgspec

from coaching.audio.pcm import PIPELINE_RATE, Resampler, frame_bytes
from coaching.audio.vad import TurnDetector
from coaching.brains.base import Brain, Turn
from coaching.errors import Overloaded, ProviderUnavailable, SparringError
from coaching.events import (
    ErrorEvent,
    PersonaAudioEnd,
    PersonaAudioStart,
    PersonaReply,
    PersonaReplyDelta,
    ServerMessage,
    TranscriptFinal,
    TranscriptPartial,
)
from coaching.persona import Persona
from coaching.providers.stt.base import SpeechToText
from coaching.providers.tts.base import TextToSpeech

__all__ = ["OUTPUT_RATE", "CallOptions", "CallPipeline", "CallSink", "spoken_prefix"]

OUTPUT_RATE = 24000  # persona audio to clients: 24 kHz mono PCM16
_CHUNK_MS = 100
_SENTENCE = re.compile(r"(.+?[.!?]+)(?:\s+|$)", re.S)
# The rep has paused this long inside a turn: transcribe what they said so far, speculatively, so
# the final is (usually) ready when the turn ends instead of starting then.
_SPECULATE_AFTER_MS = 200
_FIRST_CLAUSE_CHARS = 60
log = logging.getLogger(__name__)


class CallOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Args:
        silence_ms: silence that ends the rep's turn.
        onset_ms: speech that counts as the rep starting to talk (and barging in).
        partial_interval_ms: new speech between two partial transcripts.
        audio_lead_ms: how far persona audio may run ahead of real time on the wire.
        preroll_ms: audio kept from before speech onset, so first syllables are not lost.
    """

    silence_ms: int = 500
    onset_ms: int = 60
    partial_interval_ms: int = 500
    audio_lead_ms: int = 300
    preroll_ms: int = 300


def first_audio_chunks(sentence: str) -> list[str]:
    """Splits a long opening sentence at its first comma, so its first words are synthesized
    (and heard) sooner."""
    cut = sentence.find(", ", 20)
    if len(sentence) > _FIRST_CLAUSE_CHARS and 0 < cut < len(sentence) - 15:
        return [sentence[: cut + 1], sentence[cut + 2:]]
    return [sentence]


def spoken_prefix(sentences: Sequence[tuple[str, float]], heard_ms: float) -> str:
    """What the listener heard of a reply after `heard_ms` of its audio: whole sentences, then the
    words of the current one in proportion to how much of its audio played."""
    spoken: list[str] = []
    for text, audio_ms in sentences:
        if heard_ms >= audio_ms:
            spoken.append(text)
            heard_ms -= audio_ms
            continue
        words = text.split()
        count = int(len(words) * heard_ms / audio_ms) if audio_ms > 0 else 0
        if count:
            spoken.append(" ".join(words[:count]))
        break
    return " ".join(spoken).strip()


class _Speech:
    """The reply being spoken: its sentences with their audio lengths, and when audio began."""

    def __init__(self, reply_id: str) -> None:
        self.reply_id = reply_id
        self.text = ""
        self.sentences: list[tuple[str, float]] = []
        self.audio_started_at: float | None = None
        self.reply_sent = False


class CallSink(Protocol):
    """Where a pipeline reports: the call's owner."""

    async def emit(self, message: ServerMessage) -> None:
        """An event (seq 0, numbered by the owner) or an ephemeral message (a partial)."""

    async def send_audio(self, chunk: bytes) -> None:
        """Persona audio, 24 kHz mono PCM16, paced near real time."""

    async def persona_ended(self, reason: str) -> None:
        """The persona ended the conversation; the owner ends the call (from a task of its own)."""

    def rep_audio(self, pcm16k: bytes) -> None:
        """The rep's audio, resampled to 16 kHz mono PCM16 (for the recording)."""

    def activity(self) -> None:
        """The rep is speaking or typing (the idle timeout restarts)."""


class CallPipeline:
    """Args:
        session_id: the call.
        persona: who the rep talks to.
        brain, stt, tts: the persona's brain and the speech providers.
        sink: where everything the call produces goes.
        history: the conversation so far (a call rebuilt from its log).
        options: timing of turn detection and audio.
        call_started_at: the call's time zero on `clock` (a rebuilt call keeps its original zero).
        clock: monotonic seconds.
    """

    def __init__(
        self, *, session_id: str, persona: Persona, brain: Brain, stt: SpeechToText, tts: TextToSpeech,
        sink: CallSink, history: Sequence[Turn] = (), options: CallOptions | None = None,
        call_started_at: float | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session_id, self.persona = session_id, persona
        self._brain, self._stt, self._tts = brain, stt, tts
        self._sink = sink
        options = options or CallOptions()
        self._options, self._clock = options, clock
        self._started_at = call_started_at if call_started_at is not None else clock()
        self.history: list[Turn] = list(history)
        self._vad = TurnDetector(silence_ms=options.silence_ms, onset_ms=options.onset_ms)
        self._resampler: Resampler | None = None
        self._preroll = bytearray()
        self._utterance: bytearray | None = None
        self._utterance_start_ms = 0
        self._partial_at = 0
        self._partial_task: asyncio.Task | None = None
        self._speculation: tuple[int, asyncio.Future] | None = None
        self._turns: asyncio.Queue = asyncio.Queue()
        self._reply_task: asyncio.Task | None = None
        self._speech: _Speech | None = None
        self._worker: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._segment = sum(1 for _ in self.history)
        self._tts_resampler_rate = 0

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, *, input_rate_hz: int, greet: bool) -> None:
        """Begins the call; with `greet`, the persona opens with its opening line."""
        self._resampler = Resampler(input_rate_hz, PIPELINE_RATE)
        self._worker = asyncio.create_task(self._run_turns(), name=f"call-turns-{self.session_id}")
        if greet:
            self._turns.put_nowait(("greeting", None))

    def set_input_rate(self, input_rate_hz: int) -> None:
        """A resumed client may declare another sample rate."""
        if self._resampler is None or self._resampler.from_rate_hz != input_rate_hz:
            self._resampler = Resampler(input_rate_hz, PIPELINE_RATE)

    async def close(self) -> None:
        for task in [self._worker, self._reply_task, self._partial_task, *self._tasks]:
            if task is not None and not task.done():
                task.cancel()
        for task in [self._worker, self._reply_task, self._partial_task, *self._tasks]:
            if task is not None:
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass

    def now_ms(self) -> int:
        return int((self._clock() - self._started_at) * 1000)

    @property
    def persona_speaking(self) -> bool:
        return self._reply_task is not None and not self._reply_task.done()

    # --- input ------------------------------------------------------------------------------

    def feed_audio(self, pcm: bytes) -> None:
        """One frame of the rep's audio in the format declared at start."""
        if self._resampler is None:
            raise SparringError("the call has not started")
        pcm16k = self._resampler.feed(pcm)
        self._sink.rep_audio(pcm16k)
        lag_ms_before = len(pcm16k) // 32
        for kind, _ in self._vad.feed(pcm16k):
            if kind == "speech_start":
                self._interrupt()
                self._utterance = bytearray(self._preroll)
                self._utterance_start_ms = max(0, self.now_ms() - lag_ms_before - self._options.preroll_ms)
                self._partial_at = len(self._utterance)
            elif kind == "speech_end" and self._utterance is not None:
                utterance, start_ms = bytes(self._utterance), self._utterance_start_ms
                speculation, self._speculation = self._speculation, None
                self._utterance = None
                self._queue_turn(self._final(utterance, start_ms, self.now_ms() - self._options.silence_ms,
                                             speculation[1] if speculation else None))
        if self._utterance is not None:
            self._utterance += pcm16k
            silent_ms = self._vad.silent_ms
            if silent_ms == 0:
                self._sink.activity()
                if self._speculation is not None:  # the rep went on talking: that guess is stale
                    self._speculation[1].add_done_callback(_ignore_result)
                    self._speculation = None
                self._maybe_partial()
            elif silent_ms >= _SPECULATE_AFTER_MS and self._stt.supports_partials and self._speculation is None:
                voiced_end = len(self._utterance) - silent_ms * PIPELINE_RATE * 2 // 1000
                self._speculation = (voiced_end, asyncio.ensure_future(
                    self._stt.transcribe(bytes(self._utterance[:voiced_end]))))
        self._preroll += pcm16k
        del self._preroll[: max(0, len(self._preroll) - frame_bytes(PIPELINE_RATE, self._options.preroll_ms))]

    def rep_text(self, text: str) -> None:
        """A typed rep turn: the same path as speech."""
        self._sink.activity()
        self._interrupt()
        now = self.now_ms()

        async def typed() -> tuple[str, int, int]:
            return text.strip(), now, now

        self._queue_turn(typed())

    def _queue_turn(self, pending: Awaitable[tuple[str, int, int]]) -> None:
        task = asyncio.ensure_future(pending)
        self._turns.put_nowait(("rep", task))

    def _maybe_partial(self) -> None:
        interval = frame_bytes(PIPELINE_RATE, self._options.partial_interval_ms)
        if (not self._stt.supports_partials or self._utterance is None
                or len(self._utterance) - self._partial_at < interval
                or (self._partial_task is not None and not self._partial_task.done())):
            return
        self._partial_at = len(self._utterance)
        self._partial_task = asyncio.create_task(self._partial(bytes(self._utterance), self._utterance_start_ms))

    async def _partial(self, pcm: bytes, start_ms: int) -> None:
        try:
            text = await self._stt.transcribe(pcm)
        except (Overloaded, ProviderUnavailable):
            return  # a skipped partial costs nothing; the final will say what failed
        if text and self._utterance is not None:
            await self._emit(TranscriptPartial(session_id=self.session_id, ts=0, speaker="rep", text=text,
                                               start_ms=start_ms))

    async def _final(self, pcm: bytes, start_ms: int, end_ms: int,
                     speculation: asyncio.Future | None = None) -> tuple[str, int, int]:
        try:
            if speculation is not None:
                # Started when the rep paused; nothing was said since, so it is the final.
                return await speculation, start_ms, end_ms
            return await self._stt.transcribe(pcm), start_ms, end_ms
        except (Overloaded, ProviderUnavailable) as exc:
            await self._error(exc)
            return "", start_ms, end_ms

    # --- output -----------------------------------------------------------------------------

    async def _emit(self, message: ServerMessage) -> None:
        await self._sink.emit(msgspec.structs.replace(message, ts=int(time.time() * 1000)))

    async def _error(self, exc: SparringError) -> None:
        code = "overloaded" if isinstance(exc, Overloaded) else "provider_unavailable"
        await self._emit(ErrorEvent(session_id=self.session_id, ts=0, code=code, message=str(exc)))

    def _next_segment(self, speaker: str) -> str:
        self._segment += 1
        return f"{speaker}-{self._segment}"

    async def _run_turns(self) -> None:
        while True:
            kind, pending = await self._turns.get()
            if kind == "greeting":
                await self._reply_and_wait(fixed=self.persona.opening_line)
                continue
            text, start_ms, end_ms = await pending
            if not text:
                continue
            await self._emit(TranscriptFinal(
                session_id=self.session_id, ts=0, speaker="rep", text=text, start_ms=start_ms,
                end_ms=max(end_ms, start_ms), segment_id=self._next_segment("rep")))
            self.history.append(Turn("rep", text))
            if await self._reply_and_wait():
                await self._sink.persona_ended("persona_ended")
                return

    async def _reply_and_wait(self, fixed: str | None = None) -> bool:
        """Runs one reply to completion (or interruption); True when the persona ends the call."""
        result: dict[str, bool] = {}
        self._reply_task = asyncio.create_task(self._reply(fixed, result))
        await asyncio.wait([self._reply_task])
        return result.get("end_call", False)

    def _interrupt(self) -> None:
        if self._reply_task is not None and not self._reply_task.done():
            self._reply_task.cancel()

    async def _reply(self, fixed: str | None, result: dict[str, bool]) -> None:
        speech = _Speech(uuid.uuid4().hex[:12])
        self._speech = speech
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        speaker = asyncio.create_task(self._speak(speech, sentences))
        reply = None
        queued = 0
        try:
            buffered = ""
            if fixed is not None:
                deltas = [fixed]
            else:
                reply = self._brain.respond(self.persona, self.history)
                deltas = reply
            async for delta in _aiter(deltas):
                speech.text += delta
                await self._emit(PersonaReplyDelta(session_id=self.session_id, ts=0, reply_id=speech.reply_id, text=delta))
                buffered += delta
                while (match := _SENTENCE.match(buffered)) is not None:
                    queued = self._queue_speech(sentences, match.group(1).strip(), queued)
                    buffered = buffered[match.end():]
            if buffered.strip():
                self._queue_speech(sentences, buffered.strip(), queued)
            sentences.put_nowait(None)
            speech.reply_sent = True
            await self._emit(PersonaReply(session_id=self.session_id, ts=0, reply_id=speech.reply_id, text=speech.text.strip()))
            await speaker
            spoken = speech.text.strip()
            if spoken:
                self.history.append(Turn("persona", spoken))
                await self._emit(TranscriptFinal(
                    session_id=self.session_id, ts=0, speaker="persona", text=spoken,
                    start_ms=self._audio_start_ms(speech), end_ms=self.now_ms(),
                    segment_id=self._next_segment("persona")))
            result["end_call"] = bool(reply is not None and reply.end_call)
        except asyncio.CancelledError:
            speaker.cancel()
            await _quietly(speaker)
            await self._interrupted(speech)
            raise
        except SparringError as exc:
            speaker.cancel()
            await _quietly(speaker)
            await self._error(exc)
        finally:
            self._speech = None

    @staticmethod
    def _queue_speech(sentences: asyncio.Queue, sentence: str, queued: int) -> int:
        for chunk in first_audio_chunks(sentence) if queued == 0 else [sentence]:
            sentences.put_nowait(chunk)
        return queued + 1

    async def _interrupted(self, speech: _Speech) -> None:
        heard_ms = 0.0
        if speech.audio_started_at is not None:
            heard_ms = (self._clock() - speech.audio_started_at) * 1000
            await self._emit(PersonaAudioEnd(session_id=self.session_id, ts=0, reply_id=speech.reply_id, interrupted=True))
        if speech.text and not speech.reply_sent:
            await self._emit(PersonaReply(session_id=self.session_id, ts=0, reply_id=speech.reply_id, text=speech.text.strip()))
        spoken = spoken_prefix(speech.sentences, heard_ms)
        if spoken:
            self.history.append(Turn("persona", spoken))
            await self._emit(TranscriptFinal(
                session_id=self.session_id, ts=0, speaker="persona", text=spoken,
                start_ms=self._audio_start_ms(speech), end_ms=self.now_ms(), segment_id=self._next_segment("persona")))

    def _audio_start_ms(self, speech: _Speech) -> int:
        if speech.audio_started_at is None:
            return self.now_ms()
        return int((speech.audio_started_at - self._started_at) * 1000)

    async def _speak(self, speech: _Speech, sentences: asyncio.Queue[str | None]) -> None:
        """Synthesizes sentences in order and sends their audio paced near real time."""
        chunk_bytes = frame_bytes(OUTPUT_RATE, _CHUNK_MS)
        sent_ms = 0.0
        try:
            while (sentence := await sentences.get()) is not None:
                resampler = Resampler(self._tts.sample_rate_hz, OUTPUT_RATE)
                # The sentence's audio length grows as it is synthesized; a barge-in measures
                # what was heard against it.
                speech.sentences.append((sentence, 0.0))
                audio = bytearray()
                async for pcm in self._tts.synthesize(sentence, self.persona.voices):
                    produced = resampler.feed(pcm)
                    audio += produced
                    speech.sentences[-1] = (sentence, speech.sentences[-1][1] + len(produced) / (OUTPUT_RATE * 2) * 1000)
                    while len(audio) >= chunk_bytes:
                        sent_ms = await self._send_paced(speech, bytes(audio[:chunk_bytes]), sent_ms)
                        del audio[:chunk_bytes]
                audio += resampler.feed(b"", last=True)
                if audio:
                    sent_ms = await self._send_paced(speech, bytes(audio), sent_ms)
        except SparringError as exc:
            await self._error(exc)
        if speech.audio_started_at is not None:
            # Wait out the audio still playing on the client before saying it ended.
            remaining = speech.audio_started_at + sent_ms / 1000 - self._clock()
            if remaining > 0:
                await asyncio.sleep(remaining)
            await self._emit(PersonaAudioEnd(session_id=self.session_id, ts=0, reply_id=speech.reply_id, interrupted=False))

    async def _send_paced(self, speech: _Speech, chunk: bytes, sent_ms: float) -> float:
        if speech.audio_started_at is None:
            speech.audio_started_at = self._clock()
            await self._emit(PersonaAudioStart(session_id=self.session_id, ts=0, reply_id=speech.reply_id))
        ahead_s = speech.audio_started_at + (sent_ms - self._options.audio_lead_ms) / 1000 - self._clock()
        if ahead_s > 0:
            await asyncio.sleep(ahead_s)
        await self._sink.send_audio(chunk)
        return sent_ms + len(chunk) / (OUTPUT_RATE * 2) * 1000


async def _aiter(source):
    if hasattr(source, "__aiter__"):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item


def _ignore_result(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so an abandoned guess that failed is not reported


async def _quietly(task: asyncio.Task) -> None:
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass
