"""The speech-to-text contracts: utterances of a live call, and recorded calls with timestamps."""

from __future__ import annotations

from typing import Protocol

import msgspec

from coaching.errors import ProviderUnavailable

__all__ = ["RecordingSTT", "SpeechToText", "TimedSegment", "TimedWord", "TransientSTTError"]


class SpeechToText(Protocol):
    supports_partials: bool  # cheap enough to re-run every 500 ms while the rep speaks

    async def transcribe(self, pcm16k: bytes, *, partial: bool = False) -> str:
        """Transcribes one utterance of 16 kHz mono PCM16; '' when nothing was said.

        `partial`: a look at what the rep has said so far, which the caller may skip; a provider
        short of capacity refuses it (`Overloaded`) rather than delay anyone's final."""
        ...


class TimedWord(msgspec.Struct, frozen=True):
    start_ms: int
    end_ms: int
    text: str


class TimedSegment(msgspec.Struct, frozen=True):
    """A stretch of a recording as the transcriber heard it, in the recording's milliseconds."""

    start_ms: int
    end_ms: int
    text: str
    words: list[TimedWord] = []


class TransientSTTError(ProviderUnavailable):
    """A failure worth retrying: rate limited (429), a server error (5xx), a timeout, no connection."""


class RecordingSTT(Protocol):
    """Transcribes a recorded call, a chunk at a time, with timestamps."""

    name: str  # e.g. 'local:tiny.en', 'openai:whisper-1'

    async def transcribe_timed(self, pcm16k: bytes, *, offset_ms: int, words: bool) -> list[TimedSegment]:
        """Segments (with words when `words` and the model gives them) of 16 kHz mono PCM16 that
        starts `offset_ms` into the recording."""
        ...
