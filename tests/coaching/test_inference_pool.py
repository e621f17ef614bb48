"""The local-inference pool under load: it refuses what it cannot finish in time, skips optional
work (partial transcripts) unless a thread is idle, and a call's final transcript survives a
speculative guess the pool had no room for."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from coaching.brains.scripted import ScriptedBrain
from coaching.call import CallPipeline
from coaching.errors import Overloaded
from coaching.events import ErrorEvent, ServerMessage, TranscriptFinal
from coaching.persona import Voices, load_personas
from coaching.providers.inference import InferencePool
from tests.fixtures.speech import silence, speech_pcm


def blocker() -> tuple[threading.Event, object]:
    release = threading.Event()

    def work(value: str) -> str:
        release.wait(10)
        return value

    return release, work


async def test_a_job_whose_caller_stopped_waiting_holds_its_thread_until_the_thread_is_done():
    """A barge-in cancels the persona's synthesis; the thread goes on with it, so the pool must
    not count that thread idle (a partial would then queue behind it)."""
    pool = InferencePool(max_workers=1, max_waiting=1)
    release, began = threading.Event(), threading.Event()

    def synthesis(value: str) -> str:
        began.set()
        release.wait(10)
        return value

    try:
        speaking = asyncio.ensure_future(pool.run(synthesis, "sentence"))
        await asyncio.to_thread(began.wait, 10)
        queued = asyncio.ensure_future(pool.run(synthesis, "never started"))
        await started(pool, 2)
        speaking.cancel()
        queued.cancel()  # not started yet: dropped at once
        with pytest.raises(asyncio.CancelledError):
            await speaking
        with pytest.raises(asyncio.CancelledError):
            await queued
        await asyncio.sleep(0.01)
        assert pool.in_flight == 1  # the thread is still busy with the cancelled sentence
        with pytest.raises(Overloaded):
            await pool.run_if_idle(synthesis, "partial")
        release.set()
        for _ in range(500):
            if pool.in_flight == 0:
                break
            await asyncio.sleep(0.01)
        assert pool.in_flight == 0
        assert await pool.run_if_idle(str.upper, "partial") == "PARTIAL"
    finally:
        release.set()
        pool.close()


async def started(pool: InferencePool, n: int) -> None:
    while pool.in_flight < n:
        await asyncio.sleep(0.001)


async def test_work_beyond_the_queue_is_refused_at_once_and_what_was_accepted_finishes():
    pool = InferencePool(max_workers=1, max_waiting=1)
    release, work = blocker()
    try:
        running = asyncio.ensure_future(pool.run(work, "first"))
        waiting = asyncio.ensure_future(pool.run(work, "second"))
        await started(pool, 2)
        with pytest.raises(Overloaded, match="at capacity"):
            await pool.run(work, "third")
        release.set()
        assert await asyncio.gather(running, waiting) == ["first", "second"]
        assert pool.in_flight == 0
    finally:
        release.set()
        pool.close()


async def test_optional_work_runs_only_on_an_idle_thread_and_never_queues_ahead_of_live_work():
    pool = InferencePool(max_workers=2, max_waiting=8)
    release, work = blocker()
    try:
        first = asyncio.ensure_future(pool.run(work, "live 1"))
        await started(pool, 1)
        optional = asyncio.ensure_future(pool.run_if_idle(work, "partial"))  # a thread is idle: runs
        await started(pool, 2)
        with pytest.raises(Overloaded):  # both threads busy: skipped, though the queue has room
            await pool.run_if_idle(work, "another partial")
        queued = asyncio.ensure_future(pool.run(work, "final"))  # live work still queues
        await started(pool, 3)
        release.set()
        assert await asyncio.gather(first, optional, queued) == ["live 1", "partial", "final"]
    finally:
        release.set()
        pool.close()


class SinkRecorder:
    def __init__(self) -> None:
        self.messages: list[ServerMessage] = []

    async def emit(self, message: ServerMessage) -> None:
        self.messages.append(message)

    async def send_audio(self, chunk: bytes) -> None:
        pass

    async def persona_ended(self, reason: str) -> None:
        pass

    def rep_audio(self, pcm16k: bytes) -> None:
        pass

    def activity(self) -> None:
        pass


class QuietTTS:
    sample_rate_hz = 24000
    streams = True

    async def synthesize(self, text: str, voices: Voices) -> AsyncIterator[bytes]:
        yield silence(100, rate=24000)


class FullThenFreeSTT:
    """Partials say what was heard so far; a final is refused while `full` is set."""

    supports_partials = True

    def __init__(self) -> None:
        self.full = True
        self.refused = 0

    async def transcribe(self, pcm16k: bytes, *, partial: bool = False) -> str:
        if partial:
            return "how does"
        if self.full:
            self.refused += 1
            raise Overloaded("local speech processing is at capacity; try again in a moment")
        return "How does your month end close work?"


async def test_a_turn_whose_early_guess_found_the_pool_full_is_transcribed_again_not_lost():
    stt, sink = FullThenFreeSTT(), SinkRecorder()
    call = CallPipeline(session_id="s-1", persona=load_personas()["skeptical-cfo"], brain=ScriptedBrain(), stt=stt,
                        tts=QuietTTS(), sink=sink)
    call.start(input_rate_hz=16000, greet=False)

    async def say(pcm: bytes) -> None:
        for i in range(0, len(pcm), 640):
            call.feed_audio(pcm[i:i + 640])
            await asyncio.sleep(0)

    try:
        # The rep pauses: the pipeline guesses the final early, and the pool has no room for it.
        await say(silence(200) + speech_pcm("How does your month end close work?") + silence(300))
        for _ in range(200):
            if stt.refused:
                break
            await asyncio.sleep(0.01)
        assert stt.refused >= 1, "the early guess was never asked for"
        stt.full = False
        await say(silence(400))  # the turn ends
        for _ in range(500):
            if any(isinstance(m, TranscriptFinal) for m in sink.messages):
                break
            await asyncio.sleep(0.01)
        finals = [m for m in sink.messages if isinstance(m, TranscriptFinal)]
        assert [(m.speaker, m.text) for m in finals] == [("rep", "How does your month end close work?")]
        assert not [m for m in sink.messages if isinstance(m, ErrorEvent)]
    finally:
        await call.close()
