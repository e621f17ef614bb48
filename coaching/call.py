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
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable, Sequence
from typing import Protocol

import msgspec

from coaching.audio.pcm import PIPELINE_RATE, Resampler, frame_bytes
from coaching.audio.vad import TurnDetector
from coaching.brains.base import Brain, Reply, Turn
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
from coaching.speech import OUTPUT_RATE, SentenceSplitter, Speech, Voice

__all__ = ["OUTPUT_RATE", "CallOptions", "CallPipeline", "CallSink"]

# The rep has paused this long inside a turn: transcribe what they said so far, speculatively, so
# the final is (usually) ready when the turn ends instead of starting then.
_SPECULATE_AFTER_MS = 200
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
        self._brain, self._stt = brain, stt
        self._sink = sink
        options = options or CallOptions()
        self._options, self._clock = options, clock
        self._voice = Voice(tts=tts, voices=persona.voices, send_audio=sink.send_audio, clock=clock,
                            lead_ms=options.audio_lead_ms)
        self._started_at = call_started_at if call_started_at is not None else clock()
        self.history: list[Turn] = list(history)
        self._vad = TurnDetector(silence_ms=options.silence_ms, onset_ms=options.onset_ms)
        self._resampler: Resampler | None = None
        self._preroll = bytearray()
        self._utterance: bytearray | None = None
        self._utterance_start_ms = 0
        self._partial_at = 0
        self._partial_task: asyncio.Task[None] | None = None
        self._speculation: tuple[int, asyncio.Future[str]] | None = None
        # A rep turn being transcribed, or None for the persona's greeting.
        self._turns: asyncio.Queue[asyncio.Future[tuple[str, int, int]] | None] = asyncio.Queue()
        self._reply_task: asyncio.Task[None] | None = None
        self._speech: Speech | None = None
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._segment = sum(1 for _ in self.history)
        self._tts_resampler_rate = 0

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, *, input_rate_hz: int, greet: bool) -> None:
        """Begins the call; with `greet`, the persona opens with its opening line."""
        self._resampler = Resampler(input_rate_hz, PIPELINE_RATE)
        self._worker = asyncio.create_task(self._run_turns(), name=f"call-turns-{self.session_id}")
        if greet:
            self._turns.put_nowait(None)

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
        self._turns.put_nowait(task)

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
            text = await self._stt.transcribe(pcm, partial=True)
        except (Overloaded, ProviderUnavailable):
            return  # a skipped partial costs nothing; the final will say what failed
        if text and self._utterance is not None:
            await self._emit(TranscriptPartial(session_id=self.session_id, ts=0, speaker="rep", text=text,
                                               start_ms=start_ms))

    async def _final(self, pcm: bytes, start_ms: int, end_ms: int,
                     speculation: asyncio.Future[str] | None = None) -> tuple[str, int, int]:
        try:
            if speculation is not None:
                # Started when the rep paused; nothing was said since, so it is the final, unless the
                # pool had no room for it then: the final asks again rather than lose the turn.
                try:
                    return await speculation, start_ms, end_ms
                except Overloaded:
                    pass
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
            pending = await self._turns.get()
            if pending is None:
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
        speech = Speech(uuid.uuid4().hex[:12])
        self._speech = speech
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        speaker = asyncio.create_task(self._speak(speech, sentences))
        reply: Reply | None = None
        splitter = SentenceSplitter()
        try:
            deltas: Reply | list[str]
            if fixed is not None:
                deltas = [fixed]
            else:
                reply = self._brain.respond(self.persona, self.history)
                deltas = reply
            async for delta in _aiter(deltas):
                speech.text += delta
                await self._emit(PersonaReplyDelta(session_id=self.session_id, ts=0, reply_id=speech.reply_id,
                                                   text=delta))
                for piece in splitter.feed(delta):
                    sentences.put_nowait(piece)
            for piece in splitter.flush():
                sentences.put_nowait(piece)
            sentences.put_nowait(None)
            speech.reply_sent = True
            await self._emit(PersonaReply(session_id=self.session_id, ts=0, reply_id=speech.reply_id,
                                          text=speech.text.strip()))
            await speaker
            await self._persona_said(speech, speech.text.strip())
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

    async def _interrupted(self, speech: Speech) -> None:
        spoken = speech.heard(self._clock())
        if speech.audio_started_at is not None:
            await self._emit(PersonaAudioEnd(session_id=self.session_id, ts=0, reply_id=speech.reply_id,
                                             interrupted=True))
        if speech.text and not speech.reply_sent:
            await self._emit(PersonaReply(session_id=self.session_id, ts=0, reply_id=speech.reply_id,
                                          text=speech.text.strip()))
        await self._persona_said(speech, spoken)

    async def _persona_said(self, speech: Speech, spoken: str) -> None:
        """What the persona actually said (cut at a barge-in) joins the history and the transcript."""
        if not spoken:
            return
        self.history.append(Turn("persona", spoken))
        started_at = speech.audio_started_at
        start_ms = self.now_ms() if started_at is None else int((started_at - self._started_at) * 1000)
        await self._emit(TranscriptFinal(
            session_id=self.session_id, ts=0, speaker="persona", text=spoken, start_ms=start_ms,
            end_ms=self.now_ms(), segment_id=self._next_segment("persona")))

    async def _speak(self, speech: Speech, sentences: asyncio.Queue[str | None]) -> None:
        """Voices the reply's sentences, then says when its audio ended."""

        async def started() -> None:
            await self._emit(PersonaAudioStart(session_id=self.session_id, ts=0, reply_id=speech.reply_id))

        try:
            await self._voice.speak(speech, sentences, started)
        except SparringError as exc:
            await self._error(exc)
        if speech.audio_started_at is not None:
            # Wait out the audio still playing on the client before saying it ended.
            remaining = speech.audio_started_at + speech.sent_ms / 1000 - self._clock()
            if remaining > 0:
                await asyncio.sleep(remaining)
            await self._emit(PersonaAudioEnd(session_id=self.session_id, ts=0, reply_id=speech.reply_id,
                                             interrupted=False))


async def _aiter(source: AsyncIterable[str] | Iterable[str]) -> AsyncGenerator[str, None]:
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item


def _ignore_result(future: asyncio.Future[str]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so an abandoned guess that failed is not reported


async def _quietly(task: asyncio.Task[None]) -> None:
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass
