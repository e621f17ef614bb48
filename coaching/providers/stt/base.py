"""The speech-to-text contract."""

from __future__ import annotations

from typing import Protocol

__all__ = ["SpeechToText"]


class SpeechToText(Protocol):
    supports_partials: bool  # cheap enough to re-run every 500 ms while the rep speaks

    async def transcribe(self, pcm16k: bytes) -> str:
        """Transcribes one utterance of 16 kHz mono PCM16; '' when nothing was said."""
        ...
