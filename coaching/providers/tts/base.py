"""The text-to-speech contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from coaching.persona import Voices

__all__ = ["TextToSpeech"]


class TextToSpeech(Protocol):
    sample_rate_hz: int

    def synthesize(self, text: str, voices: Voices) -> AsyncIterator[bytes]:
        """Speaks one sentence: mono PCM16 at `sample_rate_hz`, in chunks as they are ready."""
        ...
