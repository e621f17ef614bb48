"""The text-to-speech contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from coaching.persona import Voices

__all__ = ["TextToSpeech"]


class TextToSpeech(Protocol):
    sample_rate_hz: int
    # True when audio comes back while the text is still being synthesized, so a longer text does
    # not delay its first audio: the persona's voice then sends the sentences queued behind the one
    # playing as one request. False (Piper) synthesizes every sentence on its own.
    streams: bool

    def synthesize(self, text: str, voices: Voices) -> AsyncIterator[bytes]:
        """Speaks one text (a sentence; with `streams`, maybe several): mono PCM16 at
        `sample_rate_hz`, in chunks as they are ready."""
        ...
